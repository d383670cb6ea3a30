/**
 * `npm run prove`: the service's promises demonstrated against real processes. Two service
 * processes (`src/server.ts`, exactly as deployed) share one fresh PostgreSQL database; this
 * script attacks them over HTTP and from inside PostgreSQL, then prints one table of figures.
 * Bounded: every phase has a fixed request count or duration (about 2 minutes in all).
 *
 * With PostgreSQL binaries under /usr/lib/postgresql (run as root: the cluster runs as user
 * postgres), a throwaway cluster on port 55432 is used, so PostgreSQL itself can be restarted
 * under load. Else PROVE_DATABASE_URL (or TEST_DATABASE_URL) names the server to use (a database
 * is created on it and dropped afterwards) and the restart phase is skipped.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import { createApiKey } from '../../src/auth/api-keys.js'
import type { Database } from '../../src/db/database.js'
import { hashHeader, webhookHeader } from '../../src/procore/intake.js'

// A PostgreSQL cluster of our own when the binaries are here (so it can be restarted under load), else the given one.
const PG_BIN = existsSync('/usr/lib/postgresql')
  ? readdirSync('/usr/lib/postgresql')
      .map((v) => `/usr/lib/postgresql/${v}/bin`)
      .find((d) => existsSync(`${d}/pg_ctl`))
  : undefined
const cluster = PG_BIN && !process.env.PROVE_DATABASE_URL ? mkdtempSync(path.join(tmpdir(), 'prove-pg-')) : undefined
const CLUSTER_PORT = 55432
const pgCtl = (...args: string[]) =>
  execFileSync('runuser', ['-u', 'postgres', '--', `${PG_BIN}/pg_ctl`, '-D', cluster!, ...args], { stdio: 'ignore' })
const startCluster = () =>
  pgCtl('-o', `-p ${CLUSTER_PORT} -k ${cluster} -c listen_addresses=127.0.0.1`, '-l', `${cluster}/log`, '-w', 'start')
if (cluster) {
  execFileSync('chown', ['postgres', cluster])
  execFileSync(
    'runuser',
    ['-u', 'postgres', '--', `${PG_BIN}/initdb`, '-D', cluster, '-A', 'trust', '-U', 'postgres'],
    {
      stdio: 'ignore',
    },
  )
  startCluster()
  process.on('exit', () => {
    try {
      pgCtl('-m', 'immediate', 'stop')
    } catch {
      // already stopped
    }
    rmSync(cluster, { recursive: true, force: true })
  })
}
const SERVER = cluster
  ? `postgres://postgres@127.0.0.1:${CLUSTER_PORT}/postgres`
  : (process.env.PROVE_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres')
const FUZZ_REQUESTS = Number(process.env.PROVE_FUZZ_REQUESTS ?? 4200)
const A = '7001'
const B = '7002'
const CANARY = `canary-${randomBytes(6).toString('hex')}`
const LEAK = /stack|at \w+ \(|select |insert |relation |\/src\/|node_modules|ECONN|canary-/i

const rows: Array<[string, string, string]> = []
const figure = (area: string, name: string, value: string | number) => {
  rows.push([area, name, String(value)])
  console.log(`# ${area}: ${name} = ${value}`)
}

// --- database and processes -------------------------------------------------------------------

const dbName = `prove_${randomBytes(4).toString('hex')}`
const admin = new pg.Client(SERVER)
await admin.connect()
await admin.query(`create database "${dbName}"`)
const url = new URL(SERVER)
url.pathname = `/${dbName}`
const DATABASE_URL = url.toString()
const ENCRYPTION_KEYS = `prove:${randomBytes(32).toString('base64')}`

interface Service {
  name: string
  base: string
  child: ChildProcess
  log: string[]
  exits: number
  port: number
}

async function startService(name: string, port: number, migrate: boolean): Promise<Service> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: {
      ...process.env,
      DATABASE_URL,
      ENCRYPTION_KEYS,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      MIGRATE_ON_START: String(migrate),
      DB_CONNECT_TIMEOUT_MS: '2000',
      WORKER_HEARTBEAT_MS: '1000',
      // The fuzz sends thousands of requests a minute with one key; the limit is proven in test/resilience.
      RATE_LIMIT_PER_MINUTE: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const service: Service = { name, base: `http://127.0.0.1:${port}`, child, log: [], exits: 0, port }
  started.push(service)
  child.stdout.on('data', (c: Buffer) => service.log.push(c.toString()))
  child.stderr.on('data', (c: Buffer) => service.log.push(c.toString()))
  child.once('exit', () => service.exits++)
  for (let i = 0; i < 600; i++) {
    if (service.exits > 0) throw new Error(`${name} exited while starting:\n${service.log.join('').slice(-2000)}`)
    if ((await get(`${service.base}/health/ready`)) === 200) return service
    await sleep(100)
  }
  throw new Error(`${name} did not become ready`)
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
async function get(u: string): Promise<number> {
  try {
    return (await fetch(u, { signal: AbortSignal.timeout(3000) })).status
  } catch {
    return 0
  }
}

const started: Service[] = []
process.on('exit', () => started.forEach((s) => s.exits === 0 && s.child.kill('SIGKILL')))
const one = await startService('api-1', 18081, true)
const two = await startService('api-2', 18082, false)
const services = [one, two]
const proverPool = new pg.Pool({ connectionString: DATABASE_URL, max: 4, application_name: 'prove' })
proverPool.on('error', () => {})
const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: proverPool }) })

const adminKey = (await createApiKey(db, { name: 'prove admin', role: 'admin', companyIds: null })).key
const auth = (key: string) => ({ authorization: `Bearer ${key}` })

async function call(
  base: string,
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; type: string; text: string; ms: number }> {
  const started = performance.now()
  try {
    const res = await fetch(base + path, {
      method,
      headers: { ...(opts.body !== undefined && { 'content-type': 'application/json' }), ...opts.headers },
      ...(opts.body !== undefined && { body: opts.body }),
      signal: AbortSignal.timeout(10_000),
    })
    const text = await res.text()
    return { status: res.status, type: res.headers.get('content-type') ?? '', text, ms: performance.now() - started }
  } catch (error) {
    const cause = (error as Error & { cause?: Error }).cause?.message ?? (error as Error).message
    return { status: 0, type: '', text: `no answer: ${cause}`, ms: performance.now() - started }
  }
}

for (const [id, name] of [
  [A, 'Company A'],
  [B, `Company B ${CANARY}`],
]) {
  const res = await call(one.base, 'POST', '/v1/companies', {
    headers: auth(adminKey),
    body: JSON.stringify({ id, name, erpSystem: 'foundation' }),
  })
  if (res.status !== 201) throw new Error(`create company ${id}: ${res.status} ${res.text}`)
}
const linkOf = async (company: string, n: string) =>
  (
    await sql<{ id: string }>`insert into record_links (company_id, type, procore_id, erp_id, origin_state, created_by)
      values (${company}, 'department', ${`p${n}`}, ${`e${n}`}, 'set', 'prove') returning id`.execute(db)
  ).rows[0]!.id
const linkB = await linkOf(B, CANARY)
await sql`insert into record_snapshots (company_id, side, type, external_id, fields, raw, content_hash)
  values (${B}, 'erp', 'vendor', 'B-1', ${JSON.stringify({ name: CANARY })}, '{}', 'h')`.execute(db)
const keyA = (await createApiKey(db, { name: 'prove A', role: 'admin', companyIds: [A] })).key

// --- 1. schema fuzz over every operation ----------------------------------------------------------

interface Operation {
  method: string
  path: string
  params: Array<{ name: string; in: string; schema?: { type?: string; format?: string } }>
  body: { properties?: Record<string, { type?: string }> } | undefined
}
const spec = JSON.parse(readFileSync('openapi/openapi.json', 'utf8')) as {
  paths: Record<string, Record<string, { parameters?: Operation['params']; requestBody?: unknown }>>
}
const operations: Operation[] = []
for (const [path, item] of Object.entries(spec.paths)) {
  for (const [method, op] of Object.entries(item)) {
    if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue
    const body = (op.requestBody as { content?: Record<string, { schema?: Operation['body'] }> } | undefined)?.content
    operations.push({
      method: method.toUpperCase(),
      path,
      params: op.parameters ?? [],
      body: body ? Object.values(body)[0]?.schema : undefined,
    })
  }
}

let seed = 42
const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!
const hostileStrings = [
  '',
  ' ',
  'D 60',
  'a\u0000b',
  '%zz',
  '../../etc/passwd',
  "' or 1=1 --",
  '𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
  '\ud800',
  'x'.repeat(300),
  '9007199254740993',
  '-1',
  '0',
  'NaN',
  'Infinity',
  '1e400',
  'true',
  '__proto__',
  '<script>',
  randomUUID(),
]
const hostileValues: unknown[] = [
  null,
  true,
  0,
  -1,
  1.5,
  2 ** 53 + 2,
  1e308,
  [],
  {},
  [1, 2, 3],
  { __proto__: { admin: true } },
  'x'.repeat(5000),
  ...hostileStrings,
]
function hostileBody(op: Operation): string {
  const r = rnd()
  if (r < 0.05) return '['.repeat(2000) + ']'.repeat(2000)
  if (r < 0.1) return '{"a":'
  if (r < 0.15) return '{"__proto__":{"x":1},"constructor":{"prototype":{}}}'
  if (r < 0.2) return JSON.stringify(pick(hostileValues))
  const props = Object.keys(op.body?.properties ?? {})
  const body: Record<string, unknown> = {}
  for (const p of props) if (rnd() < 0.8) body[p] = pick(hostileValues)
  if (rnd() < 0.3) body[pick(hostileStrings) || 'extra'] = pick(hostileValues)
  return JSON.stringify(body).replace('"9007199254740993"', '9007199254740993')
}
/** A lone surrogate cannot be percent-encoded: send its UTF-8 bytes as they would arrive from a broken client. */
const encode = (s: string) => {
  try {
    return encodeURIComponent(s)
  } catch {
    return '%ED%A0%80'
  }
}
function pathOf(op: Operation): string {
  let path = op.path.replace(/\{(\w+)\}/g, (_m, name: string) => {
    const param = op.params.find((p) => p.name === name && p.in === 'path')
    if (name === 'companyId' && rnd() < 0.6) return A
    if (param?.schema?.format === 'uuid' && rnd() < 0.5) return randomUUID()
    return encode(pick(hostileStrings)) || 'x'
  })
  const query = op.params.filter((p) => p.in === 'query' && rnd() < 0.6)
  if (query.length > 0) path += '?' + query.map((q) => `${q.name}=${encode(pick(hostileStrings))}`).join('&')
  if (rnd() < 0.03) path += '/%zz'
  return path
}

