/**
 * Procore webhook figures (the closing note of issue #3):
 *   0. the bare baseline: Fastify + pg doing one INSERT per delivery (test/bench/bare-intake.ts), same load;
 *   A. intake: POST /webhooks/procore at 50 connections with autocannon (req/s, latency, non-2xx,
 *      and acknowledged − stored, which must be 0), API process only, and its ratio to the baseline;
 *   B. draining that backlog with a separate worker process (events/s, records re-read/s);
 *   C. end to end with the worker running: a fixed number of events from the first request to the
 *      last one processed (events/s, and received → processed latency);
 *   D. freshness of isolated changes: one event at a time on a quiet record, received → processed.
 * Procore calls are counted by kind: list calls by id (filters[id][]) and single reads.
 * The service runs as child processes (API, worker), as in production; the Procore stand-in and
 * autocannon run in this process.
 *
 *   npx tsx test/bench/procore-webhooks.ts
 *   BENCH_PG=postgres://… BENCH_SECONDS=20 BENCH_EVENTS=5000 npx tsx test/bench/procore-webhooks.ts
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { randomBytes } from 'node:crypto'
import os from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { startProcoreStandin } from '../standins/procore/index.js'

interface AutocannonResult {
  requests: { average: number; total: number }
  latency: { p50: number; p99: number; max: number; average: number }
  non2xx: number
  errors: number
  timeouts: number
  '2xx': number
  duration: number
}
type Autocannon = (opts: Record<string, unknown>) => Promise<AutocannonResult>
// Typed locally: whether @types/autocannon is installed or not, this file compiles the same.
const autocannonModule = 'autocannon'
const autocannon = ((await import(autocannonModule)) as { default: Autocannon }).default

const serverPg = process.env.BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/test'
const SECONDS = Number(process.env.BENCH_SECONDS ?? 20)
const EVENTS = Number(process.env.BENCH_EVENTS ?? 5000)
const CONNECTIONS = 50
const COMPANY = '5358233'
const VENDORS = 1000

async function freshDatabase(name: string): Promise<string> {
  const admin = new pg.Client(serverPg)
  await admin.connect()
  await admin.query(`drop database if exists ${name} with (force)`)
  await admin.query(`create database ${name}`)
  await admin.end()
  const url = new URL(serverPg)
  url.pathname = `/${name}`
  return url.toString()
}

function startService(env: Record<string, string>, port: number): Promise<{ child: ChildProcess; out: () => string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: {
      ...process.env,
      LOG_LEVEL: 'warn',
      PORT: String(port),
      // e.g. BENCH_CHILD_NODE_OPTIONS='--cpu-prof --cpu-prof-dir=/tmp/prof' profiles the service processes.
      ...(process.env.BENCH_CHILD_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_CHILD_NODE_OPTIONS } : {}),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString()
  })
  return (async () => {
    for (;;) {
      if (
        await fetch(`http://127.0.0.1:${port}/health/ready`).then(
          (r) => r.ok,
          () => false,
        )
      )
        return { child, out: () => out }
      if (child.exitCode !== null) throw new Error(`service exited: ${out}`)
      await sleep(50)
    }
  })()
}
const stop = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    child.once('exit', () => resolve())
    child.kill('SIGTERM')
  })

async function startBare(databaseUrl: string, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/bench/bare-intake.ts'], {
    env: { ...process.env, DATABASE_URL: databaseUrl, PORT: String(port) },
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  for (;;) {
    if (
      await fetch(`http://127.0.0.1:${port}/health/ready`).then(
        (r) => r.ok,
        () => false,
      )
    )
      return child
    if (child.exitCode !== null) throw new Error('the bare baseline exited')
    await sleep(50)
  }
}

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

const percentile = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))] ?? 0

console.log(`# ${os.cpus().length} CPUs, Node ${process.version}, PostgreSQL at ${new URL(serverPg).host}`)
const standin = await startProcoreStandin({ clientId: 'bench-client', clientSecret: 'bench-secret' })
standin.addCompany(COMPANY, 'Bench Builders')
const vendors = Array.from({ length: VENDORS }, (_, i) => standin.seed(COMPANY, 'vendors', { name: `Vendor ${i}` }).id)

const databaseUrl = await freshDatabase(process.env.BENCH_DB ?? 'bench_procore_webhooks')
const db = new pg.Pool({ connectionString: databaseUrl, max: 2 })
const apiPort = await freePort()
const common = {
  DATABASE_URL: databaseUrl,
  ENCRYPTION_KEYS: `bench:${Buffer.alloc(32, 3).toString('base64')}`,
  PROCORE_API_URL: standin.url,
  PROCORE_LOGIN_URL: standin.url,
  PROCORE_CLIENT_ID: 'bench-client',
  PROCORE_CLIENT_SECRET: 'bench-secret',
  PUBLIC_URL: `http://127.0.0.1:${apiPort}`,
}
const api = await startService({ ...common, WORKER_ENABLED: 'false' }, apiPort)
const key = /esk_\w+_[\w-]+/.exec(api.out())?.[0]
if (!key) throw new Error('no admin key printed')
const call = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(`http://127.0.0.1:${apiPort}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`)
  return res.json() as Promise<Record<string, unknown>>
}
await call('POST', '/v1/companies', { id: COMPANY, name: 'Bench Builders', erpSystem: 'vista' })
await call('POST', `/v1/companies/${COMPANY}/procore/connect`, {
  mode: 'client_credentials',
  clientId: 'bench-client',
  clientSecret: 'bench-secret',
})
await call('PUT', `/v1/companies/${COMPANY}/procore/webhook`, { payloadVersion: 'v2.0' })
const authorization = standin.webhooks.hooks()[0]!.destination_headers.Authorization!

let n = 0
const event = () => {
  n++
  const ulid = `01J${randomBytes(12).toString('hex').toUpperCase()}`.slice(0, 26)
  return (
    `{"id":${n},"ulid":"${ulid}","timestamp":"${new Date().toISOString()}",` +
    `"metadata":{"source_user_id":1,"source_project_id":null,"source_operation_id":null,` +
    `"source_company_id":${COMPANY},"source_application_id":null},` +
    `"user_id":1,"company_id":${COMPANY},"project_id":null,"api_version":"v2.0","event_type":"update",` +
    `"resource_name":"Company Vendors","resource_id":${vendors[n % VENDORS]}}`
  )
}
/** Inbox ids of every delivery answered 2xx: each must be a committed row. */
const acknowledged = new Set<string>()
const load = (opts: Record<string, unknown>, port = apiPort) =>
  autocannon({
    url: `http://127.0.0.1:${port}/webhooks/procore`,
    connections: CONNECTIONS,
    requests: [
      {
        method: 'POST',
        headers: { authorization, 'content-type': 'application/json' },
        setupRequest: (req: Record<string, unknown>) => ({ ...req, body: event() }),
        onResponse: (status: number, body: string) => {
          if (status >= 200 && status < 300) acknowledged.add((JSON.parse(body) as { id: string }).id)
        },
      },
    ],
    ...opts,
  })
