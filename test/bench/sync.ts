// Benchmark of the sync core. Prints figures; asserts nothing about time.
//
//   npx tsx test/bench/sync.ts                       # everything, on TEST_DATABASE_URL / DATABASE_URL
//                                                    # or an embedded PostgreSQL
//   npx tsx test/bench/sync.ts --sizes=10000 --skip=e2e
//
// 1. Suggestions: N Procore × N ERP vendors (synthetic, see `vendors()`), set-based in PostgreSQL:
//    the bulk plan at minScore 0.9 (exact keys) and 0.75 (plus trigram prefix join on names),
//    and GET …/suggestions for single records; time and the process's peak RSS.
// 2. Discrepancy evaluation: 10k linked pairs, 10k changed Procore snapshots, one evaluation job.
// 3. HTTP calls Procore receives for create-in-procore of 10k records.
// 4. End to end: a change of a Procore-owned field in the Procore stand-in → webhook → the value
//    written in the ERP stand-in; median and p95 over 100 changes.
import { createServer, type AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { pino } from 'pino'
import type { AppContext } from '../../src/context.js'
import type { Database, Db } from '../../src/db/database.js'
import { audit } from '../../src/sync/audit.js'
import { runEvaluation } from '../../src/sync/evaluate.js'
import { insertLinks } from '../../src/sync/links.js'
import { entity } from '../../src/sync/registry.js'
import { upsertSnapshots } from '../../src/sync/snapshots.js'
import { listRecords } from '../../src/sync/status.js'
import { planBulkLink, suggestionsFor } from '../../src/sync/suggestions.js'
import { freshDatabase, startEnvironment } from '../sync/fixtures/environment.js'
import { vendors } from './lib/vendors.js'

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1]
const sizes = (arg('sizes') ?? '10000,100000').split(',').map(Number)
const skip = new Set((arg('skip') ?? '').split(',').filter(Boolean))
const serverUrl = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL
const COMPANY = '5358233'
const log = pino({ level: 'warn' })