let fuzzed = 0
let fuzz5xx = 0
let nonProblem = 0
let leaky = 0
let fuzzMax = 0
const examples: string[] = []
const covered = new Set<string>()
const queue = Array.from({ length: FUZZ_REQUESTS }, (_, i) => operations[i % operations.length]!)
await Promise.all(
  Array.from({ length: 6 }, async (_, w) => {
    for (let op = queue.pop(); op; op = queue.pop()) {
      const headers: Record<string, string> = rnd() < 0.9 ? auth(adminKey) : {}
      if (rnd() < 0.3) headers['idempotency-key'] = pick(hostileStrings).replace(/[^\x20-\x7e]/g, '') || 'k'
      if (rnd() < 0.2) headers['if-match'] = pick(['"1"', '"999999999"', '*', 'W/"1"', '"x"'])
      const method = op.method
      const res = await call(services[w % 2]!.base, method, pathOf(op), {
        headers,
        ...(op.body || (method !== 'GET' && rnd() < 0.1) ? { body: hostileBody(op) } : {}),
      })
      fuzzed++
      covered.add(`${method} ${op.path}`)
      fuzzMax = Math.max(fuzzMax, res.ms)
      if (res.status >= 500 || res.status === 0) {
        fuzz5xx++
        if (examples.length < 5) examples.push(`${method} ${op.path} → ${res.status} ${res.text.slice(0, 160)}`)
      }
      if (res.status >= 400 && !res.type.startsWith('application/problem+json')) {
        nonProblem++
        if (examples.length < 5) examples.push(`${method} ${op.path} → ${res.status} ${res.type}`)
      }
      if (res.status >= 400 && LEAK.test(res.text)) leaky++
    }
  }),
)
figure('fuzz', 'operations covered', `${covered.size}/${operations.length}`)
figure('fuzz', 'requests', fuzzed)
figure('fuzz', '5xx (or no answer)', fuzz5xx)
figure('fuzz', 'error bodies not problem+json', nonProblem)
figure('fuzz', 'leaky error bodies', leaky)
figure('fuzz', 'max latency ms', Math.round(fuzzMax))
for (const e of examples) console.log(`#   e.g. ${e}`)

