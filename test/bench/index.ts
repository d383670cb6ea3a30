/**
 * `npm run bench`: the performance figures of the service, each beside a baseline measured in the same run, as
 * medians of interleaved rounds; a table, then JSON. See test/bench/README.md.
 *
 *   npm run bench                                # everything (about 15 min on 2 cores)
 *   npm run bench -- --quick                     # one round, small sizes (a few minutes)
 *   npm run bench -- --only=startup,intake --json=bench.json
 *
 * The service is the compiled build (`npm run build`), started as child processes against TEST_DATABASE_URL /
 * DATABASE_URL (a fresh database per scenario, dropped at the end) or an embedded PostgreSQL, with the Procore and
 * ERP stand-ins on loopback in this process. It is spoken to over HTTP only: the public API with an API key, and
 * Procore webhooks signed with the Authorization header it installed. Call counts come from the stand-ins'
 * traffic logs. Nothing here asserts a time.
 */
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import os from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { sql } from 'kysely'
import { pino } from 'pino'
import { createDb } from '../../src/db/pool.js'
import { entity } from '../../src/sync/registry.js'
import { upsertSnapshots } from '../../src/sync/snapshots.js'
import { planBulkLink } from '../../src/sync/suggestions.js'
import { startErpStandin, type ErpStandin } from '../standins/erp/index.js'
import { startProcoreStandin, type ProcoreStandin } from '../standins/procore/index.js'
import { load } from './lib/load.js'
import {
  Api,
  Databases,
  ENCRYPTION_KEYS,
  freePort,
  printedKey,
  readyPhases,
  run,
  startBare,
  startService,
  type Started,
} from './lib/processes.js'
import { median, num, percentile, table, toRow, type Figure, type Row } from './lib/stats.js'
import { vendors } from './lib/vendors.js'

// ---------------------------------------------------------------------------------------------------------------
// Options

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const flag = (name: string) => process.argv.includes(`--${name}`)
const quick = flag('quick')
const GROUPS = ['startup', 'intake', 'drain', 'freshness', 'list', 'links', 'bulk'] as const
const only = new Set((arg('only') ?? GROUPS.join(',')).split(',').filter(Boolean))
for (const g of only)
  if (!(GROUPS as readonly string[]).includes(g))
    throw new Error(`--only: unknown figure ${g}; one of ${GROUPS.join(', ')}`)
const want = (g: (typeof GROUPS)[number]) => only.has(g)
const ROUNDS = Number(arg('rounds') ?? (quick ? 1 : 3))
const CFG = quick
  ? {
      intakeSeconds: 2,
      companies: [1, 10],
      rateSeconds: 2,
      sizes: [1000],
      mainSize: 1000,
      drain: 200,
      fresh: 10,
      bulk: 2000,
    }
  : {
      intakeSeconds: 8,
      companies: [1, 10, 100],
      rateSeconds: 5,
      sizes: [1000, 4000, 10_000, 100_000],
      mainSize: 4000,
      drain: 1000,
      fresh: 50,
      bulk: 10_000,
    }
const RATE = 200 // offered req/s where the issue says "at 200 req/s offered"
const INTAKE_CONNECTIONS = 50
const LIST_CONNECTIONS = 20

