// The five onboarding steps over the public API against both stand-ins: in order, auto and manual;
// projects without an address refused by name; a key of another company sees none of it.
import t from 'tap'
import { createCompany } from '../helpers/app.js'
import { syncHarness, type SyncHarness } from '../sync/fixtures/harness.js'

type Step = 'company' | 'users' | 'projects' | 'cost_codes' | 'settings'

function steps(h: SyncHarness) {
  const base = `/v1/companies/${h.companyId}/onboarding`
  let n = 0
  return {
    get: async () => (await h.api('GET', base)).body,
    post: (step: Step, body: unknown, headers: Record<string, string> = {}) =>
      h.api('POST', `${base}/steps/${step}`, body, { 'idempotency-key': `k-${++n}`, ...headers }),
    /** Performs an import step and waits for its run. */
    async run(step: Step, body: unknown) {
      const res = await this.post(step, body)
      if (res.status !== 202) throw new Error(`${step}: ${res.status} ${JSON.stringify(res.body)}`)
      return h.waitRun(res.body.run.id)
    },
  }
}

/** A company with records on both sides: some twins, some only in the ERP, one Procore user only in Procore. */
function seed(h: SyncHarness) {
  const c = h.companyId
  const estimating = h.procore.seed(c, 'standard_cost_code_lists', { name: 'Estimating', is_erp_list: false })
  h.procore.addCompany('8299001', 'Riverside Holdings')
  const alice = h.procore.seed(c, 'users', { first_name: 'Alice', last_name: 'Ames', email_address: 'alice@rb.test' })
  h.procore.seed(c, 'users', { first_name: 'Pat', last_name: 'Procore', email_address: 'pat@rb.test' })
  const tower = h.procore.seed(c, 'projects', { name: 'Riverside Tower', project_number: 'J-1', erp_integrated: true })
  const sitework = h.procore.seed(c, 'standard_cost_codes', {
    code: '01-100',
    name: 'Sitework',
    standard_cost_code_list_id: estimating.id,
  })
  const address = { address: '1 Main St', city: 'Austin', state: 'TX', zip: '78701', country: 'US' }
  const erp = {
    alice: h.erp.seed('employees', { first_name: 'Alice', last_name: 'Ames', email: 'alice@rb.test' }),
    bob: h.erp.seed('employees', { first_name: 'Bob', last_name: 'Baker', email: 'bob@rb.test' }),
    tower: h.erp.seed('jobs', { number: 'J-1', name: 'Riverside Tower', status: 'active', ...address }),
    depot: h.erp.seed('jobs', { number: 'J-2', name: 'Bay Depot', status: 'active', ...address }),
    sitework: h.erp.seed('cost-codes', { code: '01-100', name: 'Sitework' }),
    concrete: h.erp.seed('cost-codes', { code: '03-300', name: 'Concrete' }),
  }
  return { estimating, procore: { alice, tower, sitework }, erp }
}

