// Linking ERP jobs to Procore projects (seed 003): prerequisites refused with reasons, fixed on
// request through Procore's API, the job's cost codes following the link in one batch call,
// archive of inactive jobs, the jobs view, import as new with the address, unlink with dependents.
import t from 'tap'
import { createCompany } from '../helpers/app.js'
import { syncHarness, until } from './fixtures/harness.js'

const ADDRESS = { address: '1 Harbor Way', city: 'Portland', state: 'OR', zip: '97201', country: 'US' }

t.test('ERP jobs link to Procore projects with prerequisites; cost codes follow', async (t) => {
  const h = await syncHarness(t)
  const c = h.companyId
  const erpList = h.procore.list(c, 'standard_cost_code_lists')[0]!.id
  const otherList = h.procore.seed(c, 'standard_cost_code_lists', { name: 'Old list' }).id

  // A plain project (not integrated, no list), one integrated on another list, one synced to another job.
  const plain = h.procore.seed(c, 'projects', { name: 'Riverside Tower', project_number: 'J-100' })
  const elsewhere = h.procore.seed(c, 'projects', {
    name: 'Bay Depot',
    project_number: 'J-101',
    erp_integrated: true,
    origin_id: 'someone-else',
  })
  const wrongList = h.procore.seed(c, 'projects', {
    name: 'Mill Lofts',
    project_number: 'J-102',
    erp_integrated: true,
    standard_cost_code_list_id: otherList,
  })
  const job = h.erp.seed('jobs', { number: 'J-100', name: 'Riverside Tower', status: 'active' })
  const inactive = h.erp.seed('jobs', { number: 'J-101', name: 'Bay Depot', status: 'inactive' })
  const job2 = h.erp.seed('jobs', { number: 'J-102', name: 'Mill Lofts', status: 'active' })
  const codes = Array.from({ length: 30 }, (_, i) =>
    h.erp.seed('cost-codes', {
      job_id: job.id,
      code: `01-${String(100 + i)}`,
      name: `Cost code ${i + 1}`,
      parent_code: '01',
    }),
  )
  await h.refresh(['project', 'cost_code'])
  const link = (body: Record<string, unknown>, key: string) =>
    h.api('POST', `/v1/companies/${c}/links`, { type: 'project', ...body }, { 'idempotency-key': key })

  await t.test('each prerequisite is refused with its reason', async (t) => {
    const refused = await link({ procoreId: plain.id, erpId: job.id }, 'plain')
    t.equal(refused.status, 422, JSON.stringify(refused.body))
    t.equal(refused.body.code, 'link_prerequisites_unmet')
    t.match(refused.body.unmet, [
      { code: 'procore_project_not_erp_integrated', fixable: true, fix: /fix: true/ },
      { code: 'procore_project_not_on_erp_cost_code_list', fixable: true, detail: /uses cost code list none/ },
    ])
    t.equal(refused.body.unmet.length, 2)

    const both = await link({ procoreId: elsewhere.id, erpId: inactive.id }, 'elsewhere')
    t.equal(both.status, 422)
    t.match(
      both.body.unmet.map((u: { code: string }) => u.code),
      ['procore_project_synced_elsewhere', 'erp_job_inactive'],
    )
    t.ok(
      both.body.unmet.every((u: { fixable: boolean; fix: string }) => !u.fixable && u.fix.length > 0),
      'not fixable, each with a fix',
    )
    const notFixed = await link({ procoreId: elsewhere.id, erpId: inactive.id, fix: true }, 'elsewhere-fix')
    t.equal(notFixed.status, 422, 'fix: true does not meet what Procore cannot')
    t.equal(h.procore.get(c, 'projects', elsewhere.id)?.origin_id, 'someone-else', 'Procore left as it was')

    const list = await link({ procoreId: wrongList.id, erpId: job2.id }, 'wrong-list')
    t.match(list.body.unmet, [
      { code: 'procore_project_not_on_erp_cost_code_list', detail: new RegExp(otherList), fixable: false },
    ])
    t.equal(list.body.unmet.length, 1)
    const listFix = await link({ procoreId: wrongList.id, erpId: job2.id, fix: true }, 'wrong-list-fix')
    t.equal(listFix.status, 422, "Procore's API cannot move a project to another list")
    t.equal(h.procore.get(c, 'projects', wrongList.id)?.standard_cost_code_list_id, otherList)
  })

  await t.test('link candidates show eligibility and reasons', async (t) => {
    const res = await h.api('GET', `/v1/companies/${c}/records/project/erp/${job.id}/link-candidates?q=riverside`)
    t.equal(res.status, 200, JSON.stringify(res.body))
    t.match(res.body.items[0], {
      id: plain.id,
      eligible: false,
      unmet: [{ code: 'procore_project_not_erp_integrated' }, { code: 'procore_project_not_on_erp_cost_code_list' }],
    })
  })

  let linkId = ''
  await t.test(
    "fix: true makes the project integrated on the ERP list, links it, and the job's cost codes follow",
    async (t) => {
      const syncCallsBefore = h.procore.calls.filter((x) => x.path === '/rest/v1.0/cost_codes/sync').length
      const patchesBefore = h.procore.calls.length
      const res = await link({ procoreId: plain.id, erpId: job.id, fix: true }, 'fix')
      t.equal(res.status, 201, JSON.stringify(res.body))
      t.match(res.body, {
        active: true,
        fixed: [
          {
            code: 'procore_project_not_erp_integrated',
            changed: { is_erp_integrated: { before: false, after: true } },
          },
          {
            code: 'procore_project_not_on_erp_cost_code_list',
            changed: { standard_cost_code_list_id: { before: null, after: erpList } },
          },
        ],
        dependents: { cost_code: 30 },
      })
      linkId = res.body.id
      const fixCalls = h.procore.calls.slice(patchesBefore).filter((x) => x.path === `/rest/v1.0/projects/${plain.id}`)
      t.match(fixCalls, [{ method: 'PATCH' }], 'one PATCH of the project')
      // The link answers once committed; its follow-up job writes Procore's origin.
      await h.settled(linkId)
      t.match(h.procore.get(c, 'projects', plain.id), {
        is_erp_integrated: true,
        standard_cost_code_list_id: erpList,
        origin_id: job.id,
      })
      const inProject = await until('30 cost codes in Procore, each with its origin', async () => {
        const list = h.procore.list(c, 'cost_codes').filter((x) => String(x.project_id) === plain.id)
        return list.length === 30 && list.every((x) => x.origin_id != null) ? list : undefined
      })
      t.same(
        inProject.map((x) => x.origin_id).sort(),
        codes.map((x) => x.id).sort(),
        'each carries its ERP id in origin_id',
      )
      const syncCalls = h.procore.calls.filter((x) => x.path === '/rest/v1.0/cost_codes/sync')
      t.equal(syncCalls.length - syncCallsBefore, 1, 'one batch call')
      await h.quiet()
      const linked = await h.api('GET', `/v1/companies/${c}/links?type=cost_code&active=true`)
      t.equal(linked.body.items.length, 30, 'every cost code linked')
    },
  )

  await t.test('a cost code added to the job later follows on the next refresh', async (t) => {
    const later = h.erp.seed('cost-codes', { job_id: job.id, code: '02-100', name: 'Sitework', parent_code: '02' })
    await h.refresh(['cost_code'])
    const created = await until('follows', async () =>
      h.procore.list(c, 'cost_codes').find((x) => x.origin_id === later.id),
    )
    t.equal(String(created.project_id), plain.id)
    await h.quiet()
  })

  await t.test('unlink with dependents is refused, then cascaded', async (t) => {
    const got = await h.api('GET', `/v1/companies/${c}/links/${linkId}`)
    const refused = await h.api('DELETE', `/v1/companies/${c}/links/${linkId}`, undefined, {
      'if-match': String(got.headers.etag),
    })
    t.equal(refused.status, 409, JSON.stringify(refused.body))
    t.equal(refused.body.code, 'has_dependents')
    t.equal(refused.body.dependents.length, 31)
    const done = await h.api('DELETE', `/v1/companies/${c}/links/${linkId}?cascade=true`, undefined, {
      'if-match': String(got.headers.etag),
    })
    t.equal(done.status, 200, JSON.stringify(done.body))
    t.equal(done.body.active, false)
    const still = await h.api('GET', `/v1/companies/${c}/links?type=cost_code&active=true`)
    t.equal(still.body.items.length, 0, 'cost code links ended too')
    const history = await h.api('GET', `/v1/companies/${c}/links?type=cost_code&active=false`)
    t.equal(history.body.items.length, 31, 'history kept')
    await h.quiet()
    t.ok(
      h.procore.list(c, 'cost_codes').every((x) => x.origin_id == null),
      "the cost codes' origin is cleared",
    )
  })
})