// --- 2. cross-company matrix: A's key against B's ids ---------------------------------------------

const fingerprintB = async () =>
  (
    await sql<{ h: string }>`select md5(concat(
      (select string_agg(c::text, ',') from companies c where id = ${B}),
      (select string_agg(l::text, ',' order by id) from record_links l where company_id = ${B}),
      (select string_agg(s::text, ',' order by s::text) from record_snapshots s where company_id = ${B}),
      (select count(*)::text from inbox_events where company_id = ${B}),
      (select count(*)::text from sync_runs where company_id = ${B}))) as h`.execute(db)
  ).rows[0]!.h
const beforeB = await fingerprintB()
let matrixCases = 0
let matrixLeaks = 0
for (const op of operations.filter((o) => o.path.includes('{companyId}'))) {
  const path = op.path.replace(/\{(\w+)\}/g, (_m, name: string) =>
    name === 'companyId'
      ? B
      : name === 'linkId'
        ? linkB
        : name === 'externalId'
          ? 'B-1'
          : name === 'type'
            ? 'vendor'
            : name === 'side'
              ? 'erp'
              : randomUUID(),
  )
  const res = await call(one.base, op.method, path, {
    headers: { ...auth(keyA), 'idempotency-key': randomUUID(), 'if-match': '"1"' },
    ...(op.method === 'GET' || op.method === 'DELETE' ? {} : { body: '{}' }),
  })
  matrixCases++
  if ((res.status >= 200 && res.status < 300) || res.text.includes(CANARY)) {
    matrixLeaks++
    console.log(`#   leak: ${op.method} ${path} → ${res.status}`)
  }
}
figure('cross-company', 'cases (every operation with a company)', matrixCases)
figure('cross-company', 'answers other than refusal, or with B data', matrixLeaks)
figure('cross-company', 'B rows changed', (await fingerprintB()) === beforeB ? 0 : 1)

