// The production build as a container runs it: `npm run build`'s bundles start the service (migrating an empty
// database, or on an embedded PostgreSQL), serve the API and Swagger UI, and run the commands the README names.
import { spawn, spawnSync } from 'node:child_process'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import vm from 'node:vm'
import { crc32 } from 'node:zlib'
import t, { type Test } from 'tap'
import { buildBundles } from '../src/cli/build.js'
import { codeCacheFile } from '../src/code-cache.js'
import { TEST_ENCRYPTION_KEYS } from './helpers/app.js'
import { testDatabase } from './helpers/db.js'
import { startProcoreStandin } from './standins/procore/index.js'

const root = path.resolve(import.meta.dirname, '..')
// Inside the repository, as dist/ is, so that what the bundles load from node_modules resolves.
await mkdir(path.join(root, 'node_modules/.cache'), { recursive: true })
const outdir = await mkdtemp(path.join(root, 'node_modules/.cache/build-test-'))
t.teardown(() => rm(outdir, { recursive: true, force: true }))
await buildBundles(outdir)

/** The environment without a database: each test says which one. */
function env(extra: Record<string, string>): NodeJS.ProcessEnv {
  const { DATABASE_URL: _ignored, ...rest } = process.env
  return { ...rest, ENCRYPTION_KEYS: TEST_ENCRYPTION_KEYS, PORT: '0', LOG_LEVEL: 'info', ...extra }
}

/** `node <outdir>/src/server.js`, as the Dockerfile runs it; resolves once it is ready. */
async function startBuilt(t: Test, extra: Record<string, string>, nodeOptions: string[] = []) {
  const child = spawn(process.execPath, [...nodeOptions, path.join(outdir, 'src/server.js')], {
    env: env({ NODE_COMPILE_CACHE: path.join(outdir, 'compile-cache'), ...extra }),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGTERM')
    return exited
  })
  const url = await new Promise<string>((resolve, reject) => {
    const seen = (d: Buffer) => {
      output += d.toString()
      const address = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1]
      if (address && output.includes('ready: Swagger UI')) resolve(address)
    }
    child.stdout.on('data', seen)
    child.stderr.on('data', seen)
    void exited.then((code) => reject(new Error(`the built server exited with ${code}:\n${output}`)))
  })
  return { url, output: () => output, stop: () => (child.kill('SIGTERM'), exited) }
}

/**
 * GET as a client does: a 503 is the back-pressure guard (generating Swagger UI's document lags the event loop on a
 * loaded machine) and is asked again after its Retry-After.
 */
async function get(url: string): Promise<Response> {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(url)
    if (res.status !== 503 || attempt === 10) return res
    await sleep(Number(res.headers.get('retry-after') ?? '1') * 1000)
  }
}

function command(name: string, args: string[], databaseUrl: string) {
  return spawnSync(process.execPath, [path.join(outdir, `src/cli/${name}.js`), ...args], {
    env: env({ DATABASE_URL: databaseUrl }),
    encoding: 'utf8',
    timeout: 60_000,
  })
}

t.test('the build is a few files: routes, migrations and node_modules are in the bundles', async (t) => {
  const files = (await readdir(outdir, { recursive: true })).filter((f) => /\.c?js$/.test(f)).sort()
  t.same(
    files.filter((f) => !f.startsWith('src/vendor/')),
    ['src/cli/apikey.js', 'src/cli/migrate.js', 'src/server.js', 'src/service.cjs'],
    'the entry points, and the service in one file beside them',
  )
  t.same(
    (await readdir(path.join(outdir, 'src/vendor'))).filter((f) => f.endsWith('.cjs')).sort(),
    ['json5.cjs', 'light-my-request.cjs', 'mime.cjs', 'undici.cjs', 'yaml.cjs'],
    'the packages loaded on first use, each in a file of its own',
  )
})

