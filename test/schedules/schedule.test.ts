// The sync schedule: the resource (ETag, validation, company scoping), the scheduler on a fake
// clock (each interval at its due times, never never, one catch-up), three service processes on one
// database firing each due time once, on-demand runs, cancel, and the incremental refresh that
// picks up a change the ERP never notified.
import { spawn } from 'node:child_process'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { getSnapshot } from '../../src/sync/snapshots.js'
import { nextDue, runDueSchedules, type Fired } from '../../src/schedules/schedule.js'
import { createCompany, testEnv } from '../helpers/app.js'
import { connected, eventually, newCompanyId, type Connected } from '../erp/fixtures/harness.js'

interface Entry {
  syncType: string
  interval: string
  timeOfDay: string | null
  available: boolean
  unavailableReason: string | null
  nextDueAt: string | null
  lastRun: { id: string; status: string } | null
}
interface RunBody {
  id: string
  status: string
  syncType: string | null
  trigger: string
  params: { full: boolean; types: string[] }
  result: { since?: string | null } | null
  counts: { listed: number; changed: number; created: number }
  apiCalls: { procore: number; erp: number }
  progress: { done: number; total: number }
  cancelRequestedAt: string | null
  durationMs: number | null
}

const scheduleUrl = (c: Connected) => `/v1/companies/${c.companyId}/sync-schedule`

async function getSchedule(c: Connected) {
  const res = await c.app.inject({ method: 'GET', url: scheduleUrl(c), headers: c.admin })
  if (res.statusCode !== 200) throw new Error(`GET schedule: ${res.statusCode} ${res.body}`)
  const body = res.json<{ timeZone: string; entries: Entry[] }>()
  const entry = (name: string) => body.entries.find((e) => e.syncType === name)!
  return { body, etag: res.headers.etag as string, entry }
}

async function putSchedule(c: Connected, payload: unknown, ifMatch?: string) {
  return c.app.inject({
    method: 'PUT',
    url: scheduleUrl(c),
    headers: { ...c.admin, ...(ifMatch === undefined ? {} : { 'if-match': ifMatch }) },
    payload: payload as Record<string, unknown>,
  })
}

/** Stands in for the workers: every unfinished run ends succeeded, so the next due time starts a new one. */
async function finishRuns(app: FastifyInstance) {
  await app.db
    .updateTable('sync_runs')
    .set({ status: 'succeeded', started_at: new Date(), finished_at: new Date() })
    .where('status', 'in', ['queued', 'running'])
    .execute()
}

const here = path.dirname(fileURLToPath(import.meta.url))
const MINUTE = 60_000
/** Runs stay queued: the test plays the workers (finishRuns) or looks at the queued run itself. */
const NO_WORKER = { WORKER_ENABLED: 'false' }
const floorMinute = (ms: number) => Math.floor(ms / MINUTE) * MINUTE

function wallClock(iso: string, timeZone: string): string {
  return new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(
    new Date(iso),
  )
}