// --- 3. racing unlinks ------------------------------------------------------------------------------

const raceLink = await linkOf(A, `race${randomBytes(3).toString('hex')}`)
const etag = (await fetch(`${one.base}/v1/companies/${A}/links/${raceLink}`, { headers: auth(adminKey) })).headers.get(
  'etag',
)!
const racers = await Promise.all(
  Array.from({ length: 50 }, (_, i) =>
    call(services[i % 2]!.base, 'DELETE', `/v1/companies/${A}/links/${raceLink}`, {
      headers: { ...auth(adminKey), 'if-match': etag },
    }),
  ),
)
figure('racing writers', '50 unlinks with one ETag: winners', racers.filter((r) => r.status === 200).length)
figure('racing writers', '50 unlinks with one ETag: 412', racers.filter((r) => r.status === 412).length)

// --- 4. webhooks under repeated backend termination -------------------------------------------------

const webhookAuth: Record<string, string> = {}
// Set here, after the fuzz (which may have rotated or removed the hooks it found).
for (const id of [A, B]) {
  webhookAuth[id] = webhookHeader(id, `${CANARY}${randomBytes(24).toString('base64url')}`)
  const hash = hashHeader(webhookAuth[id])
  await sql`insert into procore_webhooks (company_id, namespace, api_version, destination_url, secret_hash,
    secret_rotated_at) values (${id}, 'erp-sync', 'v4.0', 'http://x', ${hash}, now())
    on conflict (company_id) do update set secret_hash = ${hash}, previous_secret_hash = null`.execute(db)
}
let ulid = 0
const newUlid = () => `01J${String(Date.now()).padStart(13, '0')}${String(++ulid).padStart(10, '0')}`.slice(0, 26)
const acked = new Set<string>()
const latencies: number[] = []
let non2xx = 0
let firstRefusal = ''
let sending = true
const sender = async (w: number) => {
  while (sending) {
    const id = newUlid()
    const body =
      `{"id":${Math.floor(rnd() * 1e12)},"ulid":"${id}","timestamp":"${new Date().toISOString()}","user_id":1,` +
      `"company_id":${A},"project_id":null,"api_version":"v2.0","event_type":"update",` +
      `"resource_name":"Company Vendors","resource_id":${1 + (ulid % 50)}}`
    // A Procore-like sender: the same event again until it is acknowledged (bounded).
    for (let attempt = 0; attempt < 20 && sending; attempt++) {
      const res = await call(services[(w + attempt) % 2]!.base, 'POST', '/webhooks/procore', {
        headers: { authorization: webhookAuth[A]! },
        body,
      })
      latencies.push(res.ms)
      if (res.status === 200) {
        acked.add(id)
        break
      }
      non2xx++
      if (firstRefusal === '') firstRefusal = `${res.status} ${res.text.slice(0, 200)}`
      await sleep(100)
    }
  }
}
const senders = Array.from({ length: 8 }, (_, w) => sender(w))
await sleep(2000)
let terminations = 0
const terminator = new pg.Client(SERVER)
await terminator.connect()
const faultEnd = Date.now() + 15_000
while (Date.now() < faultEnd) {
  const { rowCount } = await terminator.query(
    `select pg_terminate_backend(pid) from pg_stat_activity
      where datname = $1 and application_name = 'procore-erp-sync' and pid <> pg_backend_pid()`,
    [dbName],
  )
  terminations += rowCount ?? 0
  await sleep(500)
}
const faultOver = performance.now()
const readyAgain = await Promise.all(
  services.map(async (s) => {
    for (let i = 0; i < 300; i++) {
      if ((await get(`${s.base}/health/ready`)) === 200) return performance.now() - faultOver
      await sleep(100)
    }
    return Infinity
  }),
)
const exitsUnderTermination = services.reduce((n, s) => n + s.exits, 0)

