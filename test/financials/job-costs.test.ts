// Project job costs against both stand-ins: the ERP job's cost totals reach the linked Procore project per
// cost code and cost type, after the link and on demand; an unchanged run sends nothing; a changed total sends
// one row; an unlinked cost code is reported with its fix, not sent; a run stopped after Procore applied a batch
// (before the service recorded it) and run again leaves Procore's totals equal to the ERP's, never doubled.
import t from 'tap'
import { runDueSchedules } from '../../src/schedules/schedule.js'
import { syncHarness, until, type SyncHarness } from '../sync/fixtures/harness.js'

interface Total {
  cost_code: string
  cost_type: string
  budget: string
  actual: string
  committed: string
}

/** Procore's job-to-date costs of a project as the ERP names them: cost code, cost type and amounts. */
function procoreTotals(h: SyncHarness, projectId: string): Total[] {
  return h.procore.jobCosts
    .of(projectId)
    .map((row) => ({
      cost_code: fullCode(h, row.cost_code_id),
      cost_type: String(h.procore.get(h.companyId, 'line_item_types', row.line_item_type_id)?.code),
      budget: row.budget,
      actual: row.job_to_date_cost,
      committed: row.committed_cost,
    }))
    .sort(byKey)
}

/** A Procore cost code's code prefixed with its parents' (as Procore shows full_code): `01-100`. */
function fullCode(h: SyncHarness, id: string): string {
  const codes: string[] = []
  for (let rec = h.procore.get(h.companyId, 'cost_codes', id); rec;) {
    codes.unshift(String(rec.code))
    rec = typeof rec.parent_id === 'string' ? h.procore.get(h.companyId, 'cost_codes', rec.parent_id) : undefined
  }
  return codes.join('-')
}

async function erpTotals(h: SyncHarness, jobId: string): Promise<Total[]> {
  const res = await fetch(`${h.erp.url}/v1/jobs/${jobId}/cost-totals`, {
    headers: { authorization: `Bearer ${h.erp.token}` },
  })
  return ((await res.json()) as { data: Total[] }).data.sort(byKey)
}

const byKey = (a: Total, b: Total) => `${a.cost_code} ${a.cost_type}`.localeCompare(`${b.cost_code} ${b.cost_type}`)
const linked = (rows: Total[], code: string) => rows.filter((r) => r.cost_code !== code)

