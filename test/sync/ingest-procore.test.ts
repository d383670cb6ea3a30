// Reconciliation (T20, W6): a run you can poll; changes whose webhooks were dropped are caught
// (incremental for types with filters[updated_at], full scans with deletions for departments and
// cost codes); one queued run per company; the hourly schedule fans out per company.
import { sql } from 'kysely'
import t from 'tap'
import { IngestKinds } from '../../src/sync/ingest.js'
import { runDueSchedules } from '../../src/schedules/schedule.js'

const RECONCILE_KIND = IngestKinds.procore
import { getSnapshot } from '../../src/sync/snapshots.js'
import { COMPANY, connectServiceAccount, harness, until, type Harness } from '../procore/fixtures/harness.js'

const reconcile = (h: Harness, body: Record<string, unknown> = {}) =>
  h.app.inject({ method: 'POST', url: `/v1/companies/${COMPANY}/procore/reconcile`, headers: h.admin, payload: body })

async function finished(h: Harness, runId: string) {
  let run:
    | {
        status: string
        result: {
          types: Record<
            string,
            { status: string; mode: string; listed: number; changed: number; created: number; deleted: number }
          >
        }
        error: string | null
      }
    | undefined
  await until(
    'run finished',
    async () => {
      const res = await h.app.inject({ method: 'GET', url: `/v1/companies/${COMPANY}/runs/${runId}`, headers: h.admin })
      run = res.json()
      return run?.status === 'succeeded' || run?.status === 'failed'
    },
    100,
  )
  return run!
}

t.test('a reconciliation catches changes whose webhooks were dropped', async (t) => {
  const h = await harness(t, { worker: true })
  await connectServiceAccount(h)
  const s = h.standin
  const dept = s.seed(COMPANY, 'departments', { name: 'Accounting' })
  const keep = s.seed(COMPANY, 'departments', { name: 'Field' })
  const vendor = s.seed(COMPANY, 'vendors', { name: 'Quiet Vendor' })
  const user = s.seed(COMPANY, 'users', { last_name: 'Smith', email_address: 'smith@example.com' })
  s.seed(COMPANY, 'users', { last_name: 'Gone', email_address: 'gone@example.com', is_active: false })
  s.seed(COMPANY, 'standard_cost_code_lists', { name: 'ERP', is_erp_list: true })
  const project = s.seed(COMPANY, 'projects', { name: 'Tower', project_number: 'P-1', erp_integrated: true })
  s.seed(COMPANY, 'projects', { name: 'Shed', project_number: 'P-2', active: false })
  const code = s.seed(COMPANY, 'cost_codes', { code: '100', name: 'Concrete' }, { projectId: project.id })
  const list = s.list(COMPANY, 'standard_cost_code_lists')[0]!
  s.seed(COMPANY, 'standard_cost_codes', { code: '01', name: 'General', standard_cost_code_list_id: list.id })

  const first = await reconcile(h)
  t.equal(first.statusCode, 202)
  t.equal(first.headers.location, `/v1/companies/${COMPANY}/runs/${first.json().id}`)
  t.match(first.json(), { kind: RECONCILE_KIND, status: 'queued', params: { full: false } })
  const run1 = await finished(h, first.json().id)
  t.equal(run1.status, 'succeeded', run1.error ?? '')
  t.match(
    run1.result.types,
    {
      department: { mode: 'full', listed: 2 },
      vendor: { mode: 'full', listed: 1 },
      user: { listed: 2 },
      project: { listed: 2 },
      cost_code: { listed: 2, created: 2, parents: 1 },
    },
    "standard codes and the ERP-integrated project's codes",
  )
  t.equal((await getSnapshot(h.app.db, COMPANY, 'procore', 'cost_code', code.id))?.parent_id, project.id)

  // Changes in Procore whose webhooks never arrive.
  s.change(COMPANY, 'vendors', vendor.id, { name: 'Loud Vendor' }, { emit: false })
  s.change(COMPANY, 'users', user.id, { job_title: 'Estimator' }, { emit: false })
  s.remove(COMPANY, 'departments', dept.id, { emit: false })
  s.change(COMPANY, 'departments', keep.id, { name: 'Field Ops' }, { emit: false })
  s.remove(COMPANY, 'cost_codes', code.id, { emit: false })
  const added = s.seed(COMPANY, 'vendors', { name: 'New Vendor' })

  const second = await reconcile(h)
  const run2 = await finished(h, second.json().id)
  t.equal(run2.status, 'succeeded', run2.error ?? '')
  t.match(run2.result.types, {
    vendor: { mode: 'incremental', changed: 1, created: 1 },
    user: { mode: 'incremental', changed: 1 },
    department: { mode: 'full', deleted: 1, changed: 1 },
  })
  t.ok(run2.result.types.vendor!.listed < 3, 'the incremental listing did not re-read everything')
  const calls = s.calls.filter((c) => c.path === '/rest/v1.0/vendors').at(-1)
  t.match(calls?.query, { filters: { updated_at: /\.\.\.$/ } }, 'filters[updated_at] sent')
  t.equal((await getSnapshot(h.app.db, COMPANY, 'procore', 'vendor', vendor.id))?.fields.name, 'Loud Vendor')
  t.equal((await getSnapshot(h.app.db, COMPANY, 'procore', 'vendor', added.id))?.fields.name, 'New Vendor')
  t.equal((await getSnapshot(h.app.db, COMPANY, 'procore', 'user', user.id))?.fields.jobTitle, 'Estimator')
  t.ok(
    (await getSnapshot(h.app.db, COMPANY, 'procore', 'department', dept.id))?.deleted_at,
    'the deleted department is marked deleted',
  )
  t.equal((await getSnapshot(h.app.db, COMPANY, 'procore', 'department', keep.id))?.fields.name, 'Field Ops')
  t.ok(
    (await getSnapshot(h.app.db, COMPANY, 'procore', 'cost_code', code.id))?.deleted_at,
    'the deleted project cost code too',
  )

  const runs = await h.app.inject({
    method: 'GET',
    url: `/v1/companies/${COMPANY}/runs?kind=${RECONCILE_KIND}`,
    headers: h.admin,
  })
  t.same(
    runs.json().items.map((r: { id: string }) => r.id),
    [second.json().id, first.json().id],
    'runs listed newest first',
  )
})

