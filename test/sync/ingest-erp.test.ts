import { sql } from 'kysely'
import t from 'tap'
import { connected, eventually, standin, type Connected } from '../erp/fixtures/harness.js'

const VENDOR_FIELDS = [
  'code',
  'name',
  'tax_id',
  'email',
  'phone',
  'address',
  'city',
  'state',
  'zip',
  'country',
  'active',
] as const

interface RunBody {
  id: string
  status: string
  kind: string
  params: Record<string, unknown>
  result: { types: Record<string, Record<string, number>> } | null
  error: string | null
}

/** POST …/erp/refresh through the API, then poll the run it returns until it finishes. */
async function refresh(c: Connected, payload?: Record<string, unknown>): Promise<RunBody> {
  const res = await c.app.inject({
    method: 'POST',
    url: `/v1/companies/${c.companyId}/erp/refresh`,
    headers: c.admin,
    ...(payload && { payload }),
  })
  if (res.statusCode !== 202) throw new Error(`refresh: ${res.statusCode} ${res.body}`)
  const location = res.headers.location as string
  if (location !== `/v1/companies/${c.companyId}/runs/${res.json<RunBody>().id}`)
    throw new Error(`unexpected Location ${location}`)
  return eventually(
    'the refresh run to finish',
    async () => {
      const run = (await c.app.inject({ method: 'GET', url: location, headers: c.admin })).json<RunBody>()
      return run.status === 'succeeded' || run.status === 'failed' ? run : undefined
    },
    900,
  )
}

const snapshots = (c: Connected, type: string) =>
  c.app.db
    .selectFrom('record_snapshots')
    .selectAll()
    .where('company_id', '=', c.companyId)
    .where('side', '=', 'erp')
    .where('type', '=', type)
    .orderBy('external_id')
    .execute()

t.test(
  'refresh pages through 3,000 vendors into snapshots, then marks the one that disappeared as deleted',
  async (t) => {
    const a = await standin(t)
    for (let i = 1; i <= 3_000; i++)
      a.seed('vendors', { code: `V${i}`, name: `Vendor ${i}`, phone: `555-${String(i).padStart(4, '0')}` })
    const c = await connected(t, { erp: a })

    const first = await refresh(c, { type: 'vendor' })
    t.equal(first.status, 'succeeded', first.error ?? '')
    t.same(first.params, { full: true, types: ['vendor'] })
    t.match(first.result?.types['vendor'], { listed: 3_000, created: 3_000, changed: 0, deleted: 0, pages: 6 })
    const rows = await snapshots(c, 'vendor')
    t.equal(rows.length, 3_000)
    t.equal(rows.filter((r) => r.deleted_at !== null).length, 0)
    const sample = a.list('vendors')[1_234]!
    t.match(rows.find((r) => r.external_id === sample.id)?.fields, {
      code: sample['code'],
      name: sample['name'],
      phone: sample['phone'],
      active: true,
    })

    // The same ERP company served by a rebuilt agent that lost one vendor and saw another edited.
    const removed = a.list('vendors')[777]!
    const b = await standin(t)
    for (const v of a.list('vendors')) {
      if (v.id !== removed.id)
        b.seed('vendors', { id: v.id, ...Object.fromEntries(VENDOR_FIELDS.map((f) => [f, v[f]])) })
    }
    const edited = b.list('vendors')[10]!
    b.change('vendors', edited.id, { name: 'Renamed Vendor' })
    const moved = await c.app.inject({
      method: 'PUT',
      url: `/v1/companies/${c.companyId}/erp/connection`,
      headers: { ...c.admin, 'if-match': '"1"' },
      payload: { baseUrl: b.url, token: b.token },
    })
    t.equal(moved.statusCode, 200, moved.body)

    const second = await refresh(c, { type: 'vendor' })
    t.equal(second.status, 'succeeded', second.error ?? '')
    t.match(second.result?.types['vendor'], { listed: 2_999, created: 0, changed: 1, unchanged: 2_998, deleted: 1 })
    const after = await snapshots(c, 'vendor')
    t.same(
      after.filter((r) => r.deleted_at !== null).map((r) => r.external_id),
      [removed.id],
      'exactly the removed vendor is marked deleted',
    )
    t.equal(after.find((r) => r.external_id === edited.id)?.fields['name'], 'Renamed Vendor')
  },
)

