import { spawnSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { build, createCompany } from '../helpers/app.js'
import { testDatabase } from '../helpers/db.js'

function run(script: string, args: string[], databaseUrl: string | undefined, env: Record<string, string> = {}) {
  const { DATABASE_URL: _ignored, ...rest } = process.env
  return spawnSync(process.execPath, ['--import', 'tsx', script, ...args], {
    env: { ...rest, ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}), ...env },
    encoding: 'utf8',
    timeout: 90_000,
  })
}

/** One line, naming what to do; never a stack trace. */
function oneLine(t: Test, stderr: string) {
  t.equal(stderr.trim().split('\n').length, 1, `one line: ${stderr}`)
  t.notMatch(stderr, /^\s+at /m, 'no stack trace')
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
  oneLine(t, bad.stderr)

  const unknown = run('src/cli/apikey.ts', ['create', '--role', 'admin', '--company', '99999'], databaseUrl)
  t.equal(unknown.status, 1)
  t.equal(unknown.stderr.trim(), 'No company with id 99999 exists; create it first or fix the id.')
  t.equal(unknown.stdout, '', 'no key printed')
})

t.test('npm run apikey on a fresh data folder: creates the embedded database and its tables first', async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'erp-sync-cli-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const created = run('src/cli/apikey.ts', ['create', '--role', 'admin'], undefined, { DATA_DIR: dataDir })
  t.equal(created.status, 0, created.stderr)
  t.match(created.stdout.trim(), /^esk_[a-z0-9]{16}_[\w-]{43}$/)
  t.equal(created.stderr.trim().split('\n').length, 1, `only the "created" line on stderr: ${created.stderr}`)
  const listed = run('src/cli/apikey.ts', ['list'], undefined, { DATA_DIR: dataDir })
  t.equal(listed.status, 0, listed.stderr)
  t.match(listed.stdout, /\tadmin\t\*\tactive\t/)
  t.equal(listed.stderr, '', 'nothing on stderr')
})

t.test('CLI errors are one line that names the fix', async (t) => {
  const empty = await testDatabase(t, { migrate: false })
  const noSchema = run('src/cli/apikey.ts', ['list'], empty, { MIGRATE_ON_START: 'false' })
  t.equal(noSchema.status, 2)
  t.match(noSchema.stderr, /run `npm run migrate` first/)
  oneLine(t, noSchema.stderr)

  const unreachable = run('src/cli/migrate.ts', [], 'postgres://nobody@127.0.0.1:1/none')
  t.equal(unreachable.status, 1)
  t.match(unreachable.stderr, /Could not reach the database .*check DATABASE_URL/)
  oneLine(t, unreachable.stderr)

  const badConfig = run('src/cli/apikey.ts', ['list'], empty, { PORT: 'abc' })
  t.equal(badConfig.status, 78)
  t.match(badConfig.stderr, /PORT/)
  oneLine(t, badConfig.stderr)

  const unknownTarget = run('src/cli/migrate.ts', ['to', '9999_nope'], empty)
  t.equal(unknownTarget.status, 1)
  t.match(unknownTarget.stderr, /9999_nope/)
  oneLine(t, unknownTarget.stderr)

  const badOption = run('src/cli/apikey.ts', ['create', '--rol', 'admin'], empty)
  t.equal(badOption.status, 2)
  oneLine(t, badOption.stderr)
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