t.test('one queued run per company; the schedule fans out to connected companies', async (t) => {
  const h = await harness(t)
  await connectServiceAccount(h)
  const a = await reconcile(h, { types: ['vendor'] })
  const b = await reconcile(h, { full: true, types: ['department'] })
  t.equal(a.statusCode, 202)
  t.equal(b.json().id, a.json().id, 'the queued run is returned, not a second one')
  t.match(b.json().params, { full: true, types: ['department', 'vendor'] }, 'widened to cover both requests')
  const { rows } = await sql<{ key: string | null; queue_name: string | null; task_identifier: string }>`
    select key, queue_name, task_identifier from graphile_worker.jobs`.execute(h.app.db)
  t.equal(rows.length, 1, 'one job')
  t.match(rows[0], {
    key: `procore-reconcile:${COMPANY}`,
    queue_name: /^procore-reconcile-/,
    task_identifier: 'procore-reconcile',
  })

  const unconnected = await h.app.inject({
    method: 'POST',
    url: '/v1/companies',
    headers: h.admin,
    payload: { id: '42', name: 'No Procore', erpSystem: 'vista' },
  })
  t.equal(unconnected.statusCode, 201)
  const refused = await h.app.inject({
    method: 'POST',
    url: '/v1/companies/42/procore/reconcile',
    headers: h.admin,
    payload: {},
  })
  t.equal(refused.statusCode, 409)
  t.equal(refused.json().code, 'procore_not_connected')

  // The schedule starts the Procore sync types of connected companies only, each as a run of its own.
  t.same(await runDueSchedules(h.app.ctx, new Date()), [], 'the first tick writes the default schedules')
  const later = new Date(Date.now() + 3 * 3600_000)
  const fired = await runDueSchedules(h.app.ctx, later)
  const started = fired.filter((f) => f.outcome === 'started')
  t.same(started.map((f) => f.syncType).sort(), ['procore_company_reconcile', 'procore_project_reconcile'])
  t.ok(
    started.every((f) => f.companyId === COMPANY),
    'nothing for the company without Procore',
  )
  t.equal((await runDueSchedules(h.app.ctx, later)).length, 0, 'a due time fires once')
  const runs = await h.app.db
    .selectFrom('sync_runs')
    .select(['id', 'trigger', 'sync_type'])
    .where('kind', '=', RECONCILE_KIND)
    .execute()
  t.equal(runs.length, 3, 'the queued manual run and one per scheduled sync type')
  const viewer = await h.key('viewer')
  t.equal(
    (
      await h.app.inject({
        method: 'POST',
        url: `/v1/companies/${COMPANY}/procore/reconcile`,
        headers: h.auth(viewer),
        payload: {},
      })
    ).statusCode,
    403,
  )
})