t.test('the schedule round-trips with its ETag; validation names the field and the allowed values', async (t) => {
  const c = await connected(t, { env: NO_WORKER })
  const first = await getSchedule(c)
  t.equal(first.etag, '"0"')
  t.equal(first.body.timeZone, 'UTC')
  t.same(first.body.entries.map((e) => e.syncType).sort(), [
    'erp_company_refresh',
    'erp_job_list',
    'erp_project_refresh',
    'erp_vendor_list',
    'payments_for_synced_invoices',
    'procore_company_reconcile',
    'procore_project_reconcile',
    'project_job_costs',
  ])
  t.match(first.entry('erp_vendor_list'), { interval: 'hourly', available: true, unavailableReason: null })
  t.match(first.entry('erp_project_refresh'), { interval: 'every_2_hours', available: true })
  t.ok(first.entry('erp_vendor_list').nextDueAt, 'an available entry has a next due time')
  t.match(first.entry('project_job_costs'), {
    available: false,
    unavailableReason: /Procore connection/,
    nextDueAt: null,
  })
  t.match(first.entry('payments_for_synced_invoices'), {
    available: false,
    unavailableReason: /Procore connection/,
  })
  t.match(first.entry('procore_company_reconcile'), { available: false, unavailableReason: /Procore connection/ })

  t.equal((await putSchedule(c, { entries: [] })).statusCode, 428, 'If-Match is required')
  const bad = await putSchedule(
    c,
    {
      timeZone: 'Mars/Olympus_Mons',
      entries: [
        { syncType: 'erp_vendor_list', interval: 'weekly' },
        { syncType: 'erp_invoices', interval: 'hourly' },
        { syncType: 'erp_job_list', interval: 'hourly', timeOfDay: '02:00' },
        { syncType: 'erp_company_refresh', interval: 'daily', timeOfDay: '25:00' },
      ],
    },
    first.etag,
  )
  t.equal(bad.statusCode, 400)
  t.match(bad.headers['content-type'], /application\/problem\+json/)
  const errors = bad.json<{ errors: Array<{ pointer: string; message: string }> }>().errors
  const at = (pointer: string) => errors.find((e) => e.pointer === pointer)?.message
  t.match(at('/body/timeZone'), /IANA time zone/)
  t.match(at('/body/entries/0/interval'), 'hourly, every_2_hours, every_4_hours, daily, never')
  t.match(at('/body/entries/1/syncType'), /erp_vendor_list.*erp_job_list/)
  t.match(at('/body/entries/2/timeOfDay'), /daily only/)
  t.match(at('/body/entries/3/timeOfDay'), /HH:MM/)
  t.equal((await getSchedule(c)).etag, '"0"', 'nothing was saved')

  const before = Date.now()
  const put = await putSchedule(
    c,
    {
      timeZone: 'America/Chicago',
      entries: [
        { syncType: 'erp_vendor_list', interval: 'every_4_hours' },
        { syncType: 'erp_job_list', interval: 'daily', timeOfDay: '02:30' },
        { syncType: 'erp_company_refresh', interval: 'never' },
      ],
    },
    first.etag,
  )
  t.equal(put.statusCode, 200, put.body)
  t.equal(put.headers.etag, '"1"')
  const saved = await getSchedule(c)
  t.same(saved.body, put.json(), 'GET answers what PUT saved')
  t.equal(saved.etag, '"1"')
  t.equal(saved.body.timeZone, 'America/Chicago')
  const vendors = saved.entry('erp_vendor_list')
  t.equal(vendors.interval, 'every_4_hours')
  const due = Date.parse(vendors.nextDueAt!)
  t.ok(due > before && due <= before + 4 * 3600_000, 'rescheduled at once, within the new interval')
  t.match(saved.entry('erp_job_list'), { interval: 'daily', timeOfDay: '02:30' })
  t.equal(wallClock(saved.entry('erp_job_list').nextDueAt!, 'America/Chicago'), '02:30', 'at 02:30 in Chicago')
  t.match(saved.entry('erp_company_refresh'), { interval: 'never', nextDueAt: null })
  t.match(saved.entry('erp_project_refresh'), { interval: 'every_2_hours' }, 'entries left out keep theirs')

  t.equal((await putSchedule(c, { entries: [] }, first.etag)).statusCode, 412, 'a stale ETag is refused')
  const viewer = c.auth(await c.key('viewer'))
  const asViewer = await c.app.inject({
    method: 'PUT',
    url: scheduleUrl(c),
    headers: { ...viewer, 'if-match': '"1"' },
    payload: { entries: [] },
  })
  t.equal(asViewer.statusCode, 403, 'only an admin changes the schedule')
})

t.test('a key scoped to another company sees none of the schedule or its runs', async (t) => {
  const c = await connected(t, { env: NO_WORKER })
  const run = await c.app.inject({
    method: 'POST',
    url: `${scheduleUrl(c)}/erp_vendor_list/run`,
    headers: c.admin,
  })
  t.equal(run.statusCode, 202)
  const runId = run.json<RunBody>().id
  const otherId = newCompanyId()
  await createCompany(c.app, c.adminKey, otherId)
  const other = c.auth(await c.key('admin', [otherId]))
  const base = `/v1/companies/${c.companyId}`
  for (const [method, url] of [
    ['GET', `${base}/sync-schedule`],
    ['PUT', `${base}/sync-schedule`],
    ['POST', `${base}/sync-schedule/erp_vendor_list/run`],
    ['GET', `${base}/runs?syncType=erp_vendor_list`],
    ['GET', `${base}/runs/${runId}`],
    ['POST', `${base}/runs/${runId}/cancel`],
  ] as const) {
    const res = await c.app.inject({
      method,
      url,
      headers: { ...other, 'if-match': '"0"' },
      ...(method === 'GET' ? {} : { payload: method === 'PUT' ? { entries: [] } : {} }),
    })
    t.equal(res.statusCode, 404, `${method} ${url}`)
    t.match(res.json(), { code: 'not_found' }, 'no trace of the company, its schedule or its runs')
  }
  t.equal(
    (await c.app.inject({ method: 'GET', url: `${base}/runs/${runId}`, headers: c.admin })).json().status,
    'queued',
  )
})