let peakRss = 0
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss)
}, 20)
sampler.unref()
const mb = (bytes: number) => `${Math.round(bytes / 1048576)} MB`
const since = (t: bigint) => Number(process.hrtime.bigint() - t) / 1e6
const fmt = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`)
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!

async function load(db: Db, side: 'procore' | 'erp', rows: Array<Record<string, unknown>>) {
  for (let i = 0; i < rows.length; i += 2000) {
    await upsertSnapshots(
      db,
      COMPANY,
      side,
      'vendor',
      rows.slice(i, i + 2000).map((raw) => ({ ...entity('vendor')[side].from(raw), raw })),
    )
  }
}

async function withDb<T>(fn: (db: Db) => Promise<T>): Promise<T> {
  const cleanups: Array<() => Promise<unknown>> = []
  try {
    const url = await freshDatabase(serverUrl, cleanups)
    const db = new Kysely<Database>({
      dialect: new PostgresDialect({
        pool: new pg.Pool({ connectionString: url, max: 4, statement_timeout: 900_000 }),
      }),
    })
    try {
      await db.insertInto('companies').values({ id: COMPANY, name: 'Bench', erp_system: 'vista' }).execute()
      return await fn(db)
    } finally {
      await db.destroy()
    }
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => {})
  }
}

async function suggestions(n: number) {
  await withDb(async (db) => {
    const data = vendors(n)
    let t = process.hrtime.bigint()
    await load(db, 'procore', data.procore)
    await load(db, 'erp', data.erp)
    await db.deleteFrom('sync_dirty').execute()
    console.log(`  loaded ${n} + ${n} vendor snapshots (with match keys) in ${fmt(since(t))}`)
    await sql_analyze(db)
    for (const minScore of [0.9, 0.75]) {
      peakRss = process.memoryUsage().rss
      t = process.hrtime.bigint()
      const plan = await planBulkLink(db, COMPANY, 'vendor', minScore, { statementTimeoutMs: 900_000 })
      console.log(
        `  bulk plan, minScore ${minScore}: ${fmt(since(t))}, ${plan.unambiguous.length} unambiguous pairs, ` +
          `${plan.ambiguous.length} ambiguous; peak RSS ${mb(peakRss)}`,
      )
      if (plan.nameMatchingSkipped) console.log(`    ${plan.nameMatchingSkipped}`)
    }
    const times: number[] = []
    for (let i = 0; i < 100; i++) {
      const id = data.procore[(i * 7919) % n]!.id as string
      t = process.hrtime.bigint()
      await suggestionsFor(db, COMPANY, 'vendor', 'procore', id, 10)
      times.push(since(t))
    }
    console.log(
      `  GET suggestions for one record (100 records): median ${fmt(pct(times, 0.5))}, p95 ${fmt(pct(times, 0.95))}`,
    )
    // The record list people page through: first page, a status filter, a search; 5 times each.
    for (const [label, filter] of [
      ['first page', {}],
      ['status=only_in_erp', { status: 'only_in_erp' as const }],
      ['q=concrete', { q: 'concrete' }],
    ] as const) {
      const runs: number[] = []
      for (let i = 0; i < 5; i++) {
        t = process.hrtime.bigint()
        await listRecords(db, COMPANY, 'vendor', filter, { limit: 50 })
        runs.push(since(t))
      }
      console.log(`  GET records (${label}, 50 with counts): median ${fmt(pct(runs, 0.5))}`)
    }
  })
}

async function sql_analyze(db: Db) {
  const { sql } = await import('kysely')
  await sql`analyze record_keys`.execute(db)
  await sql`analyze record_snapshots`.execute(db)
}

async function evaluation(n: number) {
  await withDb(async (db) => {
    const data = vendors(n)
    // Twins with the same fields on both sides, linked.
    const erp = data.procore.map((p, i) => ({
      id: `V${i}`,
      code: null,
      name: p.name,
      email: p.email_address ?? '',
      updated_at: '2024-01-01T00:00:00Z',
    }))
    await load(
      db,
      'procore',
      data.procore.map((p, i) => ({ ...p, origin_id: `V${i}` })),
    )
    await load(db, 'erp', erp)
    const actor = { id: 'bench' }
    await db.transaction().execute(async (tx) => {
      await insertLinks(
        tx,
        COMPANY,
        'vendor',
        data.procore.map((p, i) => ({ procoreId: p.id as string, erpId: `V${i}`, detail: 'bench', originSet: true })),
        actor,
      )
      await audit(tx, COMPANY, actor, [])
    })
    const ctx = { db, log } as unknown as AppContext
    await runEvaluation(ctx, COMPANY, 'vendor')
    // Every Procore record renamed: n changed snapshots, n discrepancies to open.
    await load(
      db,
      'procore',
      data.procore.map((p, i) => ({
        ...p,
        origin_id: `V${i}`,
        name: `${String(p.name)} (renamed)`,
        updated_at: '2024-02-01T00:00:00Z',
      })),
    )
    const t = process.hrtime.bigint()
    const { evaluated } = await runEvaluation(ctx, COMPANY, 'vendor')
    const ms = since(t)
    const open = await db
      .selectFrom('discrepancies')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('status', '=', 'open')
      .executeTakeFirstOrThrow()
    console.log(
      `  ${evaluated} changed records evaluated in ${fmt(ms)}: ${(ms / evaluated).toFixed(3)} ms per changed record; ` +
        `${open.n} discrepancies opened`,
    )
  })
}

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

async function createInProcore(n: number) {
  // The stand-ins share this process: a long sync call must not look like a dead worker.
  const env = await startEnvironment({
    serverUrl,
    env: { WORKER_HEARTBEAT_MS: '120000' },
    seed: (_p, erp) => {
      for (let i = 0; i < n; i++) erp.seed('vendors', { code: `B${i}`, name: `Bench Vendor ${i}` })
    },
  })
  try {
    const ids = env.erp.list('vendors').map((v) => v.id)
    const before = env.procore.calls.length
    const t = process.hrtime.bigint()
    const start = await env.call(
      'POST',
      `/v1/companies/${env.companyId}/records/vendor/create-in-procore`,
      { erpIds: ids },
      { 'idempotency-key': 'bench' },
    )
    const run = await env.waitRun(start.body.id)
    const ms = since(t)
    const calls = env.procore.calls.slice(before)
    const byPath = new Map<string, number>()
    for (const c of calls)
      byPath.set(
        `${c.method} ${c.path.replace(/\d{6,}/g, ':id')}`,
        (byPath.get(`${c.method} ${c.path.replace(/\d{6,}/g, ':id')}`) ?? 0) + 1,
      )
    console.log(
      `  ${JSON.stringify(run.result.counts)} in ${fmt(ms)}; HTTP calls to the Procore stand-in: ${calls.length} ` +
        `(${[...byPath].map(([k, v]) => `${v}× ${k}`).join(', ')})`,
    )
  } finally {
    await env.stop()
  }
}

async function endToEnd(changes: number) {
  const port = await freePort()
  const env = await startEnvironment({
    serverUrl,
    port,
    env: { WORKER_HEARTBEAT_MS: '120000' },
    seed: (procore, erp, c) => {
      for (let i = 0; i < changes; i++) {
        procore.seed(c, 'vendors', { name: `E2E Vendor ${i}`, email_address: `e2e${i}@bench.example` })
        erp.seed('vendors', { code: `E${i}`, name: `E2E Vendor ${i}`, email: `e2e${i}@bench.example` })
      }
    },
  })
  try {
    const c = env.companyId
    const settings = await env.call('GET', `/v1/companies/${c}/sync-settings`)
    await env.call(
      'PUT',
      `/v1/companies/${c}/sync-settings`,
      { types: { vendor: { direction: 'both', fieldOwners: { name: 'procore' } } } },
      { 'if-match': settings.etag ?? '' },
    )
    const bulk = await env.call(
      'POST',
      `/v1/companies/${c}/links/bulk`,
      { type: 'vendor', minScore: 0.9 },
      { 'idempotency-key': 'e2e-bulk' },
    )
    const linked = await env.waitRun(bulk.body.id)
    const links = (linked.result.items as Array<{ procoreId: string; erpId: string; status: string }>).filter(
      (x) => x.status === 'linked',
    )
    // Let the origin writes and their webhooks settle before measuring.
    await sleep(3000)
    const times: number[] = []
    const toSnapshot: number[] = []
    for (const [i, l] of links.slice(0, changes).entries()) {
      const name = `E2E Vendor ${i} renamed`
      const t = process.hrtime.bigint()
      env.procore.change(c, 'vendors', l.procoreId, { name })
      let snapshotAt: number | undefined
      while (env.erp.get('vendors', l.erpId)?.name !== name) {
        if (snapshotAt === undefined) {
          const s = await env.app.db
            .selectFrom('record_snapshots')
            .select('fields')
            .where('company_id', '=', c)
            .where('side', '=', 'procore')
            .where('type', '=', 'vendor')
            .where('external_id', '=', l.procoreId)
            .executeTakeFirst()
          if (s?.fields.name === name) snapshotAt = since(t)
        }
        await sleep(2)
      }
      times.push(since(t))
      toSnapshot.push(snapshotAt ?? times.at(-1)!)
    }
    const ours = times.map((x, i) => x - toSnapshot[i]!)
    console.log(
      `  ${times.length} changes (${links.length} linked pairs): median ${fmt(pct(times, 0.5))}, ` +
        `p95 ${fmt(pct(times, 0.95))}, max ${fmt(Math.max(...times))}`,
    )
    console.log(
      `    of which webhook → inbox → re-read → snapshot: median ${fmt(pct(toSnapshot, 0.5))}, ` +
        `p95 ${fmt(pct(toSnapshot, 0.95))}`,
    )
    console.log(
      `    and snapshot → evaluate → propagate → ERP written: median ${fmt(pct(ours, 0.5))}, ` +
        `p95 ${fmt(pct(ours, 0.95))}`,
    )
  } finally {
    await env.stop()
  }
}

console.log(
  `sync benchmark on ${serverUrl ? serverUrl.replace(/\/\/[^@]*@/, '//') : 'an embedded PostgreSQL'}; Node ${process.version}`,
)
if (!skip.has('suggestions')) {
  for (const n of sizes) {
    console.log(`\n1. suggestions, ${n} × ${n} vendors`)
    await suggestions(n)
  }
}
if (!skip.has('evaluation')) {
  console.log('\n2. discrepancy evaluation, 10,000 linked pairs, every Procore record renamed')
  await evaluation(10_000)
}
if (!skip.has('create')) {
  console.log('\n3. create-in-procore of 10,000 ERP vendors')
  await createInProcore(10_000)
}
if (!skip.has('e2e')) {
  console.log('\n4. end to end: Procore change (webhook) → value written in the ERP, 100 changes one after another')
  await endToEnd(100)
}
clearInterval(sampler)