const ackedButMissing = async () => {
  const ids = [...acknowledged]
  const found = Number(
    (await db.query<{ n: string }>('select count(*) as n from inbox_events where id = any($1::bigint[])', [ids]))
      .rows[0]!.n,
  )
  return ids.length - found
}
const count = async (where = 'true') =>
  Number((await db.query<{ n: string }>(`select count(*) as n from inbox_events where ${where}`)).rows[0]!.n)
const drain = async () => {
  while ((await count(`status = 'queued'`)) > 0) await sleep(100)
}
const singleReads = () =>
  standin.calls.filter((c) => c.method === 'GET' && /^\/rest\/v1\.0\/vendors\/\d+$/.test(c.path)).length
const listReads = () =>
  standin.calls.filter(
    (c) => c.method === 'GET' && c.path === '/rest/v1.0/vendors' && (c.query.filters as { id?: unknown })?.id,
  ).length
const reads = () => singleReads() + listReads()
const readsSince = (before: { lists: number; singles: number }) => {
  const lists = listReads() - before.lists
  const singles = singleReads() - before.singles
  return { lists, singles, text: `${lists + singles} Procore calls (${lists} lists by id, ${singles} single reads)` }
}
const readMark = () => ({ lists: listReads(), singles: singleReads() })

// 0. the bare baseline, same load
const barePort = await freePort()
const bare = await startBare(databaseUrl, barePort)
const base = await load({ duration: SECONDS }, barePort)
await stop(bare)
console.log(
  `0. bare baseline (Fastify + pg, one INSERT per delivery), autocannon -c ${CONNECTIONS} -d ${SECONDS}: ` +
    `${Math.round(base.requests.average)} req/s mean, latency p50 ${base.latency.p50} ms, p99 ${base.latency.p99} ms`,
)
acknowledged.clear()

