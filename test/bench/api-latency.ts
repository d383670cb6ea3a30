/**
 * API latency at a fixed offered rate: the record list page (limit=50) at 1k, 10k and 100k records,
 * POST /links and DELETE /links, each beside GET /health/live at the same rate in the same run (the
 * machine may be loaded: compare with it). Prints figures; asserts nothing about time.
 *
 *   TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npx tsx test/bench/api-latency.ts
 *   … --sizes=1000,10000,100000 --rate=200 --duration=10 --connections=20
 *
 * The service runs in a child process (src/server.ts, its worker on) against a fresh database;
 * records are vendors written as snapshots (half Procore, half ERP, a fifth of them linked).
 */
import { spawn } from 'node:child_process'
import autocannon from 'autocannon'
import { sql } from 'kysely'
import { pino } from 'pino'
import { createDb } from '../../src/db/pool.js'
import { entity } from '../../src/sync/registry.js'
import { upsertSnapshots } from '../../src/sync/snapshots.js'
import { freshDatabase } from '../sync/fixtures/environment.js'

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1]
const sizes = (arg('sizes') ?? '1000,10000,100000').split(',').map(Number)
const rate = Number(arg('rate') ?? 200)
const duration = Number(arg('duration') ?? 10)
const connections = Number(arg('connections') ?? 20)
const PORT = Number(arg('port') ?? 3391)
const COMPANY = '5358234'
const LINK_PAIRS = rate * duration + 200

const cleanups: Array<() => Promise<unknown>> = []
const url = await freshDatabase(process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL, cleanups)
const { db } = createDb(
  { url, poolMax: 4, connectTimeoutMs: 5000, statementTimeoutMs: 600_000 },
  pino({ level: 'warn' }),
)

const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
  env: {
    ...process.env,
    LOG_LEVEL: 'warn',
    PORT: String(PORT),
    DATABASE_URL: url,
    ENCRYPTION_KEYS: `bench:${Buffer.alloc(32, 1).toString('base64')}`,
    RATE_LIMIT_PER_MINUTE: '0',
    // Offered load is what is measured: the event-loop guard would refuse part of it on a loaded machine.
    PRESSURE_MAX_EVENT_LOOP_DELAY_MS: '0',
  },
  stdio: ['ignore', 'pipe', 'inherit'],
})
let out = ''
child.stdout.on('data', (d: Buffer) => (out += d.toString()))
const stop = () => {
  if (child.exitCode === null) child.kill('SIGTERM')
}
process.on('exit', stop)
const base = `http://127.0.0.1:${PORT}`
for (;;) {
  const ok = await fetch(`${base}/health/ready`).then(
    (r) => r.ok,
    () => false,
  )
  if (ok) break
  if (child.exitCode !== null) throw new Error(`server exited: ${out}`)
  await new Promise((r) => setTimeout(r, 50))
}
const key = /esk_\w+_[\w-]+/.exec(out)?.[0]
if (!key) throw new Error(`no API key printed: ${out}`)
const auth = { authorization: `Bearer ${key}` }
const created = await fetch(`${base}/v1/companies`, {
  method: 'POST',
  headers: { ...auth, 'content-type': 'application/json' },
  body: JSON.stringify({ id: COMPANY, name: 'Bench', erpSystem: 'foundation' }),
})
if (created.status !== 201) throw new Error(`company: ${created.status} ${await created.text()}`)

type Result = { requests: { average: number }; latency: { p50: number; p99: number }; non2xx: number }
async function load(
  what: string,
  path: string,
  opts: {
    method?: 'POST' | 'DELETE'
    body?: (i: number) => string
    headers?: (i: number) => Record<string, string>
    pathOf?: (i: number) => string
    amount?: number
  } = {},
) {
  let i = 0
  const result = (await autocannon({
    url: `${base}${path}`,
    connections,
    ...(opts.amount ? { amount: opts.amount } : { duration }),
    overallRate: rate,
    headers: auth,
    ...(opts.method
      ? {
          requests: [
            {
              method: opts.method,
              setupRequest: (req: autocannon.Request) => {
                const n = i++
                return {
                  ...req,
                  ...(opts.body ? { body: opts.body(n) } : {}),
                  headers: { ...auth, 'content-type': 'application/json', ...opts.headers?.(n) },
                  ...(opts.pathOf ? { path: opts.pathOf(n) } : {}),
                }
              },
            },
          ],
        }
      : {}),
  })) as unknown as Result
  console.log(
    `  ${what.padEnd(52)} ${String(Math.round(result.requests.average)).padStart(4)} req/s, ` +
      `p50 ${String(result.latency.p50).padStart(4)} ms, p99 ${String(result.latency.p99).padStart(5)} ms, ` +
      `non-2xx ${result.non2xx}`,
  )
}