t.test('a Procore listing stores the rate-limit headroom it saw; the schedule defers while it is low', async (t) => {
  // Procore allows this company 60 requests an hour: a reconcile leaves fewer than the 100 the schedule keeps.
  const h = await harness(t, { worker: true, standin: { rateLimit: { limit: 60, windowMs: 3_600_000 } } })
  await connectServiceAccount(h)
  h.standin.seed(COMPANY, 'vendors', { name: 'Acme Supply' })
  const res = await h.app.inject({
    method: 'POST',
    url: `/v1/companies/${COMPANY}/sync-schedule/procore_company_reconcile/run`,
    headers: h.admin,
  })
  t.equal(res.statusCode, 202, res.body)
  const runUrl = `/v1/companies/${COMPANY}/runs/${res.json().id}`
  const get = async () => (await h.app.inject({ method: 'GET', url: runUrl, headers: h.admin })).json()
  await until('the reconcile to finish', async () => ['succeeded', 'failed'].includes((await get()).status))
  const run = await get()
  t.equal(run.status, 'succeeded', run.error ?? '')
  t.ok(run.apiCalls.procore > 0 && run.apiCalls.erp === 0, 'Procore calls counted')
  const seen = await h.app.db
    .selectFrom('procore_rate_observations')
    .selectAll()
    .where('company_id', '=', COMPANY)
    .executeTakeFirstOrThrow()
  t.ok(seen.remaining < 100, `stored what X-Rate-Limit-Remaining said (${seen.remaining})`)
  t.ok(seen.reset_at.getTime() > Date.now(), 'and when the window resets')

  // Its next due time arrives while the window is still nearly spent.
  const now = new Date()
  await h.app.db
    .updateTable('sync_schedules')
    .set({ next_due_at: now })
    .where('company_id', '=', COMPANY)
    .where('sync_type', '=', 'procore_company_reconcile')
    .execute()
  const fired = await runDueSchedules(h.app.ctx, now)
  t.match(fired, [{ syncType: 'procore_company_reconcile', outcome: 'deferred', runId: null }])
  const schedule = await h.app.inject({
    method: 'GET',
    url: `/v1/companies/${COMPANY}/sync-schedule`,
    headers: h.admin,
  })
  const entry = schedule
    .json<{ entries: Array<{ syncType: string; nextDueAt: string; deferredReason: string | null }> }>()
    .entries.find((e) => e.syncType === 'procore_company_reconcile')!
  t.equal(entry.nextDueAt, seen.reset_at.toISOString(), 'deferred to the reset of the window')
  t.match(entry.deferredReason, /rate-limit headroom/)
  const atReset = await runDueSchedules(h.app.ctx, seen.reset_at)
  t.match(
    atReset.find((f) => f.syncType === 'procore_company_reconcile'),
    { outcome: 'started' },
    'and runs once it resets',
  )
})