// A. intake only
const a = await load({ duration: SECONDS })
const stored = await count()
console.log(
  `A. intake, POST /webhooks/procore, autocannon -c ${CONNECTIONS} -d ${SECONDS} (API process only, worker off): ` +
    `${Math.round(a.requests.average)} req/s mean, latency p50 ${a.latency.p50} ms, p99 ${a.latency.p99} ms, ` +
    `max ${a.latency.max} ms; ` +
    `2xx ${a['2xx']}, non-2xx ${a.non2xx}, errors ${a.errors}; ${stored} rows stored, ` +
    `acknowledged but not stored: ${await ackedButMissing()}; ` +
    `vs bare: ${(a.requests.average / base.requests.average).toFixed(2)}× req/s, ` +
    `${(a.latency.p99 / base.latency.p99).toFixed(2)}× p99`,
)

// B. drain the backlog with a worker process
const workerPort = await freePort()
const readsBefore = reads()
const markB = readMark()
const changedB = Number(
  (await db.query<{ n: string }>('select count(distinct resource_id) as n from inbox_events')).rows[0]!.n,
)
const worker = await startService({ ...common, WORKER_ENABLED: 'true', WORKER_CONCURRENCY: '4' }, workerPort)
const readyAt = Date.now()
await drain()
// From the worker's readiness to the last event settled (polled every 100 ms): events settled together share
// one processed_at, so the spread of processed_at says nothing.
const span = (Date.now() - readyAt) / 1000
console.log(
  `B. backlog of ${stored} events on ${VENDORS} records drained by one worker process (WORKER_CONCURRENCY 4), ` +
    `worker ready → all processed: ` +
    `${span.toFixed(1)} s = ${Math.round(stored / span)} events/s; ${changedB} changed records, ` +
    `${Math.round(changedB / span)} records re-read/s; ${readsSince(markB).text} = ` +
    `${Math.round(((reads() - readsBefore) * 1000) / changedB)} calls per 1,000 changed records`,
)

// C. end to end, worker running
await db.query('truncate inbox_events')
const markC = readMark()
const started = Date.now()
acknowledged.clear()
const c = await load({ amount: EVENTS })
await drain()
const missingC = await ackedButMissing()
const { rows } = await db.query<{ received_at: Date; processed_at: Date }>(
  `select received_at, processed_at from inbox_events where processed_at is not null`,
)
const lastProcessed = Math.max(...rows.map((r) => r.processed_at.getTime()))
const lag = rows.map((r) => r.processed_at.getTime() - r.received_at.getTime())
console.log(
  `C. end to end, ${EVENTS} events at -c ${CONNECTIONS} with the worker running: ` +
    `intake ${Math.round(c.requests.average)} req/s ` +
    `(p99 ${c.latency.p99} ms, non-2xx ${c.non2xx}, acknowledged but not stored ${missingC}); ` +
    `first request → last processed ${((lastProcessed - started) / 1000).toFixed(1)} s = ` +
    `${Math.round(EVENTS / ((lastProcessed - started) / 1000))} events/s; ` +
    `received → processed p50 ${percentile(lag, 50)} ms, p99 ${percentile(lag, 99)} ms; ` +
    `${readsSince(markC).text} for ${Math.min(EVENTS, VENDORS)} changed records`,
)

// D. isolated changes, one at a time on a record not read for a while
await db.query('truncate inbox_events')
const lagD: number[] = []
const markD = readMark()
for (let i = 0; i < 50; i++) {
  const res = await fetch(`http://127.0.0.1:${apiPort}/webhooks/procore`, {
    method: 'POST',
    headers: { authorization, 'content-type': 'application/json' },
    body: event(),
  })
  const { id } = (await res.json()) as { id: string }
  let row: { received_at: Date; processed_at: Date | null } | undefined
  for (;;) {
    row = (
      await db.query<{ received_at: Date; processed_at: Date | null }>(
        'select received_at, processed_at from inbox_events where id = $1',
        [id],
      )
    ).rows[0]
    if (row?.processed_at) break
    await sleep(5)
  }
  lagD.push(row.processed_at.getTime() - row.received_at.getTime())
  await sleep(100)
}
console.log(
  `D. 50 isolated changes (one event, then wait): received → processed p50 ${percentile(lagD, 50)} ms, ` +
    `p95 ${percentile(lagD, 95)} ms, max ${Math.max(...lagD)} ms; ${readsSince(markD).text}`,
)

await stop(worker.child)
await stop(api.child)
await db.end()
await standin.close()