/** Waits until the service's jobs are done with the new records (evaluation of every changed record). */
async function quiet() {
  const started = performance.now()
  for (;;) {
    const { rows } = await sql<{ n: string }>`select
      (select count(*) from graphile_worker._private_jobs j
        where (j.locked_at is not null or j.is_available) and j.payload->>'companyId' = ${COMPANY})
      + (select count(*) from sync_dirty where company_id = ${COMPANY}) as n`.execute(db)
    if (Number(rows[0]!.n) === 0) break
    await new Promise((r) => setTimeout(r, 500))
  }
  await sql`vacuum analyze record_item_dirty, sync_dirty`.execute(db)
  console.log(`  (background evaluation of the new records done in ${Math.round(performance.now() - started)} ms)`)
}

const vendors = (side: 'procore' | 'erp', from: number, to: number, prefix: string) =>
  Array.from({ length: to - from }, (_, j) => {
    const n = from + j
    const raw =
      side === 'procore'
        ? {
            id: `${prefix}p${n}`,
            name: `Vendor ${prefix}${String(n).padStart(6, '0')}`,
            updated_at: '2024-01-01T00:00:00Z',
          }
        : {
            id: `${prefix}e${n}`,
            code: `${prefix}C${n}`,
            name: `Vendor ${prefix}${String(n).padStart(6, '0')}`,
            updated_at: '2024-01-01T00:00:00Z',
          }
    return { ...entity('vendor')[side].from(raw), raw }
  })

console.log(
  `autocannon -c ${connections} -d ${duration} --overallRate ${rate} against src/server.ts (child process), ` +
    `PostgreSQL ${new URL(url).host}`,
)
let have = 0
for (const size of sizes) {
  // size records in all: size/2 a side, a fifth of the pairs linked.
  for (const side of ['procore', 'erp'] as const) {
    for (let n = have / 2; n < size / 2; n += 5000)
      await upsertSnapshots(db, COMPANY, side, 'vendor', vendors(side, n, Math.min(size / 2, n + 5000), ''))
  }
  await sql`insert into record_links (company_id, type, procore_id, erp_id, origin_state, created_by)
    select ${COMPANY}, 'vendor', 'p' || n, 'e' || n, 'set', 'bench'
    from generate_series(${have / 2}::int, ${size / 2 - 1}::int) n where n % 5 = 0`.execute(db)
  have = size
  await quiet()
  await sql`analyze`.execute(db)
  // The first read folds the new records into the list's index (once, not per request).
  const warm = performance.now()
  await fetch(`${base}/v1/companies/${COMPANY}/records/vendor?limit=50`, { headers: auth })
  console.log(`${size} records (first read after the load: ${Math.round(performance.now() - warm)} ms)`)
  await load('GET /health/live', '/health/live')
  await load('GET …/records/vendor?limit=50', `/v1/companies/${COMPANY}/records/vendor?limit=50`)
  await load(
    'GET …/records/vendor?status=only_in_erp&limit=50',
    `/v1/companies/${COMPANY}/records/vendor?status=only_in_erp&limit=50`,
  )
}

// Links: distinct free pairs, one per request, then their unlinks.
for (const side of ['procore', 'erp'] as const) {
  for (let n = 0; n < LINK_PAIRS; n += 5000)
    await upsertSnapshots(db, COMPANY, side, 'vendor', vendors(side, n, Math.min(LINK_PAIRS, n + 5000), 'L'))
}
await quiet()
await sql`analyze`.execute(db)
console.log(`links (${have + 2 * LINK_PAIRS} records; Procore not connected: the origin job compares and waits)`)
await load('GET /health/live', '/health/live')
await load('POST …/links', `/v1/companies/${COMPANY}/links`, {
  method: 'POST',
  body: (n) => JSON.stringify({ type: 'vendor', procoreId: `Lp${n}`, erpId: `Le${n}` }),
  headers: (n) => ({ 'idempotency-key': `bench-link-${n}` }),
})
const { rows } = await sql<{ id: string; version: number }>`select id, version from record_links
  where company_id = ${COMPANY} and procore_id like 'Lp%' and unlinked_at is null order by created_at`.execute(db)
await load('GET /health/live', '/health/live')
await load('DELETE …/links/{id}', `/v1/companies/${COMPANY}/links/${rows[0]!.id}`, {
  method: 'DELETE',
  pathOf: (n) => `/v1/companies/${COMPANY}/links/${rows[n % rows.length]!.id}`,
  headers: (n) => ({ 'if-match': `"${rows[n % rows.length]!.version}"` }),
  amount: rows.length,
})

child.kill('SIGTERM')
await new Promise((r) => child.on('exit', r))
await db.destroy()
for (const c of cleanups.reverse()) await c()