t.test(
  'on a fake clock each interval fires at its due times, never never, and downtime costs one catch-up',
  async (t) => {
    const c = await connected(t)
    const { etag } = await getSchedule(c)
    const put = await putSchedule(
      c,
      {
        timeZone: 'America/Chicago',
        entries: [
          { syncType: 'erp_vendor_list', interval: 'hourly' },
          { syncType: 'erp_job_list', interval: 'every_4_hours' },
          { syncType: 'erp_project_refresh', interval: 'daily', timeOfDay: '02:30' },
          { syncType: 'erp_company_refresh', interval: 'never' },
        ],
      },
      etag,
    )
    t.equal(put.statusCode, 200)
    const start = floorMinute(Date.now()) + MINUTE
    const fired: Fired[] = []
    for (let now = start; now < start + 24 * 3600_000; now += MINUTE) {
      const batch = await runDueSchedules(c.app.ctx, new Date(now))
      for (const f of batch) {
        t.ok(f.dueAt.getTime() <= now && now - f.dueAt.getTime() < MINUTE, 'fired in the minute it was due')
      }
      fired.push(...batch)
      await finishRuns(c.app)
    }
    const of = (syncType: string) => fired.filter((f) => f.syncType === syncType)
    const gaps = (fs: Fired[]) => fs.slice(1).map((f, i) => f.dueAt.getTime() - fs[i]!.dueAt.getTime())

    t.equal(of('erp_vendor_list').length, 24, 'hourly: 24 times a day')
    t.ok(
      gaps(of('erp_vendor_list')).every((g) => g === 3600_000),
      'an hour apart',
    )
    t.equal(of('erp_job_list').length, 6, 'every 4 hours: 6 times a day')
    t.ok(
      gaps(of('erp_job_list')).every((g) => g === 4 * 3600_000),
      'four hours apart',
    )
    t.equal(of('erp_project_refresh').length, 1, 'daily: once')
    t.equal(wallClock(of('erp_project_refresh')[0]!.dueAt.toISOString(), 'America/Chicago'), '02:30')
    t.equal(of('erp_company_refresh').length, 0, 'never: never')
    t.ok(
      fired.every((f) => f.outcome === 'started' || f.outcome === 'unavailable'),
      'each due time started a run (or was unavailable)',
    )
    t.ok(
      of('procore_company_reconcile').every((f) => f.outcome === 'unavailable'),
      'no Procore: nothing started',
    )
    t.equal(of('project_job_costs').filter((f) => f.outcome === 'started').length, 0, 'no Procore: never started')
    const scheduled = await c.app.db
      .selectFrom('sync_runs')
      .select(['sync_type', 'trigger'])
      .where('company_id', '=', c.companyId)
      .execute()
    t.equal(scheduled.length, 24 + 6 + 1, 'one run per due time')
    t.ok(
      scheduled.every((r) => r.trigger === 'schedule'),
      'triggered by the schedule',
    )

    // Ten hours of downtime: one catch-up run per entry, not one per missed interval.
    const back = start + 34 * 3600_000
    const catchUp = await runDueSchedules(c.app.ctx, new Date(back))
    t.equal(catchUp.filter((f) => f.syncType === 'erp_vendor_list').length, 1, 'hourly: one catch-up run')
    t.equal(catchUp.filter((f) => f.syncType === 'erp_job_list').length, 1, 'every 4 hours: one catch-up run')
    const after = await getSchedule(c)
    t.ok(Date.parse(after.entry('erp_vendor_list').nextDueAt!) > back, 'then on to the next due time after now')
    t.ok(Date.parse(after.entry('erp_vendor_list').nextDueAt!) <= back + 3600_000)
  },
)