t.test('archive, auto-archive, the jobs view, bulk link and import as new', async (t) => {
  const h = await syncHarness(t)
  const c = h.companyId
  const ready = h.procore.seed(c, 'projects', { name: 'Harbor Bridge', project_number: 'J-200', erp_integrated: true })
  const notReady = h.procore.seed(c, 'projects', { name: 'Pier Nine', project_number: 'J-201' })
  const jobA = h.erp.seed('jobs', { number: 'J-200', name: 'Harbor Bridge', status: 'active' })
  // The project already has one of the job's cost codes: it is linked, the other created.
  const existing = h.procore.seed(c, 'cost_codes', { code: '01-100', name: 'General' }, { projectId: ready.id })
  const [eGeneral, eSite] = [
    h.erp.seed('cost-codes', { job_id: jobA.id, code: '01-100', name: 'General', parent_code: '01' }),
    h.erp.seed('cost-codes', { job_id: jobA.id, code: '02-100', name: 'Sitework', parent_code: '02' }),
  ]
  const jobB = h.erp.seed('jobs', { number: 'J-201', name: 'Pier Nine', status: 'active' })
  const old = h.erp.seed('jobs', { number: 'J-190', name: 'Old Depot', status: 'inactive' })
  const bare = h.erp.seed('jobs', { number: 'J-300', name: 'No Address', status: 'active' })
  const full = h.erp.seed('jobs', { number: 'J-301', name: 'Canal Works', status: 'active', ...ADDRESS })
  await h.refresh(['project', 'cost_code'])

  await t.test('bulk link skips the ineligible with reasons', async (t) => {
    const run = await h.waitRun(
      (
        await h.api(
          'POST',
          `/v1/companies/${c}/links/bulk`,
          { type: 'project', minScore: 0.9 },
          { 'idempotency-key': 'bulk' },
        )
      ).body.id,
    )
    t.equal(run.status, 'succeeded', JSON.stringify(run))
    const byProcore = new Map(run.result.items.map((i: { procoreId: string }) => [i.procoreId, i]))
    t.match(byProcore.get(ready.id), { status: 'linked', erpId: jobA.id })
    await until('cost codes followed', async () =>
      h.procore.get(c, 'cost_codes', existing.id)?.origin_id === eGeneral.id &&
      h.procore.list(c, 'cost_codes').some((x) => x.origin_id === eSite.id)
        ? true
        : undefined,
    )
    t.equal(
      h.procore.list(c, 'cost_codes').filter((x) => String(x.project_id) === ready.id).length,
      2,
      'the existing cost code was linked, not made twice',
    )
    await h.quiet()
    t.match(byProcore.get(notReady.id), {
      status: 'skipped',
      erpId: jobB.id,
      reason: /link prerequisites not met: procore_project_not_erp_integrated/,
      unmet: [{ code: 'procore_project_not_erp_integrated' }, { code: 'procore_project_not_on_erp_cost_code_list' }],
    })
  })

  await t.test('archive by hand and automatically; the jobs view counts', async (t) => {
    const view = await h.api('GET', `/v1/companies/${c}/records/project`)
    t.match(view.body.views, {
      ready_to_import: 3,
      ready_to_export: 1,
      synced: 1,
      archived: 0,
    })
    const archived = await h.api('POST', `/v1/companies/${c}/records/project/erp/${old.id}/archive`, undefined, {
      'idempotency-key': 'archive',
    })
    t.equal(archived.status, 200, JSON.stringify(archived.body))
    t.equal(archived.body.status, 'ignored')
    const onlyArchived = await h.api('GET', `/v1/companies/${c}/records/project?status=archived`)
    t.same(
      onlyArchived.body.items.map((i: { erp: { id: string } }) => i.erp.id),
      [old.id],
    )
    const unarchived = await h.api('POST', `/v1/companies/${c}/records/project/erp/${old.id}/unarchive`, undefined, {
      'idempotency-key': 'unarchive',
    })
    t.equal(unarchived.body.status, 'only_in_erp')
    const refused = await h.api(
      'POST',
      `/v1/companies/${c}/records/project/procore/${notReady.id}/archive`,
      undefined,
      {
        'idempotency-key': 'p-archive',
      },
    )
    t.equal(refused.status, 422, 'Procore projects are not archived here')

    const st = await h.api('GET', `/v1/companies/${c}/sync-settings`)
    const put = await h.api(
      'PUT',
      `/v1/companies/${c}/sync-settings`,
      { types: { project: { direction: 'both', autoArchive: true, autoLink: true } } },
      { 'if-match': String(st.headers.etag) },
    )
    t.equal(put.status, 200, JSON.stringify(put.body))
    t.equal(put.body.types.project.autoArchive, true)
    await h.quiet()
    const links = await h.api('GET', `/v1/companies/${c}/links?type=project&active=true`)
    t.same(
      links.body.items.map((l: { procoreId: string }) => l.procoreId),
      [ready.id],
      'auto-link refuses the pair whose project is not ERP-integrated',
    )
    h.erp.change('jobs', jobB.id, { status: 'inactive' })
    await h.refresh(['project'])
    await h.quiet()
    const after = await h.api('GET', `/v1/companies/${c}/records/project?status=archived`)
    t.same(
      after.body.items.map((i: { erp: { id: string } }) => i.erp.id).sort(),
      [old.id, jobB.id].sort(),
      'the inactive jobs are archived on refresh',
    )
    const importable = await h.api('GET', `/v1/companies/${c}/records/project?status=ready_to_import`)
    t.same(importable.body.items.map((i: { erp: { id: string } }) => i.erp.id).sort(), [bare.id, full.id].sort())
    t.match(importable.body.views, { ready_to_import: 2, archived: 2, synced: 1, ready_to_export: 1 })
  })

  await t.test('import as a new project requires the address, then creates it integrated', async (t) => {
    const refused = await h.api(
      'POST',
      `/v1/companies/${c}/records/project/create-in-procore`,
      { erpIds: [bare.id] },
      { 'idempotency-key': 'bare' },
    )
    t.equal(refused.status, 422, JSON.stringify(refused.body))
    t.equal(refused.body.errors.length, 5, 'each missing field named')
    for (const label of ['Address', 'City', 'State', 'ZIP', 'Country'])
      t.match(refused.body.detail, new RegExp(`${label} is required`))
    const run = await h.waitRun(
      (
        await h.api(
          'POST',
          `/v1/companies/${c}/records/project/create-in-procore`,
          { erpIds: [full.id] },
          { 'idempotency-key': 'full' },
        )
      ).body.id,
    )
    t.match(run.result.items, [{ sourceId: full.id, status: 'created' }], JSON.stringify(run.result))
    const erpList = h.procore.list(c, 'standard_cost_code_lists')[0]!.id
    t.match(h.procore.get(c, 'projects', run.result.items[0].targetId), {
      name: 'Canal Works',
      address: '1 Harbor Way',
      is_erp_integrated: true,
      standard_cost_code_list_id: erpList,
      origin_id: full.id,
    })
  })
})