const figures: Figure[] = []
const scaling: Figure[] = []
const details: Record<string, unknown> = {}
const say = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`)
const since = (t: number) => performance.now() - t
/** Interleaving: even rounds run the service first, odd rounds the baseline first. */
async function interleaved(round: number, service: () => Promise<void>, baseline: () => Promise<void>) {
  if (round % 2 === 0) {
    await service()
    await baseline()
  } else {
    await baseline()
    await service()
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Set-up shared by the scenarios

const databases = await Databases.start(process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL)
const CLIENT = { id: 'bench-client', secret: 'bench-secret' }
const procore: ProcoreStandin = await startProcoreStandin({
  clientId: CLIENT.id,
  clientSecret: CLIENT.secret,
  webhookRetry: { initialDelayMs: 100, maxDelayMs: 2000, discardAfterMs: 3_600_000 },
  logger: false,
})
const erp: ErpStandin = await startErpStandin({ system: 'foundation', companyName: 'Bench Builders', logger: false })
const running = new Set<Started>()
const track = async (p: Promise<Started>) => {
  const s = await p
  running.add(s)
  const stop = s.stop
  s.stop = async () => {
    running.delete(s)
    await stop()
  }
  return s
}
const cleanup = async () => {
  for (const s of [...running]) await s.stop().catch(() => {})
  await procore.close().catch(() => {})
  await erp.close().catch(() => {})
  await databases.stop().catch(() => {})
}
process.on('SIGINT', () => void cleanup().finally(() => process.exit(130)))

const serviceEnv = (databaseUrl: string, publicPort: number, extra: Record<string, string> = {}) => ({
  DATABASE_URL: databaseUrl,
  ENCRYPTION_KEYS,
  DATA_DIR: os.tmpdir(),
  LOG_LEVEL: 'warn',
  PUBLIC_URL: `http://127.0.0.1:${publicPort}`,
  PROCORE_API_URL: procore.url,
  PROCORE_LOGIN_URL: procore.url,
  PROCORE_CLIENT_ID: CLIENT.id,
  PROCORE_CLIENT_SECRET: CLIENT.secret,
  // A benchmark client is one key sending hundreds of requests a second.
  RATE_LIMIT_PER_MINUTE: '10000000',
  DB_POOL_MAX: '10',
  ...extra,
})

/** Registers a company and connects it to the Procore stand-in; optionally installs the webhook. */
async function addCompany(api: Api, id: string, opts: { webhook?: boolean; erp?: boolean } = {}) {
  procore.addCompany(id, `Bench ${id}`)
  await api.must('POST', '/v1/companies', { id, name: `Bench ${id}`, erpSystem: erp.system })
  await api.must('POST', `/v1/companies/${id}/procore/connect`, {
    mode: 'client_credentials',
    clientId: CLIENT.id,
    clientSecret: CLIENT.secret,
  })
  if (opts.webhook) await api.must('PUT', `/v1/companies/${id}/procore/webhook`, { payloadVersion: 'v2.0' })
  if (opts.erp) {
    const conn = await api.must('PUT', `/v1/companies/${id}/erp/connection`, { baseUrl: erp.url, token: erp.token })
    erp.notifications.configure(`${api.base}/webhooks/erp/${id}`, conn.body.notificationSecret)
  }
}

const hookAuthorization = (companyId: string) => {
  const hook = procore.webhooks.hooks().find((h) => h.owned_by_company_id === companyId)
  const authorization = hook?.destination_headers.Authorization
  if (!authorization) throw new Error(`no webhook installed for company ${companyId}`)
  return authorization
}