t.test('three service processes on one database over a simulated day fire each due time exactly once', async (t) => {
  const c = await connected(t, { env: NO_WORKER })
  const companies = [c.companyId]
  for (let i = 0; i < 4; i++) {
    const id = newCompanyId()
    await createCompany(c.app, c.adminKey, id, c.erp.system)
    const res = await c.app.inject({
      method: 'PUT',
      url: `/v1/companies/${id}/erp/connection`,
      headers: c.admin,
      payload: { baseUrl: c.erp.url, token: c.erp.token },
    })
    t.equal(res.statusCode, 201)
    companies.push(id)
  }
  const processes = await Promise.all([1, 2, 3].map(() => ticker(t, c.databaseUrl)))

  const start = floorMinute(Date.now()) + MINUTE
  const end = start + 24 * 3600_000
  // The first tick writes every company's default schedule, due from then.
  await Promise.all(processes.map((p) => p.tick(start)))
  const rows = await c.app.db.selectFrom('sync_schedules').selectAll().execute()
  t.equal(rows.length, companies.length * 8)

  const fired: Array<{ companyId: string; syncType: string; dueAt: string }> = []
  const byProcess = [0, 0, 0]
  for (let now = start + MINUTE; now <= end; now += MINUTE) {
    const batches = await Promise.all(processes.map((p) => p.tick(now)))
    batches.forEach((b, i) => {
      fired.push(...b)
      byProcess[i]! += b.length
    })
    await finishRuns(c.app)
  }
  const keys = fired.map((f) => `${f.companyId}:${f.syncType}:${f.dueAt}`)
  t.equal(new Set(keys).size, keys.length, 'no due time fired twice')

  let expected = 0
  for (const row of rows) {
    if (!row.sync_type.startsWith('erp_')) continue
    const rule = { companyId: row.company_id, syncType: row.sync_type, interval: row.interval, timeOfDay: null }
    const dues: string[] = []
    for (let d = nextDue({ ...rule, timeZone: 'UTC' }, new Date(start)); d && d.getTime() <= end;) {
      dues.push(d.toISOString())
      d = nextDue({ ...rule, timeZone: 'UTC' }, d)
    }
    expected += dues.length
    const got = fired.filter((f) => f.companyId === row.company_id && f.syncType === row.sync_type)
    t.same(got.map((f) => f.dueAt).sort(), dues, `${row.company_id} ${row.sync_type}: every due time, once`)
  }
  t.equal(fired.length, expected)
  const runs = await c.app.db.selectFrom('sync_runs').select('id').where('trigger', '=', 'schedule').execute()
  t.equal(runs.length, expected, 'one run per due time, across all processes')
  t.ok(byProcess.filter((n) => n > 0).length >= 2, `the processes shared the work (${byProcess.join(', ')})`)
  const minutes = new Set(fired.map((f) => new Date(f.dueAt).getUTCMinutes()))
  t.ok(minutes.size > 3, 'companies spread over the hour (jitter), not all on the hour')
})

/** A service process (test/schedules/fixtures/ticker.ts) whose scheduler ticks when told, at the time told. */
async function ticker(t: Test, databaseUrl: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'fixtures', 'ticker.ts')], {
    env: { ...process.env, ...testEnv(databaseUrl), ...NO_WORKER },
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]()
  const next = async () => {
    const { value, done } = await lines.next()
    if (done) throw new Error('the ticker process ended')
    return value
  }
  if ((await next()) !== 'ready') throw new Error('the ticker process did not start')
  return {
    async tick(at: number): Promise<Array<{ companyId: string; syncType: string; dueAt: string }>> {
      child.stdin.write(`tick ${at}\n`)
      return JSON.parse(await next())
    },
  }
}