t.test('the five steps in order on a fresh company, auto', async (t) => {
  const h = await syncHarness(t)
  const c = h.companyId
  const s = seed(h)
  const o = steps(h)

  const fresh = await o.get()
  t.same(
    fresh.steps.map((x: { step: string; status: string }) => [x.step, x.status]),
    [
      ['company', 'todo'],
      ['users', 'todo'],
      ['projects', 'todo'],
      ['cost_codes', 'todo'],
      ['settings', 'todo'],
    ],
  )
  t.match(fresh.next, { step: 'company', action: /steps\/company/ })
  t.match(fresh.steps[1].blockedBy, /Step 1 \(company\) is todo/)

  const early = await o.post('users', { mode: 'auto' })
  t.equal(early.status, 409, 'steps go in order')
  t.match(early.body, { code: 'onboarding_step_out_of_order', steps: ['company'] })

  // 1. The Procore company and its cost code list.
  const options = await h.api('GET', `/v1/companies/${c}/onboarding/steps/company/options`)
  t.equal(options.status, 200)
  t.same(options.body.companies.map((x: { id: string }) => x.id).sort(), [c, '8299001'].sort())
  t.match(
    options.body.costCodeLists.map((l: { name: string; isErpList: boolean }) => [l.name, l.isErpList]),
    [
      ['ERP cost codes', true],
      ['Estimating', false],
    ],
  )
  const wrongList = await o.post('company', { procoreCompanyId: c, costCodeListId: '999999' })
  t.equal(wrongList.status, 422)
  t.match(wrongList.body, { code: 'cost_code_list_not_found', errors: [{ pointer: '/body/costCodeListId' }] })
  const chosen = await o.post('company', { procoreCompanyId: c, costCodeListId: s.estimating.id })
  t.equal(chosen.status, 200, JSON.stringify(chosen.body))
  t.match(chosen.body.step, { status: 'done', result: { costCodeList: { name: 'Estimating' } } })

  await h.refresh()
  const before = await o.get()
  t.same(before.steps[1].counts, { inProcore: 2, inErp: 2, linked: 0, toCreate: 2, toReview: 2 })
  t.same(before.steps[3].counts, { inProcore: 1, inErp: 2, linked: 0, toCreate: 2, toReview: 1 })

  // 2. Users: Alice links by e-mail, Bob is created in Procore with the least access.
  const users = await o.run('users', { mode: 'auto' })
  t.equal(users.status, 'succeeded', JSON.stringify(users))
  t.match(users.result, { progress: { done: 2, total: 2 }, counts: { linked: 1, created: 1 } })
  const bob = h.procore.list(c, 'users').find((u) => u.email_address === 'bob@rb.test')
  t.ok(bob, 'Bob was created in Procore')
  t.equal(bob?.origin_id, s.erp.bob.id, 'and linked to his ERP record')
  t.ok(bob && 'permission_template_id' in bob && bob.permission_template_id === null, 'with no permission template')
  t.equal(bob?.erp_integrated_accountant, false)

  // 3. Projects: J-1 links to its Procore twin, J-2 is created.
  const projects = await o.run('projects', { mode: 'auto' })
  t.match(projects.result, { counts: { linked: 1, created: 1 } })
  t.ok(h.procore.list(c, 'projects').some((p) => p.project_number === 'J-2' && p.origin_id === s.erp.depot.id))

  // 4. Cost codes: in the chosen list.
  const codes = await o.run('cost_codes', { mode: 'auto' })
  t.match(codes.result, { counts: { linked: 1, created: 1 } })
  const concrete = h.procore.list(c, 'standard_cost_codes').find((x) => x.code === '03-300')
  t.equal(concrete?.standard_cost_code_list_id, s.estimating.id, 'created in the list chosen in step 1')

  // 5. Settings.
  const settings = await o.post('settings', { directions: { user: 'erp_to_procore', cost_code: 'erp_to_procore' } })
  t.equal(settings.status, 200, JSON.stringify(settings.body))
  const read = await h.api('GET', `/v1/companies/${c}/sync-settings`)
  t.equal(read.body.types.user.direction, 'erp_to_procore')
  t.equal(read.body.types.project.direction, 'both', 'types not given keep theirs')

  const done = await o.get()
  t.same(
    done.steps.map((x: { status: string }) => x.status),
    ['done', 'done', 'done', 'done', 'done'],
  )
  t.equal(done.complete, true)
  t.equal(done.next, null)
  t.same(done.steps[1].counts, { inProcore: 3, inErp: 2, linked: 2, toCreate: 0, toReview: 1 })

  // A step asked again is safe: nothing left to link or create.
  const again = await o.run('users', { mode: 'auto' })
  t.match(again.result, { counts: { linked: 0, created: 0 } })
  t.equal(h.procore.list(c, 'users').filter((u) => u.email_address === 'bob@rb.test').length, 1, 'Bob made once')
})