let eventSeq = 0
/** A Procore v2.0 webhook body, as the stand-in (and Procore) sends it. */
const webhookBody = (companyId: string, resourceId: string) => {
  eventSeq++
  const ulid = `01J${randomBytes(12).toString('hex').toUpperCase()}`.slice(0, 26)
  return (
    `{"id":${eventSeq},"ulid":"${ulid}","timestamp":"${new Date().toISOString()}",` +
    `"metadata":{"source_user_id":1,"source_project_id":null,"source_operation_id":null,` +
    `"source_company_id":${companyId},"source_application_id":null},` +
    `"user_id":1,"company_id":${companyId},"project_id":null,"api_version":"v2.0","event_type":"update",` +
    `"resource_name":"Company Vendors","resource_id":${resourceId}}`
  )
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Start-up, then intake: one database, the API without a worker (deliveries are stored, not processed).

async function startupAndIntake() {
  const databaseUrl = await databases.create('bench_intake')
  const port = await freePort()
  say('intake database: first start of the service (migrates, prints the admin key)')
  let svc = await track(startService(serviceEnv(databaseUrl, port, { WORKER_ENABLED: 'false' }), port))
  const key = printedKey(svc.out())
  await svc.stop()

  if (want('startup')) {
    const service: number[] = []
    const bare: number[] = []
    const phases: Array<Record<string, number>> = []
    for (let r = 0; r < ROUNDS; r++) {
      await interleaved(
        r,
        async () => {
          const s = await track(startService(serviceEnv(databaseUrl, port, { LOG_LEVEL: 'info' }), port))
          service.push(s.readyMs)
          await sleep(300) // the ready line is written after listen
          const p = readyPhases(s.out())
          if (p) phases.push(p)
          await s.stop()
        },
        async () => {
          const b = await track(startBare(databaseUrl, port))
          bare.push(b.readyMs)
          await b.stop()
        },
      )
      say(`startup round ${r + 1}: service ${num(service.at(-1)!)} ms, bare ${num(bare.at(-1)!)} ms`)
    }
    const breakdown = Object.fromEntries(
      Object.keys(phases[0] ?? {}).map((k) => [k, median(phases.map((p) => p[k] ?? Number.NaN))]),
    )
    details.startupPhases = breakdown
    figures.push({
      id: 'startup',
      label: 'ready after start (compiled, migrated DB)',
      unit: 'ms',
      rounds: service,
      baselineLabel: 'bare node -e Fastify+pg',
      baselineRounds: bare,
      target: { kind: 'maxRatio', value: 1.5 },
      note: `phases (median ms): ${Object.entries(breakdown)
        .map(([k, v]) => `${k} ${num(v)}`)
        .join(', ')}`,
    })
  }

  if (!want('intake')) return
  svc = await track(startService(serviceEnv(databaseUrl, port, { WORKER_ENABLED: 'false' }), port))
  const api = new Api(svc.url, key)
  const maxCompanies = Math.max(...CFG.companies)
  const ids = Array.from({ length: maxCompanies }, (_, i) => String(61_000_001 + i))
  say(`intake: registering ${maxCompanies} companies with webhooks installed`)
  for (const id of ids) await addCompany(api, id, { webhook: true })
  const auth = new Map(ids.map((id) => [id, hookAuthorization(id)]))
  const barePort = await freePort()
  const bare = await track(startBare(databaseUrl, barePort, auth.get(ids[0]!)))

  const intake = async (url: string, companies: number, seconds = CFG.intakeSeconds) => {
    let n = 0
    const r = await load({
      url: `${url}/webhooks/procore`,
      connections: INTAKE_CONNECTIONS,
      duration: seconds,
      requests: [
        {
          method: 'POST',
          setupRequest: (req) => {
            const c = ids[n++ % companies]!
            return {
              ...req,
              headers: { authorization: auth.get(c)!, 'content-type': 'application/json' },
              body: webhookBody(c, String(4_400_000_000 + (n % 5000))),
            }
          },
        },
      ],
    })
    if (r.non2xx + r.errors > 0) say(`  intake at ${url}: ${r.non2xx} non-2xx, ${r.errors} errors`)
    return r
  }
  // Both servers first run a short while unmeasured: the figures are of steady state, not of the JIT warming up.
  await intake(svc.url, maxCompanies, 2)
  await intake(bare.url, 1, 2)
  const bareRounds: Array<{ rps: number; p99: number }> = []
  for (const companies of CFG.companies) {
    const svcRounds: Array<{ rps: number; p99: number }> = []
    for (let r = 0; r < ROUNDS; r++) {
      await interleaved(
        r,
        async () => void svcRounds.push(await intake(svc.url, companies)),
        async () => {
          // The bare server knows no companies: its rounds run once, beside the first company count.
          if (companies === CFG.companies[0]) bareRounds.push(await intake(bare.url, 1))
        },
      )
      say(
        `intake, ${companies} companies, round ${r + 1}: service ${num(svcRounds.at(-1)!.rps)} req/s ` +
          `p99 ${svcRounds.at(-1)!.p99} ms; bare ${num(bareRounds.at(-1)?.rps ?? Number.NaN)} req/s`,
      )
    }
    const rps = {
      unit: 'req/s',
      rounds: svcRounds.map((x) => x.rps),
      baselineLabel: 'bare Fastify+pg, one INSERT',
      baselineRounds: bareRounds.map((x) => x.rps),
      target: { kind: 'minRatio', value: 0.7 } as const,
    }
    const p99 = {
      unit: 'ms',
      rounds: svcRounds.map((x) => x.p99),
      baselineLabel: 'bare Fastify+pg, one INSERT',
      baselineRounds: bareRounds.map((x) => x.p99),
      target: { kind: 'maxRatio', value: 1.5 } as const,
    }
    const c = `-c ${INTAKE_CONNECTIONS} -d ${CFG.intakeSeconds}, ${companies} compan${companies === 1 ? 'y' : 'ies'}`
    if (companies === CFG.companies[0]) {
      figures.push({ id: 'intake', label: `webhook intake throughput (${c})`, ...rps })
      figures.push({ id: 'intake-p99', label: `webhook intake p99 (${c})`, ...p99 })
    }
    scaling.push({ id: `intake-${companies}`, label: `intake throughput, ${companies} companies`, ...rps })
  }
  await bare.stop()
  await svc.stop()
}

// ---------------------------------------------------------------------------------------------------------------
// 2. The sync scenario: an API process and a worker process on one database, one company connected to both
//    stand-ins; freshness, the drain, then list and link latency at growing record counts.

async function syncScenario() {
  const databaseUrl = await databases.create('bench_sync')
  const apiPort = await freePort()
  const workerPort = await freePort()
  const company = '5358233'
  procore.addCompany(company, 'Bench Builders')
  procore.seed(company, 'standard_cost_code_lists', { name: 'ERP cost codes', is_erp_list: true })
  // Twins in both systems (freshness), and Procore-only vendors whose changes make the drain.
  for (let i = 0; i < CFG.fresh + 1; i++) {
    procore.seed(company, 'vendors', { name: `Fresh Vendor ${i}`, email_address: `fresh${i}@bench.example` })
    erp.seed('vendors', { code: `F${i}`, name: `Fresh Vendor ${i}`, email: `fresh${i}@bench.example` })
  }
  const drainIds = Array.from(
    { length: want('drain') ? CFG.drain : 0 },
    (_, i) => procore.seed(company, 'vendors', { name: `Drain Vendor ${i}` }).id,
  )

  say('sync database: first start of the API process (migrates), then the worker process')
  const apiSvc = await track(startService(serviceEnv(databaseUrl, apiPort, { WORKER_ENABLED: 'false' }), apiPort))
  const api = new Api(apiSvc.url, printedKey(apiSvc.out()))
  const workerEnv = serviceEnv(databaseUrl, apiPort, { WORKER_ENABLED: 'true', WORKER_HEARTBEAT_MS: '120000' })
  let worker = await track(startService(workerEnv, workerPort))
  await addCompany(api, company, { webhook: true, erp: true })
  const reconcile = await api.must('POST', `/v1/companies/${company}/procore/reconcile`, { full: true })
  const refresh = await api.must('POST', `/v1/companies/${company}/erp/refresh`, {})
  await api.waitRun(company, reconcile.body.id)
  await api.waitRun(company, refresh.body.id)

  if (want('freshness')) {
    const settings = await api.must('GET', `/v1/companies/${company}/sync-settings`)
    await api.must(
      'PUT',
      `/v1/companies/${company}/sync-settings`,
      { types: { vendor: { direction: 'both', fieldOwners: { name: 'procore' } } } },
      { 'if-match': settings.etag ?? '' },
    )
    const bulk = await api.must('POST', `/v1/companies/${company}/links/bulk`, { type: 'vendor', minScore: 0.9 })
    const linked = await api.waitRun(company, bulk.body.id)
    const pairs = ((linked.result?.items ?? []) as Array<{ procoreId: string; erpId: string; status: string }>).filter(
      (x) => x.status === 'linked',
    )
    if (pairs.length < 2) throw new Error(`freshness: only ${pairs.length} pairs linked: ${JSON.stringify(linked)}`)
    await sleep(3000) // origin writes and their webhooks settle
    const [burstPair, ...isolated] = pairs
    const latency = async (pair: { procoreId: string; erpId: string }, name: string) => {
      const t = performance.now()
      procore.change(company, 'vendors', pair.procoreId, { name })
      while (erp.get('vendors', pair.erpId)?.name !== name) {
        if (since(t) > 60_000) throw new Error(`freshness: ${name} did not reach the ERP in 60 s`)
        await sleep(2)
      }
      return since(t)
    }
    const rounds: number[][] = []
    for (let r = 0; r < ROUNDS; r++) {
      const times: number[] = []
      for (const [i, pair] of isolated.entries()) times.push(await latency(pair, `Fresh Vendor ${i} r${r}`))
      rounds.push(times)
      say(`freshness round ${r + 1}: median ${num(median(times))} ms, p95 ${num(percentile(times, 95))} ms`)
    }
    figures.push({
      id: 'freshness-p95',
      label: `freshness p95: Procore change -> ERP written (${isolated.length} isolated changes)`,
      unit: 'ms',
      rounds: rounds.map((t) => percentile(t, 95)),
      target: { kind: 'max', value: 300 },
      note: `median ${num(median(rounds.map((t) => median(t))))} ms`,
    })
    figures.push({
      id: 'freshness-median',
      label: 'freshness median',
      unit: 'ms',
      rounds: rounds.map((t) => median(t)),
    })
    // A burst: 10 changes to one record back to back; the last value must arrive, at the cost of one read.
    const fetches: number[] = []
    for (let r = 0; r < ROUNDS; r++) {
      const before = procore.calls.length
      let name = ''
      for (let i = 0; i < 10; i++) {
        name = `Burst Vendor r${r} ${i}`
        procore.change(company, 'vendors', burstPair!.procoreId, { name })
      }
      const t = performance.now()
      while (erp.get('vendors', burstPair!.erpId)?.name !== name && since(t) < 60_000) await sleep(5)
      await sleep(1500) // late reads count too
      const id = burstPair!.procoreId
      fetches.push(
        procore.calls
          .slice(before)
          .filter((c) => c.method === 'GET' && (c.path.includes(id) || JSON.stringify(c.query).includes(id))).length,
      )
    }
    figures.push({
      id: 'freshness-burst',
      label: 'burst of 10 changes on one record: Procore reads of it',
      unit: 'GETs',
      rounds: fetches,
      target: { kind: 'max', value: 1 },
    })
  }

  if (want('drain')) {
    const rates: number[] = []
    const calls: number[] = []
    for (let r = 0; r < ROUNDS; r++) {
      // The worker is stopped while the changes arrive: a backlog of one event per record.
      await worker.stop()
      for (const [i, id] of drainIds.entries())
        procore.change(company, 'vendors', id, { name: `Drain Vendor ${i} r${r}` })
      await procore.webhooks.idle()
      const before = procore.calls.length
      worker = await track(startService(workerEnv, workerPort))
      // From the worker ready to none queued: the drain batches, so events of one batch share a processedAt and
      // the span between the first and the last of them says nothing about the rate.
      const t = performance.now()
      for (;;) {
        const queued = await api.must('GET', `/v1/companies/${company}/webhook-events?status=queued&limit=1`)
        if (queued.body.items.length === 0) break
        await sleep(50)
      }
      const wallMs = since(t)
      const restCalls = procore.calls.slice(before).filter((c) => c.path.startsWith('/rest/')).length
      rates.push(drainIds.length / (wallMs / 1000))
      calls.push((restCalls * 1000) / drainIds.length)
      say(`drain round ${r + 1}: ${num(rates.at(-1)!)} events/s from the worker ready, ${restCalls} Procore calls`)
    }
    figures.push({
      id: 'drain',
      label: `event drain, ${drainIds.length} distinct records (worker ready to none queued)`,
      unit: 'events/s',
      rounds: rates,
      target: { kind: 'min', value: 1000 },
    })
    figures.push({
      id: 'drain-calls',
      label: 'Procore calls per 1,000 changed records (drain)',
      unit: 'calls',
      rounds: calls,
    })
  }

  if (want('list') || want('links')) await listAndLinks(api, databaseUrl)
  await worker.stop()
  await apiSvc.stop()
}

/** List and link latency at a fixed offered rate, beside GET /health/live at the same rate, at growing sizes. */
async function listAndLinks(api: Api, databaseUrl: string) {
  const company = '7100001'
  await addCompany(api, company)
  const log = pino({ level: 'warn' })
  const { db } = createDb({ url: databaseUrl, poolMax: 2, connectTimeoutMs: 5000, statementTimeoutMs: 600_000 }, log)
  let seeded = 0
  const procoreId = (i: number) => String(4_500_000_000 + i)
  const erpId = (i: number) => `S${String(i).padStart(7, '0')}`
  const rate = (url: string, extra: Record<string, unknown> = {}) =>
    load({
      url,
      connections: LIST_CONNECTIONS,
      overallRate: RATE,
      // A fixed number of requests (`amount`) or a fixed time.
      ...('amount' in extra ? {} : { duration: CFG.rateSeconds }),
      headers: { authorization: `Bearer ${api.key}` },
      ...extra,
    })
  try {
    for (const size of CFG.sizes) {
      say(`list/links: seeding ${size} vendors a side (snapshots, and the Procore stand-in for origin writes)`)
      for (let from = seeded; from < size; from += 2000) {
        const to = Math.min(size, from + 2000)
        const p: Array<Record<string, unknown>> = []
        const e: Array<Record<string, unknown>> = []
        for (let i = from; i < to; i++) {
          const name = `Scale Vendor ${String(i).padStart(6, '0')}`
          p.push(procore.seed(company, 'vendors', { id: procoreId(i), name }))
          e.push({ id: erpId(i), code: erpId(i), name, email: '', updated_at: '2024-01-01T00:00:00Z' })
        }
        for (const [side, rows] of [
          ['procore', p],
          ['erp', e],
        ] as const)
          await upsertSnapshots(
            db,
            company,
            side,
            'vendor',
            rows.map((raw) => ({ ...entity('vendor')[side].from(raw), raw })),
          )
      }
      seeded = size
      await sql`analyze`.execute(db)
      // Steady state before measuring: the first page folds the seeded records into the list's index, and the
      // worker finishes what the seed queued; neither is the cost of a page.
      await api.must('GET', `/v1/companies/${company}/records/vendor?limit=50`)
      for (let waited = 0; waited < 120; waited++) {
        const { rows } = await sql<{ n: number }>`select count(*)::int as n from graphile_worker._private_jobs
          where run_at <= now() and attempts < max_attempts`.execute(db)
        if (rows[0]!.n === 0) break
        await sleep(500)
      }

      const list: number[] = []
      const listP50: number[] = []
      const live: number[] = []
      const post: number[] = []
      const del: number[] = []
      const refused: string[] = []
      const amount = RATE * CFG.rateSeconds
      for (let r = 0; r < ROUNDS; r++) {
        if (want('list'))
          await interleaved(
            r,
            async () => {
              const x = await rate(`${api.base}/v1/companies/${company}/records/vendor?limit=50`)
              list.push(x.p99)
              listP50.push(x.p50)
              if (x.non2xx + x.errors) refused.push(`list: ${x.non2xx} non-2xx, ${x.errors} errors`)
              if (x.ok === 0) refused.push(`list round ${r + 1}: no request completed (left out of the median)`)
            },
            async () => void live.push((await rate(`${api.base}/health/live`)).p99),
          )
        if (want('links')) {
          // POST links for distinct unlinked pairs, then DELETE exactly those: the next round finds them unlinked.
          const made: Array<{ id: string; etag: string }> = []
          let n = 0
          const x = await rate(`${api.base}/v1/companies/${company}/links`, {
            amount: Math.min(amount, size),
            requests: [
              {
                method: 'POST',
                setupRequest: (req: Record<string, unknown>) => {
                  const i = n++
                  return {
                    ...req,
                    headers: {
                      authorization: `Bearer ${api.key}`,
                      'content-type': 'application/json',
                      'idempotency-key': `bench-link-${size}-${r}-${i}-${Date.now()}`,
                    },
                    body: JSON.stringify({ type: 'vendor', procoreId: procoreId(i), erpId: erpId(i) }),
                  }
                },
                onResponse: (status: number, body: string, _ctx: unknown, headers?: Record<string, string>) => {
                  if (status !== 201) return
                  const link = JSON.parse(body) as { id: string }
                  made.push({ id: link.id, etag: headers?.etag ?? '' })
                },
              },
            ],
          })
          post.push(x.p99)
          if (x.non2xx + x.errors) refused.push(`POST /links: ${x.non2xx} non-2xx, ${x.errors} errors`)
          if (x.ok === 0) refused.push(`POST /links round ${r + 1}: no request completed (left out of the median)`)
          let k = 0
          const y =
            made.length === 0
              ? { p99: Number.NaN, non2xx: 0, errors: 0 }
              : await rate(`${api.base}/v1/companies/${company}/links/x`, {
                  amount: made.length,
                  requests: [
                    {
                      method: 'DELETE',
                      setupRequest: (req: Record<string, unknown>) => {
                        const link = made[k++ % made.length]!
                        return {
                          ...req,
                          path: `/v1/companies/${company}/links/${link.id}`,
                          headers: { authorization: `Bearer ${api.key}`, 'if-match': link.etag },
                        }
                      },
                    },
                  ],
                })
          del.push(y.p99)
          if (y.non2xx + y.errors) refused.push(`DELETE /links: ${y.non2xx} non-2xx, ${y.errors} errors`)
        }
        say(
          `size ${size}, round ${r + 1}: list p99 ${num(list.at(-1) ?? Number.NaN)} ms, live p99 ` +
            `${num(live.at(-1) ?? Number.NaN)} ms, POST /links p99 ${num(post.at(-1) ?? Number.NaN)} ms, ` +
            `DELETE p99 ${num(del.at(-1) ?? Number.NaN)} ms`,
        )
      }
      const main = size === CFG.mainSize
      const at = `${RATE} req/s offered, ${size} records`
      const baseline = { baselineLabel: `GET /health/live at ${RATE} req/s`, baselineRounds: live }
      const note = refused.length > 0 ? refused.join('; ') : undefined
      const target = { kind: 'max', value: 50 } as const
      const extra = note === undefined ? {} : { note }
      if (want('list')) {
        const f = { unit: 'ms', rounds: list, ...baseline, target, ...extra }
        if (main)
          figures.push({
            id: 'list',
            label: `record list page p99 (limit=50, ${at})`,
            ...f,
            note: `p50 ${num(median(listP50))} ms${note ? `; ${note}` : ''}`,
          })
        scaling.push({ id: `list-${size}`, label: `list p99, ${size} records`, ...f })
      }
      if (want('links')) {
        const p = { unit: 'ms', rounds: post, ...baseline, target, ...extra }
        const d = { unit: 'ms', rounds: del, ...baseline, target, ...extra }
        if (main) {
          figures.push({ id: 'links-post', label: `POST /links p99 (${at})`, ...p })
          figures.push({ id: 'links-delete', label: `DELETE /links p99 (${at})`, ...d })
        }
        scaling.push({ id: `links-post-${size}`, label: `POST /links p99, ${size} records`, ...p })
        scaling.push({ id: `links-delete-${size}`, label: `DELETE /links p99, ${size} records`, ...d })
      }
    }
  } finally {
    await db.destroy()
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 3. The exact-key bulk plan, N x N vendors, beside one hand-written SQL join doing the same scoring.

/** Exact keys only (minScore 0.9 needs no name similarity): pairs by equal keys, noisy-or of the key weights. */
async function handWrittenPlan(db: ReturnType<typeof createDb>['db'], companyId: string) {
  const { rows } = await sql<{ n: string }>`
    with pairs as (
      select p.external_id as sid, e.external_id as cid, p.key
      from record_keys p
      join record_keys e on e.company_id = p.company_id and e.type = p.type and e.side = 'erp'
        and e.key = p.key and e.value = p.value
      where p.company_id = ${companyId} and p.type = 'vendor' and p.side = 'procore'
    ), scored as (
      select sid, cid, 1 - exp(sum(ln(1 - least(w.weight, 0.999999)))) as score
      from (select distinct sid, cid, key from pairs) x
      join (values ('code', 0.98), ('taxId', 0.97), ('email', 0.93), ('phone', 0.6), ('name', 0.9))
        as w(key, weight) using (key)
      group by sid, cid
    ), ranked as (
      select *, rank() over (partition by sid order by score desc) as rs,
        count(*) over (partition by sid, score) as ts,
        rank() over (partition by cid order by score desc) as rc,
        count(*) over (partition by cid, score) as tc
      from scored where score >= 0.9
    )
    select count(*)::text as n from ranked where rs = 1 and rc = 1 and ts = 1 and tc = 1`.execute(db)
  return Number(rows[0]?.n ?? 0)
}

async function bulkPlan() {
  const databaseUrl = await databases.create('bench_bulk')
  const port = await freePort()
  say(`bulk plan: migrating a database, loading ${CFG.bulk} x ${CFG.bulk} vendors`)
  const svc = await track(startService(serviceEnv(databaseUrl, port, { WORKER_ENABLED: 'false' }), port))
  const api = new Api(svc.url, printedKey(svc.out()))
  const company = '7200001'
  await api.must('POST', '/v1/companies', { id: company, name: 'Bulk', erpSystem: 'vista' })
  await svc.stop()
  const { db } = createDb(
    { url: databaseUrl, poolMax: 2, connectTimeoutMs: 5000, statementTimeoutMs: 900_000 },
    pino({ level: 'warn' }),
  )
  try {
    const data = vendors(CFG.bulk)
    for (const side of ['procore', 'erp'] as const)
      for (let i = 0; i < CFG.bulk; i += 2000)
        await upsertSnapshots(
          db,
          company,
          side,
          'vendor',
          data[side].slice(i, i + 2000).map((raw) => ({ ...entity('vendor')[side].from(raw), raw })),
        )
    await sql`analyze`.execute(db)
    const plan: number[] = []
    const join: number[] = []
    let counts = ''
    for (let r = 0; r < ROUNDS; r++) {
      let pairs = 0
      let joined = 0
      await interleaved(
        r,
        async () => {
          const t = performance.now()
          const p = await planBulkLink(db, company, 'vendor', 0.9, { statementTimeoutMs: 900_000 })
          plan.push(since(t))
          pairs = p.unambiguous.length
        },
        async () => {
          const t = performance.now()
          joined = await handWrittenPlan(db, company)
          join.push(since(t))
        },
      )
      counts = `unambiguous pairs: service ${pairs}, hand-written join ${joined}`
      say(`bulk plan round ${r + 1}: ${num(plan.at(-1)!)} ms, join ${num(join.at(-1)!)} ms; ${counts}`)
    }
    figures.push({
      id: 'bulk',
      label: `exact-key bulk plan ${CFG.bulk} x ${CFG.bulk} (minScore 0.9)`,
      unit: 'ms',
      rounds: plan,
      baselineLabel: 'hand-written SQL join',
      baselineRounds: join,
      target: { kind: 'maxRatio', value: 2 },
      note: counts,
    })
  } finally {
    await db.destroy()
  }
}

// ---------------------------------------------------------------------------------------------------------------

const started = performance.now()
const failures: string[] = []
try {
  if (!flag('no-build')) {
    say('building (npm run build)')
    await run('npm', ['run', '--silent', 'build'])
  }
  say(
    `${os.cpus().length} CPUs, Node ${process.version}, PostgreSQL at ${new URL(databases.serverUrl).host}; ` +
      `${ROUNDS} round(s)${quick ? ', quick sizes' : ''}`,
  )
  // A scenario that fails is reported and the others still run.
  const scenario = async (name: string, fn: () => Promise<void>) => {
    try {
      await fn()
    } catch (error) {
      say(`${name} failed: ${(error as Error).stack ?? String(error)}`)
      failures.push(`${name}: ${(error as Error).message}`)
      for (const s of [...running]) await s.stop().catch(() => {})
    }
  }
  if (want('startup') || want('intake')) await scenario('start-up and intake', startupAndIntake)
  if (want('freshness') || want('drain') || want('list') || want('links')) await scenario('sync', syncScenario)
  if (want('bulk')) await scenario('bulk plan', bulkPlan)
} finally {
  await cleanup()
}

const rows: Row[] = figures.map(toRow)
const scale: Row[] = scaling.map(toRow)
console.log(`\nFigures (median of ${ROUNDS} interleaved round(s)):\n`)
console.log(table(rows))
for (const r of rows.filter((x) => x.note)) console.log(`  ${r.label}: ${r.note}`)
for (const f of failures) console.log(`  FAILED ${f}`)
if (scale.length > 0) {
  console.log('\nHow the costs grow:\n')
  console.log(table(scale))
}
const report = {
  at: new Date().toISOString(),
  node: process.version,
  cpus: os.cpus().length,
  rounds: ROUNDS,
  quick,
  offeredRate: RATE,
  seconds: Math.round(since(started) / 1000),
  figures: rows,
  scaling: scale,
  details,
  failures,
}
const json = arg('json')
if (json) {
  await writeFile(json, `${JSON.stringify(report, null, 2)}\n`)
  console.log(`\nJSON written to ${json}`)
} else {
  console.log(`\n${JSON.stringify(report)}`)
}
process.exit(failures.length > 0 ? 1 : 0)