t.test('on demand: 409 naming the run while one is queued; cancel; filters', async (t) => {
  const c = await connected(t, { env: NO_WORKER })
  const url = `${scheduleUrl(c)}/erp_vendor_list/run`
  const first = await c.app.inject({ method: 'POST', url, headers: c.admin })
  t.equal(first.statusCode, 202)
  const run = first.json<RunBody>()
  t.match(run, { status: 'queued', syncType: 'erp_vendor_list', trigger: 'manual', params: { types: ['vendor'] } })
  t.equal(first.headers.location, `/v1/companies/${c.companyId}/runs/${run.id}`)

  const again = await c.app.inject({ method: 'POST', url, headers: c.admin })
  t.equal(again.statusCode, 409)
  t.match(again.json(), { code: 'run_in_progress', runId: run.id })
  const unavailable = await c.app.inject({
    method: 'POST',
    url: `${scheduleUrl(c)}/project_job_costs/run`,
    headers: c.admin,
  })
  t.equal(unavailable.statusCode, 409)
  t.match(unavailable.json(), { code: 'sync_type_unavailable', detail: /Procore connection/ })
  const unknown = await c.app.inject({ method: 'POST', url: `${scheduleUrl(c)}/invoices/run`, headers: c.admin })
  t.equal(unknown.statusCode, 404)

  const cancelUrl = `/v1/companies/${c.companyId}/runs/${run.id}/cancel`
  const cancelled = await c.app.inject({ method: 'POST', url: cancelUrl, headers: c.admin })
  t.equal(cancelled.statusCode, 202)
  t.match(cancelled.json(), { status: 'cancelled' })
  t.ok(cancelled.json<RunBody>().cancelRequestedAt)
  const twice = await c.app.inject({ method: 'POST', url: cancelUrl, headers: c.admin })
  t.equal(twice.statusCode, 409)
  t.match(twice.json(), { code: 'run_finished' })

  const next = await c.app.inject({ method: 'POST', url, headers: c.admin })
  t.equal(next.statusCode, 202, 'a cancelled run does not block the next')
  const list = async (query: string) =>
    (await c.app.inject({ method: 'GET', url: `/v1/companies/${c.companyId}/runs?${query}`, headers: c.admin })).json<{
      items: RunBody[]
    }>().items
  t.equal((await list('syncType=erp_vendor_list')).length, 2)
  t.same(
    (await list('syncType=erp_vendor_list&status=cancelled')).map((r) => r.id),
    [run.id],
  )
  t.equal((await list('trigger=manual')).length, 2)
  t.equal((await list('trigger=schedule')).length, 0)
  const badStatus = await c.app.inject({
    method: 'GET',
    url: `/v1/companies/${c.companyId}/runs?status=done`,
    headers: c.admin,
  })
  t.equal(badStatus.statusCode, 400)
})

t.test('a change the ERP never notified is picked up by the next incremental refresh', async (t) => {
  const c = await connected(t, { env: { WORKER_ENABLED: 'true' } })
  const vendors = [1, 2, 3].map((i) => c.erp.seed('vendors', { code: `V${i}`, name: `Vendor ${i}` }))
  const runUrl = (id: string) => `/v1/companies/${c.companyId}/runs/${id}`
  const finished = (id: string) =>
    eventually('the run to finish', async () => {
      const r = (await c.app.inject({ method: 'GET', url: runUrl(id), headers: c.admin })).json<RunBody>()
      return ['succeeded', 'failed', 'cancelled', 'interrupted'].includes(r.status) ? r : undefined
    })

  const first = await c.app.inject({ method: 'POST', url: `${scheduleUrl(c)}/erp_vendor_list/run`, headers: c.admin })
  t.equal(first.statusCode, 202)
  const done = await finished(first.json<RunBody>().id)
  t.match(done, {
    status: 'succeeded',
    params: { full: true },
    counts: { listed: 3, created: 3 },
    progress: { done: 1, total: 1 },
  })
  t.ok(done.apiCalls.erp >= 1 && done.apiCalls.procore === 0, 'API calls counted per side')
  t.ok(done.durationMs !== null)

  // The ERP renames a vendor, and its notification is lost.
  c.erp.change('vendors', vendors[1]!.id, { name: 'Renamed Vendor' }, { notify: false })
  const callsBefore = c.erp.calls.length
  const due = Date.parse((await getSchedule(c)).entry('erp_vendor_list').nextDueAt!)
  const fired = await runDueSchedules(c.app.ctx, new Date(due))
  const started = fired.find((f) => f.syncType === 'erp_vendor_list')
  t.match(started, { outcome: 'started' })
  const second = await finished(started!.runId!)
  t.match(second, { status: 'succeeded', trigger: 'schedule', params: { full: false }, counts: { changed: 1 } })
  t.ok(second.result?.since, 'listed since the watermark')
  const lists = c.erp.calls.slice(callsBefore).filter((x) => x.method === 'GET' && x.path === '/v1/vendors')
  t.ok(lists.length >= 1)
  t.ok(
    lists.every((x) => /(^|&)updated_since=/.test(x.query)),
    'the incremental refresh sends updated_since',
  )
  const snapshot = await getSnapshot(c.app.db, c.companyId, 'erp', 'vendor', vendors[1]!.id)
  t.equal(snapshot?.fields.name, 'Renamed Vendor', 'the lost change arrived')

  // A day after the last full sweep, the run is a full sweep again: no updated_since, vanished records found.
  const sweepFrom = c.erp.calls.length
  const tomorrow = await runDueSchedules(c.app.ctx, new Date(Date.now() + 25 * 3600_000))
  const sweep = await finished(tomorrow.find((f) => f.syncType === 'erp_vendor_list')!.runId!)
  t.match(sweep, { status: 'succeeded', params: { full: true }, counts: { listed: 3 } })
  const sweepLists = c.erp.calls.slice(sweepFrom).filter((x) => x.method === 'GET' && x.path === '/v1/vendors')
  t.ok(sweepLists.length >= 1 && sweepLists.every((x) => !x.query.includes('updated_since')), 'a full listing')
})