t.test('a full refresh reads every record type, job cost codes under their jobs', async (t) => {
  const erp = await standin(t)
  const dept = erp.seed('departments', { code: '10', name: 'Operations' })
  erp.seed('departments', { code: '20', name: 'Estimating', active: false })
  erp.seed('employees', {
    first_name: 'Dana',
    last_name: 'Ruiz',
    email: 'dana@example.com',
    employee_number: '1042',
    department_id: dept.id,
  })
  const open = erp.seed('jobs', {
    number: 'J-2024-001',
    name: 'Harbor Point',
    city: 'Tacoma',
    state: 'WA',
    start_date: '2024-03-01',
  })
  const closed = erp.seed('jobs', { number: 'J-2023-009', name: 'Old Mill', status: 'inactive' })
  const standard = erp.seed('cost-codes', { code: '01-100', name: 'General conditions' })
  const openCodes = [
    erp.seed('cost-codes', { code: '01-100', name: 'General conditions', job_id: open.id }),
    erp.seed('cost-codes', { code: '03-300', name: 'Concrete', job_id: open.id }),
  ]
  const closedCode = erp.seed('cost-codes', { code: '01-100', name: 'General conditions', job_id: closed.id })
  erp.seed('vendors', { name: 'Acme Concrete', tax_id: '12-3456789' })
  const c = await connected(t, { erp })

  const run = await refresh(c) // no body: every type
  t.equal(run.status, 'succeeded', run.error ?? '')
  t.same(run.params, { full: true, types: ['department', 'user', 'project', 'cost_code', 'vendor', 'invoice'] })
  t.match(run.result?.types, {
    department: { listed: 2, created: 2 },
    user: { listed: 1 },
    project: { listed: 2 },
    cost_code: { listed: 4, created: 4, parents: 2 },
    vendor: { listed: 1 },
  })

  t.match(
    (await snapshots(c, 'department')).map((r) => r.fields),
    [
      { code: '10', name: 'Operations' },
      { code: '20', name: 'Estimating' },
    ],
  )
  t.match((await snapshots(c, 'user'))[0]?.fields, {
    firstName: 'Dana',
    lastName: 'Ruiz',
    email: 'dana@example.com',
    employeeNumber: '1042',
    active: true,
  })
  const projects = await snapshots(c, 'project')
  t.match(projects.find((p) => p.external_id === open.id)?.fields, {
    number: 'J-2024-001',
    name: 'Harbor Point',
    active: true,
    city: 'Tacoma',
    state: 'WA',
    startDate: '2024-03-01',
  })
  t.equal(projects.find((p) => p.external_id === closed.id)?.fields['active'], false)
  const codes = await snapshots(c, 'cost_code')
  t.same(
    codes.map((r) => [r.external_id, r.parent_id]).sort(),
    [
      [standard.id, null],
      [openCodes[0]!.id, open.id],
      [openCodes[1]!.id, open.id],
      [closedCode.id, closed.id],
    ].sort(),
    'standard codes have no parent; job codes have their job',
  )

  // Deactivation is a change, not a deletion; a refresh of one type leaves the others alone.
  erp.deactivate('cost-codes', openCodes[1]!.id, { notify: false })
  const again = await refresh(c, { type: 'cost_code' })
  t.match(again.result?.types, { cost_code: { listed: 4, changed: 1, unchanged: 3, deleted: 0, parents: 2 } })
  t.notOk('vendor' in (again.result?.types ?? {}))

  const listed = await c.app.inject({
    method: 'GET',
    url: `/v1/companies/${c.companyId}/runs?kind=erp_refresh`,
    headers: c.admin,
  })
  t.equal(listed.statusCode, 200)
  t.same(
    listed.json().items.map((r: RunBody) => r.id),
    [again.id, run.id],
    'newest first',
  )

  // An agent that (at its last connection test) stopped serving employees and job cost codes:
  // those lists are not read, and nothing of theirs is marked deleted.
  await sql`update erp_connections set info = jsonb_set(info, '{capabilities,resources}',
    '["departments","jobs","cost-codes","vendors"]')`.execute(c.app.db)
  const partial = await refresh(c)
  t.equal(partial.status, 'succeeded', partial.error ?? '')
  t.match(partial.result?.types, {
    user: { listed: 0, status: 'skipped', reason: 'the agent does not serve employees' },
    cost_code: { listed: 1, deleted: 0 },
  })
  t.notOk('parents' in (partial.result?.types['cost_code'] ?? {}))
  const kept = await c.app.db
    .selectFrom('record_snapshots')
    .select('external_id')
    .where('side', '=', 'erp')
    .where('deleted_at', 'is not', null)
    .execute()
  t.same(kept, [], 'no employee or job cost code was marked deleted')
})

t.test('a refresh the agent refuses fails with the reason; nothing is marked deleted', async (t) => {
  const c = await connected(t)
  c.erp.seed('vendors', { name: 'Kept Vendor' })
  const ok = await refresh(c, { type: 'vendor' })
  t.equal(ok.status, 'succeeded')

  c.erp.faults.push({ match: { method: 'GET', pathPrefix: '/v1/vendors' }, status: 401, times: Infinity })
  const failed = await refresh(c, { type: 'vendor' })
  t.equal(failed.status, 'failed')
  t.match(failed.error, /^vendor: The ERP agent refused this service's credentials on GET \/v1\/vendors \(401/)
  t.notOk(failed.error?.includes(c.erp.token))
  const { rows } = await sql<{
    n: string
  }>`select count(*) as n from record_snapshots where deleted_at is not null`.execute(c.app.db)
  t.equal(rows[0]!.n, '0', 'a failed listing marks nothing deleted')

  const bad = await c.app.inject({
    method: 'POST',
    url: `/v1/companies/${c.companyId}/erp/refresh`,
    headers: c.admin,
    payload: { type: 'receipt' },
  })
  t.equal(bad.statusCode, 400)
  const viewer = await c.key('viewer')
  t.equal(
    (
      await c.app.inject({
        method: 'POST',
        url: `/v1/companies/${c.companyId}/erp/refresh`,
        headers: c.auth(viewer),
        payload: {},
      })
    ).statusCode,
    403,
  )
})