t.test('job costs of linked jobs reach Procore per cost code and cost type', async (t) => {
  const h = await syncHarness(t)
  const c = h.companyId
  const list = h.procore.list(c, 'standard_cost_code_lists')[0]!.id
  for (const [code, name] of [
    ['L', 'Labor'],
    ['M', 'Materials'],
    ['S', 'Subcontract'],
  ])
    h.procore.seed(c, 'line_item_types', { code, name })

  const jobs = ['J-100', 'J-200'].map((number) => {
    const project = h.procore.seed(c, 'projects', {
      name: `Tower ${number}`,
      project_number: number,
      erp_integrated: true,
      standard_cost_code_list_id: list,
    })
    const job = h.erp.seed('jobs', { number, name: `Tower ${number}`, status: 'active' })
    for (const code of ['01-100', '01-200'])
      h.erp.seed('cost-codes', { job_id: job.id, code, name: `Code ${code}`, parent_code: '01' })
    return { project, job }
  })
  const [a, b] = jobs as [(typeof jobs)[0], (typeof jobs)[0]]
  h.erp.setCostTotals(a.job.id, [
    // Beyond a double's precision: a float anywhere on the way would change it.
    { cost_code: '01-100', cost_type: 'L', budget: '12345678901234567.89', actual: '4310.50', committed: '0.00' },
    { cost_code: '01-100', cost_type: 'M', budget: '8000.00', actual: '7999.99', committed: '1200.10' },
    { cost_code: '01-200', cost_type: 'S', budget: '50000.00', actual: '0.10', committed: '25000.00' },
    // Not a cost code of the job: reported, never sent.
    { cost_code: '09-900', cost_type: 'L', budget: '100.00', actual: '90.00', committed: '0.00' },
  ])
  h.erp.setCostTotals(b.job.id, [
    { cost_code: '01-100', cost_type: 'L', budget: '100.00', actual: '10.00', committed: '0.00' },
    { cost_code: '01-200', cost_type: 'M', budget: '200.00', actual: '20.00', committed: '5.00' },
  ])
  await h.refresh(['project', 'cost_code'])

  const runs = async (trigger?: string) =>
    (await h.api('GET', `/v1/companies/${c}/runs?kind=job_costs${trigger ? `&trigger=${trigger}` : ''}`)).body
      .items as Array<{ id: string; status: string }>
  const runNow = async () => {
    const res = await h.api(
      'POST',
      `/v1/companies/${c}/sync-schedule/project_job_costs/run`,
      {},
      {
        'idempotency-key': crypto.randomUUID(),
      },
    )
    t.equal(res.status, 202, res.status === 202 ? 'started' : JSON.stringify(res.body))
    return h.waitRun(res.body.id)
  }

  await t.test('a project link sends the job costs once the cost codes followed', async (t) => {
    const schedule = await h.api('GET', `/v1/companies/${c}/sync-schedule`)
    t.match(
      schedule.body.entries.find((e: { syncType: string }) => e.syncType === 'project_job_costs'),
      { available: true, interval: 'every_2_hours', level: 'project' },
    )
    const res = await h.api(
      'POST',
      `/v1/companies/${c}/links`,
      { type: 'project', procoreId: a.project.id, erpId: a.job.id },
      { 'idempotency-key': 'link-a' },
    )
    t.equal(res.status, 201, res.status === 201 ? 'linked' : JSON.stringify(res.body))
    const [linkRun] = await until('the link-triggered run', async () => {
      const found = await runs('link')
      return found.length > 0 ? found : undefined
    })
    const run = await h.waitRun(linkRun!.id)
    t.equal(run.status, 'succeeded', run.status === 'succeeded' ? 'the link run succeeded' : JSON.stringify(run))
    t.match(run.params, { projects: [a.project.id], afterLink: true })
    t.match(run.result.counts, { sent: 3, unchanged: 0, refused: 1 })
    t.match(run.counts, { listed: 4, changed: 3 }, "the run's summary: totals read, totals sent")
    t.match(run.errors, [{ type: 'job_cost', recordId: 'J-100 09-900 L', message: /09-900/ }])
    t.match(run.result.items, [
      {
        status: 'refused',
        costCode: '09-900',
        costType: 'L',
        procoreProjectId: a.project.id,
        reason: /09-900/,
        fix: /link cost code 09-900 first/,
      },
    ])
    t.equal(run.result.apiCalls.erp, 1, 'one cost-totals request')
    t.equal(run.result.apiCalls.procore, 3, 'line item types, the project setting, one sync call')
    t.ok(h.procore.jobCosts.enabled(a.project.id), "the project's ERP job-cost setting is on")
    t.same(procoreTotals(h, a.project.id), linked(await erpTotals(h, a.job.id), '09-900'))
    t.same(h.procore.jobCosts.of(b.project.id), [], 'the unlinked job sends nothing')
  })

  await t.test('a second run sends nothing; a changed total sends one row', async (t) => {
    const again = await runNow()
    t.equal(again.status, 'succeeded')
    t.match(again.result.counts, { sent: 0, unchanged: 3, refused: 1 })
    t.equal(again.result.apiCalls.procore, 0, 'no Procore request when nothing changed')

    h.erp.changeCostTotal(a.job.id, '01-100', 'M', { actual: '8100.25' })
    const changed = await runNow()
    t.match(changed.result.counts, { sent: 1, unchanged: 2, refused: 1 })
    t.equal(changed.result.apiCalls.procore, 2, 'line item types and one sync call')
    const row = procoreTotals(h, a.project.id).find((r) => r.cost_code === '01-100' && r.cost_type === 'M')
    t.equal(row?.actual, '8100.25', 'replaced, not added to 7999.99')
    t.same(procoreTotals(h, a.project.id), linked(await erpTotals(h, a.job.id), '09-900'))
  })

  await t.test('a run stopped after Procore applied a batch, run again, leaves the ERP totals', async (t) => {
    const link = await h.api(
      'POST',
      `/v1/companies/${c}/links`,
      { type: 'project', procoreId: b.project.id, erpId: b.job.id },
      { 'idempotency-key': 'link-b' },
    )
    t.equal(link.status, 201)
    await h.quiet()
    t.same(procoreTotals(h, b.project.id), await erpTotals(h, b.job.id), 'the second link sent its job')

    // Both jobs change; Procore applies the first project's batch, and its answer never arrives.
    h.erp.changeCostTotal(a.job.id, '01-100', 'L', { actual: '5000.00' })
    h.erp.changeCostTotal(a.job.id, '01-200', 'S', { committed: '26000.00' })
    h.erp.changeCostTotal(b.job.id, '01-200', 'M', { actual: '25.00' })
    h.procore.jobCosts.failAfterApplying(403)
    const applied = h.procore.jobCosts.applied
    const stopped = await runNow()
    t.equal(stopped.status, 'failed', 'the run stops with the batch applied but not recorded')
    t.equal(h.procore.jobCosts.applied - applied, 2, "Procore applied the first project's two rows")
    t.not(procoreTotals(h, b.project.id), await erpTotals(h, b.job.id), 'the second project was not reached')

    h.erp.changeCostTotal(a.job.id, '01-100', 'M', { budget: '9000.00' })
    const rerun = await runNow()
    t.equal(rerun.status, 'succeeded')
    t.match(rerun.result.counts, { sent: 4, refused: 1 }, 'the unrecorded rows again, the new change, job B')
    t.same(procoreTotals(h, a.project.id), linked(await erpTotals(h, a.job.id), '09-900'))
    t.same(procoreTotals(h, b.project.id), await erpTotals(h, b.job.id))
    const last = await runNow()
    t.match(last.result.counts, { sent: 0, unchanged: 5 })
  })

  await t.test('the schedule runs it at its due time', async (t) => {
    h.erp.changeCostTotal(a.job.id, '01-200', 'S', { actual: '0.20' })
    const schedule = await h.api('GET', `/v1/companies/${c}/sync-schedule`)
    const entry = schedule.body.entries.find((e: { syncType: string }) => e.syncType === 'project_job_costs')
    const fired = await runDueSchedules(h.app.ctx, new Date(entry.nextDueAt))
    const mine = fired.find((f) => f.syncType === 'project_job_costs')
    t.match(mine, { outcome: 'started' })
    const run = await h.waitRun(mine!.runId!)
    t.match(run, { status: 'succeeded', trigger: 'schedule', syncType: 'project_job_costs' })
    t.match(run.result.counts, { sent: 1, unchanged: 4, refused: 1 })
  })

  await t.test('a cost type without a Procore line item type is refused until one exists', async (t) => {
    h.erp.changeCostTotal(b.job.id, '01-100', 'E', { budget: '300.00', actual: '30.00' })
    const refused = await runNow()
    t.match(refused.result.counts, { sent: 0, unchanged: 5, refused: 2 })
    t.match(
      refused.result.items.find((i: { costType: string }) => i.costType === 'E'),
      { costCode: '01-100', reason: /no Procore cost type/, fix: /cost type with code E in Procore/ },
    )
    t.equal(refused.result.apiCalls.procore, 1, 'the line item types only')
    h.procore.seed(c, 'line_item_types', { code: 'E', name: 'Equipment' })
    const fixed = await runNow()
    t.match(fixed.result.counts, { sent: 1, unchanged: 5, refused: 1 })
    t.same(procoreTotals(h, b.project.id), await erpTotals(h, b.job.id))
  })
})