t.test('cancel stops a running run at its next safe point', async (t) => {
  const c = await connected(t, { env: { WORKER_ENABLED: 'true' } })
  for (let i = 1; i <= 1_200; i++) c.erp.seed('vendors', { code: `V${i}`, name: `Vendor ${i}` })
  c.erp.faults.push({ match: { method: 'GET', pathPrefix: '/v1/vendors' }, delayMs: 1500 })
  const res = await c.app.inject({ method: 'POST', url: `${scheduleUrl(c)}/erp_vendor_list/run`, headers: c.admin })
  const id = res.json<RunBody>().id
  const url = `/v1/companies/${c.companyId}/runs/${id}`
  await eventually('the run to be reading its first page', async () =>
    c.erp.calls.some((x) => x.path === '/v1/vendors') ? true : undefined,
  )
  const cancel = await c.app.inject({ method: 'POST', url: `${url}/cancel`, headers: c.admin })
  t.equal(cancel.statusCode, 202)
  t.match(cancel.json(), { status: 'running' })
  t.ok(cancel.json<RunBody>().cancelRequestedAt, 'asked to stop')
  const run = await eventually('the run to stop', async () => {
    const r = (await c.app.inject({ method: 'GET', url, headers: c.admin })).json<RunBody>()
    return r.status === 'running' ? undefined : r
  })
  t.equal(run.status, 'cancelled')
  const pages = c.erp.calls.filter((x) => x.method === 'GET' && x.path === '/v1/vendors').length
  t.ok(pages < 3, `stopped after the page it was reading (${pages} of 3 pages read)`)
})

t.test('daily due times follow the wall clock across daylight-saving changes, once a day', async (t) => {
  const rule = (timeOfDay: string) =>
    ({ companyId: '1', syncType: 'erp_job_list', interval: 'daily', timeOfDay, timeZone: 'America/Chicago' }) as const
  const walk = (timeOfDay: string, from: string, days: number) => {
    const out: string[] = []
    let d: Date | null = new Date(from)
    for (let i = 0; i < days; i++) {
      d = nextDue(rule(timeOfDay), d!)
      out.push(d!.toISOString())
    }
    return out
  }
  t.same(
    walk('02:30', '2026-03-06T12:00:00Z', 3),
    ['2026-03-07T08:30:00.000Z', '2026-03-08T08:30:00.000Z', '2026-03-09T07:30:00.000Z'],
    'spring forward: 02:30 does not exist that night, so it runs at 03:30 CDT, once',
  )
  t.same(
    walk('01:30', '2026-10-31T12:00:00Z', 2),
    ['2026-11-01T06:30:00.000Z', '2026-11-02T07:30:00.000Z'],
    'fall back: 01:30 happens twice that night; it runs at the first, once',
  )
  t.equal(nextDue({ ...rule('02:30'), interval: 'never' }, new Date()), null, 'never has no due time')
})