t.test('manual decisions: link, create with edits, skip; refusals name the item and field', async (t) => {
  const h = await syncHarness(t)
  const c = h.companyId
  const s = seed(h)
  const noAddress = h.erp.seed('jobs', { number: 'J-3', name: 'Harbor Yard', status: 'active' })
  await h.refresh()
  const o = steps(h)
  t.equal((await o.post('company', { costCodeListId: s.estimating.id })).status, 200)

  const invalid = await o.post('users', {
    mode: 'manual',
    decisions: [
      { id: s.erp.alice.id, action: 'link', to: '123' },
      { id: s.erp.bob.id, action: 'create', fields: { shoeSize: '44' } },
    ],
  })
  t.equal(invalid.status, 400)
  t.match(invalid.body, {
    code: 'invalid_onboarding_decisions',
    errors: [
      { pointer: '/body/decisions/0/to', message: /no live Procore user 123/ },
      { pointer: '/body/decisions/1/fields/shoeSize', message: /not a field of users/ },
    ],
  })

  const users = await o.run('users', {
    mode: 'manual',
    decisions: [
      { id: s.erp.alice.id, action: 'link', to: s.procore.alice.id },
      { id: s.erp.bob.id, action: 'create', fields: { jobTitle: 'Foreman' } },
    ],
  })
  t.match(users.result, { counts: { linked: 1, created: 1 } })
  const bob = h.procore.list(c, 'users').find((u) => u.email_address === 'bob@rb.test')
  t.equal(bob?.job_title, 'Foreman', 'created with the edited field')

  // Projects without an address: refused by name, auto and manual alike.
  const auto = await o.post('projects', { mode: 'auto' })
  t.equal(auto.status, 422, JSON.stringify(auto.body))
  t.equal(auto.body.code, 'procore_required_fields_missing')
  t.match(auto.body.detail, /ERP project .* \(J-3\): /)
  t.notMatch(auto.body.detail, /J-2/, 'projects with an address are not named')
  const manual = await o.post('projects', {
    mode: 'manual',
    decisions: [{ id: noAddress.id, action: 'create', fields: { address: '9 Dock Rd' } }],
  })
  t.equal(manual.status, 422)
  t.match(manual.body.errors, [{ pointer: '/body/decisions/0/fields/city' }])

  const projects = await o.run('projects', {
    mode: 'manual',
    decisions: [
      { id: s.erp.tower.id, action: 'link', to: s.procore.tower.id },
      {
        id: noAddress.id,
        action: 'create',
        fields: { address: '9 Dock Rd', city: 'Austin', state: 'TX', zip: '78702', country: 'US' },
      },
      { id: s.erp.depot.id, action: 'skip' },
    ],
  })
  t.equal(projects.status, 'succeeded', JSON.stringify(projects))
  t.match(projects.result, { counts: { linked: 1, created: 1, skipped: 1 } })
  t.match(
    h.procore.list(c, 'projects').find((p) => p.project_number === 'J-3'),
    { address: '9 Dock Rd', city: 'Austin' },
  )
  t.notOk(
    h.procore.list(c, 'projects').some((p) => p.project_number === 'J-2'),
    'the skipped project is not created',
  )

  const skipped = await o.post('cost_codes', { skip: true })
  t.equal(skipped.status, 200)
  t.equal(skipped.body.step.status, 'skipped')
  const state = await o.get()
  t.same(
    state.steps.map((x: { status: string }) => x.status),
    ['done', 'done', 'done', 'skipped', 'todo'],
  )
  t.match(state.next, { step: 'settings' })
})

t.test('a key of another company sees none of it; other roles are refused', async (t) => {
  const h = await syncHarness(t)
  const c = h.companyId
  await createCompany(h.app, h.adminKey, '8299999')
  const other = h.auth(await h.key('admin', ['8299999']))
  const base = `/v1/companies/${c}/onboarding`
  for (const [method, url] of [
    ['GET', base],
    ['GET', `${base}/steps/company/options`],
    ['POST', `${base}/steps/company`],
  ] as const) {
    const res = await h.api(method, url, method === 'POST' ? { skip: true } : undefined, {
      ...other,
      'idempotency-key': 'x',
    })
    t.equal(res.status, 404, `${method} ${url}`)
  }
  const operator = h.auth(await h.key('operator', [c]))
  const refused = await h.api('GET', base, undefined, operator)
  t.equal(refused.status, 403)
  t.equal((await h.api('GET', base)).status, 200)
})
