import { spawnSync } from 'node:child_process'
import t from 'tap'
import { build, createCompany } from '../helpers/app.js'

function run(script: string, args: string[], databaseUrl: string) {
  return spawnSync(process.execPath, ['--import', 'tsx', script, ...args], {
    env: { ...process.env, DATABASE_URL: databaseUrl },
    encoding: 'utf8',
    timeout: 60_000,
  })
}

t.test('npm run apikey: create prints a working key once; list and revoke', async (t) => {
  const { app, adminKey, databaseUrl, auth } = await build(t)
  await createCompany(app, adminKey, '31')

  const created = run(
    'src/cli/apikey.ts',
    ['create', '--role', 'operator', '--company', '31', '--name', 'erp agent'],
    databaseUrl,
  )
  t.equal(created.status, 0, created.stderr)
  const key = created.stdout.trim()
  t.match(key, /^esk_[a-z0-9]{16}_[\w-]{43}$/, 'stdout is exactly the key, so scripts can capture it')
  t.match(created.stderr, /created operator key .* for companies 31; it is shown once/)
  t.equal(
    (await app.inject({ method: 'GET', url: '/v1/companies/31', headers: auth(key) })).statusCode,
    200,
    'the key works',
  )
  t.equal(
    (
      await app.inject({
        method: 'POST',
        url: '/v1/companies',
        headers: auth(key),
        payload: { id: '32', name: 'x', erpSystem: 'generic' },
      })
    ).statusCode,
    403,
    'with its role',
  )

  const listed = run('src/cli/apikey.ts', ['list'], databaseUrl)
  t.equal(listed.status, 0)
  const row = listed.stdout.split('\n').find((l) => l.includes('erp agent'))
  t.ok(row, 'listed')
  t.notOk(listed.stdout.includes(key.slice(21)), 'list never shows secrets')
  const id = row!.split('\t')[0]!

  const revoked = run('src/cli/apikey.ts', ['revoke', id], databaseUrl)
  t.equal(revoked.status, 0, revoked.stderr)
  t.equal(
    (await app.inject({ method: 'GET', url: '/v1/companies/31', headers: auth(key) })).statusCode,
    401,
    'revoked at once',
  )

  const bad = run('src/cli/apikey.ts', ['create', '--role', 'root'], databaseUrl)
  t.equal(bad.status, 2)
  t.match(bad.stderr, /--role must be one of admin, approver, operator, viewer/)
})

t.test('npm run migrate: status, down and back up', async (t) => {
  const { databaseUrl } = await build(t)
  const status = run('src/cli/migrate.ts', ['status'], databaseUrl)
  t.match(status.stdout, /^applied\t0001_foundation$/m)
  const down = run('src/cli/migrate.ts', ['down'], databaseUrl)
  t.equal(down.status, 0, down.stderr)
  t.match(down.stdout, /reverted/)
  t.match(run('src/cli/migrate.ts', ['status'], databaseUrl).stdout, /pending\t/)
  const up = run('src/cli/migrate.ts', [], databaseUrl)
  t.equal(up.status, 0, up.stderr)
  t.match(up.stdout, /applied/)
})