t.test('the built service migrates an empty database, answers, serves Swagger UI, and stops on SIGTERM', async (t) => {
  const databaseUrl = await testDatabase(t, { migrate: false })
  const procore = await startProcoreStandin({ logger: false })
  t.teardown(() => procore.close())
  procore.addCompany('5358233', 'Acme Builders')
  const server = await startBuilt(t, {
    DATABASE_URL: databaseUrl,
    PROCORE_API_URL: procore.url,
    PROCORE_LOGIN_URL: procore.url,
  })
  t.match(server.output(), /applied 0001_foundation/, 'the migrations are in the bundle')

  const ready = await fetch(`${server.url}/health/ready`)
  t.equal(ready.status, 200, '/health/ready')
  const key = /esk_[a-z0-9]{16}_[\w-]{43}/.exec(server.output())?.[0]
  t.ok(key, 'the first admin key was printed')
  const companies = await fetch(`${server.url}/v1/companies`, { headers: { authorization: `Bearer ${key}` } })
  t.equal(companies.status, 200, 'the API answers with it')

  // An outbound call: the HTTP client is loaded on first use, from a file of its own.
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' }
  const company = await fetch(`${server.url}/v1/companies`, {
    method: 'POST',
    headers: { ...headers, 'idempotency-key': 'build-company' },
    body: JSON.stringify({ id: '5358233', name: 'Acme Builders', erpSystem: 'generic' }),
  })
  t.equal(company.status, 201, await company.text())
  const connect = await fetch(`${server.url}/v1/companies/5358233/procore/connect`, {
    method: 'POST',
    headers: { ...headers, 'idempotency-key': 'build-connect' },
    body: JSON.stringify({ mode: 'client_credentials', clientId: 'standin-client', clientSecret: 'standin-secret' }),
  })
  t.equal(connect.status, 200)
  t.equal(((await connect.json()) as { connection: { status: string } }).connection.status, 'connected')
  t.ok(procore.calls.length > 0, 'Procore was called')

  const docs = await get(`${server.url}/docs`)
  t.equal(docs.status, 200, '/docs')
  t.match(await docs.text(), /<html/i)
  for (const asset of ['swagger-ui-bundle.js', 'swagger-ui.css', 'logo.svg']) {
    const res = await get(`${server.url}/docs/static/${asset}`)
    t.equal(res.status, 200, `Swagger UI's ${asset}, read from node_modules`)
    t.ok((await res.arrayBuffer()).byteLength > 1000)
  }
  const yaml = await get(`${server.url}/docs/yaml`)
  t.equal(yaml.status, 200, '/docs/yaml (its YAML library is loaded on first use)')
  t.match(await yaml.text(), /^openapi: 3\.1\.0\n/)
  const committed = JSON.parse(await readFile(path.join(root, 'openapi/openapi.json'), 'utf8')) as unknown
  t.same(await (await get(`${server.url}/openapi.json`)).json(), committed, 'every route is in the bundle')

  t.equal(await server.stop(), 0, 'SIGTERM: drains and exits 0')
  t.match(server.output(), /"msg":"stopped"/)
  t.ok((await readdir(path.join(outdir, 'compile-cache'))).length > 0, "Node's compile cache was written")

  const again = await startBuilt(t, { DATABASE_URL: databaseUrl })
  t.equal((await fetch(`${again.url}/health/ready`)).status, 200, 'a second start (from the compile cache)')
  t.equal(await again.stop(), 0)
})

t.test('the built commands: migrate and apikey', async (t) => {
  const databaseUrl = await testDatabase(t, { migrate: false })
  const migrated = command('migrate', [], databaseUrl)
  t.equal(migrated.status, 0, migrated.stderr)
  t.match(migrated.stdout, /applied 0001_foundation/)
  const status = command('migrate', ['status'], databaseUrl)
  t.equal(status.status, 0, status.stderr)
  t.notMatch(status.stdout, /pending/, 'everything applied')

  const created = command('apikey', ['create', '--role', 'viewer', '--name', 'from the build'], databaseUrl)
  t.equal(created.status, 0, created.stderr)
  t.match(created.stdout.trim(), /^esk_[a-z0-9]{16}_[\w-]{43}$/)
  const listed = command('apikey', ['list'], databaseUrl)
  t.match(listed.stdout, /viewer\t\*\tactive\tfrom the build/)
  const refused = command('apikey', ['bogus'], databaseUrl)
  t.equal(refused.status, 2)
  t.match(refused.stderr, /^unknown command "bogus"/)
})

t.test('the built service starts an embedded PostgreSQL when DATABASE_URL is unset', async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'erp-sync-build-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const server = await startBuilt(t, { DATA_DIR: dataDir })
  t.match(server.output(), /embedded PostgreSQL is running/)
  t.equal((await fetch(`${server.url}/health/ready`)).status, 200)
  t.equal(await server.stop(), 0, 'stops the embedded PostgreSQL with it')
})

t.test('the built service writes a code cache once ready, starts from it, and starts without a good one', async (t) => {
  const databaseUrl = await testDatabase(t, { migrate: true })
  const cacheDir = await mkdtemp(path.join(tmpdir(), 'erp-sync-code-cache-'))
  t.teardown(() => rm(cacheDir, { recursive: true, force: true }))
  const bundle = path.join(outdir, 'src/service.cjs')
  const file = codeCacheFile(bundle, await readFile(bundle), cacheDir)
  /** A start (in that cache directory unless `extra` says otherwise); resolves, once stopped, with its codeCache. */
  const start = async (extra: Record<string, string> = {}, nodeOptions: string[] = []) => {
    const server = await startBuilt(
      t,
      { DATABASE_URL: databaseUrl, NODE_COMPILE_CACHE: cacheDir, ...extra },
      nodeOptions,
    )
    t.equal((await fetch(`${server.url}/health/ready`)).status, 200, 'ready')
    t.equal(await server.stop(), 0)
    return /"codeCache":"(\w+)"/.exec(server.output())?.[1]
  }
  /** The cache file as the service checks it: a CRC-32 of the rest, then V8's data. */
  const valid = async () => {
    const read = await readFile(file)
    return read.readUInt32BE(0) === crc32(read.subarray(4))
  }

  t.equal(await start(), 'none', 'the first start has none')
  t.ok(await valid(), 'and writes one, named after the build')
  t.equal(await start(), 'used', 'the next start compiles from it')

  await writeFile(file, 'not a code cache')
  t.equal(await start(), 'rejected', 'a damaged cache is not used')
  t.ok(await valid(), 'and is written again')

  // Another build's cache under this build's name: V8 refuses it.
  const other = new vm.Script('"another build"').createCachedData()
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(other))
  await writeFile(file, Buffer.concat([crc, other]))
  t.equal(await start(), 'rejected', "another build's cache is not used")
  t.equal(await start(), 'used', 'and is replaced')

  // A cache directory that cannot be made: a file is in the way.
  t.equal(await start({ NODE_COMPILE_CACHE: file }), 'none', 'no cache directory: a start without a cache')

  // Node maps stack traces to the sources only for the code it loads itself.
  t.equal(await start({}, ['--enable-source-maps']), undefined, 'with source maps: loaded without it')
})