t.test("a job deleted in the ERP takes its cost codes' snapshots with it", async (t) => {
  const h = await syncHarness(t)
  const c = h.companyId
  const job = h.erp.seed('jobs', { number: 'J-400', name: 'Gone Soon', status: 'active' })
  h.erp.seed('cost-codes', { job_id: job.id, code: '01-100', name: 'General', parent_code: '01' })
  await h.refresh(['project', 'cost_code'])
  const before = await h.api('GET', `/v1/companies/${c}/records/cost_code?status=only_in_erp`)
  t.equal(before.body.items.length, 1)
  h.erp.remove('jobs', job.id)
  await h.refresh(['project', 'cost_code'])
  const after = await h.api('GET', `/v1/companies/${c}/records/cost_code?status=only_in_erp`)
  t.equal(after.body.items.length, 0, 'the cost code is deleted with its job')
})

t.test('archive and link candidates are company-scoped', async (t) => {
  const h = await syncHarness(t)
  const c = h.companyId
  const job = h.erp.seed('jobs', { number: 'J-500', name: 'Scoped', status: 'inactive' })
  await h.refresh(['project'])
  await createCompany(h.app, h.adminKey, '7100001')
  const other = await h.app.inject({
    method: 'POST',
    url: '/v1/api-keys',
    headers: h.admin,
    payload: { name: 'other company', role: 'operator', companyIds: ['7100001'] },
  })
  t.equal(other.statusCode, 201, other.body)
  const headers = { ...h.auth(other.json().key), 'idempotency-key': 'scoped' }
  for (const [method, url] of [
    ['POST', `/v1/companies/${c}/records/project/erp/${job.id}/archive`],
    ['GET', `/v1/companies/${c}/records/project/erp/${job.id}/link-candidates`],
  ] as const) {
    const res = await h.app.inject({ method, url, headers })
    t.ok([403, 404].includes(res.statusCode), `${method} ${url}: ${res.statusCode}`)
  }
  t.equal((await h.api('GET', `/v1/companies/${c}/records/project/erp/${job.id}`)).body.status, 'only_in_erp')
})