// PostgreSQL itself stops (immediate: crash recovery on start) for 5 s while the deliveries go on.
if (cluster) {
  admin.on('error', () => {})
  terminator.on('error', () => {})
  pgCtl('-m', 'immediate', 'stop')
  const readyWhileDown: number[] = []
  const downUntil = Date.now() + 5000
  while (Date.now() < downUntil) {
    readyWhileDown.push(...(await Promise.all(services.map((s) => get(`${s.base}/health/ready`)))))
    await sleep(250)
  }
  startCluster()
  const back = performance.now()
  const readyAfter = await Promise.all(
    services.map(async (s) => {
      for (let i = 0; i < 600; i++) {
        if ((await get(`${s.base}/health/ready`)) === 200) return performance.now() - back
        await sleep(100)
      }
      return Infinity
    }),
  )
  figure(
    'PostgreSQL restart',
    '/health/ready while down: 503 / other',
    `${readyWhileDown.filter((c) => c === 503).length} / ${readyWhileDown.filter((c) => c !== 503).length}`,
  )
  figure('PostgreSQL restart', 'ms from database back to ready 200', readyAfter.map((ms) => Math.round(ms)).join(' / '))
  figure(
    'PostgreSQL restart',
    'service process exits',
    services.reduce((n, s) => n + s.exits, 0),
  )
}

// kill -9 of either process while the deliveries go on; each is restarted at once.
const restartMs: number[] = []
for (let k = 0; k < 6; k++) {
  await sleep(1000 + Math.floor(rnd() * 1500))
  const i = k % 2
  const victim = services[i]!
  victim.child.kill('SIGKILL')
  await new Promise((r) => (victim.exits > 0 ? r(null) : victim.child.once('exit', r)))
  const t0 = performance.now()
  services[i] = await startService(victim.name, victim.port, false)
  restartMs.push(performance.now() - t0)
}
await sleep(3000)
sending = false
await Promise.all(senders)
const stored = new Set(
  (
    await sql<{ ulid: string }>`select body::json->>'ulid' as ulid from inbox_events where company_id = ${A}`.execute(
      db,
    )
  ).rows.map((r) => r.ulid),
)
const duplicated = Number(
  (
    await sql<{ n: string }>`select count(*) - count(distinct body::json->>'ulid') as n from inbox_events
      where company_id = ${A}`.execute(db)
  ).rows[0]!.n,
)
latencies.sort((x, y) => x - y)
const pct = (p: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0)
figure('backend termination', 'backends terminated (every 500 ms for 15 s)', terminations)
figure('all fault phases', 'webhooks acknowledged', acked.size)
figure(
  'all fault phases',
  'acknowledged but lost (2xx without commit)',
  [...acked].filter((id) => !stored.has(id)).length,
)
figure('all fault phases', 'non-2xx answers (retried by the sender)', non2xx)
figure('all fault phases', 'ack latency p50 / p99 / max ms', `${pct(0.5)} / ${pct(0.99)} / ${pct(1)}`)
figure(
  'backend termination',
  'ms from fault end to /health/ready 200',
  readyAgain.map((ms) => Math.round(ms)).join(' / '),
)
figure('backend termination', 'service process exits', exitsUnderTermination)
figure('kill -9', 'SIGKILLs of a service during deliveries (each restarted)', restartMs.length)
figure('kill -9', 'max ms from restart to ready', Math.round(Math.max(...restartMs)))
figure(
  'kill -9',
  'other process exits',
  services.reduce((n, s) => n + s.exits, 0),
)
figure('all fault phases', 'events stored twice (duplicated)', duplicated)
if (firstRefusal) console.log(`#   first refusal: ${firstRefusal}`)

// --- 5. canary secrets --------------------------------------------------------------------------

const logs = services.map((s) => s.log.join('')).join('')
figure(
  'secrets',
  'admin key / webhook secrets / canary in service logs',
  [adminKey, keyA, ...Object.values(webhookAuth), CANARY].reduce((n, c) => n + logs.split(c).length - 1, 0),
)

// --- table and cleanup -------------------------------------------------------------------------

for (const s of services) s.child.kill('SIGTERM')
await Promise.all(services.map((s) => new Promise((r) => (s.exits > 0 ? r(null) : s.child.once('exit', r)))))
await terminator.end().catch(() => {})
await db.destroy()
const cleanup = new pg.Client(SERVER)
await cleanup.connect()
await cleanup.query(`drop database if exists "${dbName}" with (force)`)
await cleanup.end()
await admin.end().catch(() => {})

const width = [20, 56, 22]
const line = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(width[i]!)).join(' | ') + ' |'
console.log('\n' + line(['area', 'figure', 'value']))
console.log('|' + width.map((w) => '-'.repeat(w + 2)).join('|') + '|')
for (const r of rows) console.log(line(r))
