// Protocol 1.1 code formats: the agent declares that department codes are four digits; the
// service derives codes that fit (and are free), takes the caller's code, and refuses one that
// does not fit before anything is sent.
import t from 'tap'
import { syncHarness } from './fixtures/harness.js'

t.test('department codes follow the format the agent declares in /v1/info', async (t) => {
  const h = await syncHarness(t, {
    erp: { formats: { departments: { code: { mask: '9999', example: '0420', description: '4 digits' } } } },
  })
  const c = h.companyId
  h.erp.seed('departments', { code: '0001', name: 'Administration' })
  const operations = h.procore.seed(c, 'departments', { name: 'Operations' })
  const estimating = h.procore.seed(c, 'departments', { name: 'Estimating' })
  const safety = h.procore.seed(c, 'departments', { name: 'Safety' })
  const fleet = h.procore.seed(c, 'departments', { name: 'Fleet' })
  // A CHAR(30) column read without trimming: the protocol says trimmed, the service compares trimmed anyway.
  const padded = h.erp.seed('departments', { code: '0900', name: 'Accounting                    ' })
  const accounting = h.procore.seed(c, 'departments', { name: 'Accounting' })
  await h.refresh(['department'])

  const link = await h.api(
    'POST',
    `/v1/companies/${c}/links`,
    { type: 'department', procoreId: accounting.id, erpId: padded.id },
    { 'idempotency-key': 'link-padded' },
  )
  t.equal(link.status, 201, JSON.stringify(link.body))
  t.match(link.body, { discrepancyId: null }, 'trailing spaces are no discrepancy')

  const create = async (procoreIds: string[], key: string, codes?: Record<string, string>) => {
    const start = await h.api(
      'POST',
      `/v1/companies/${c}/records/department/create-in-erp`,
      { procoreIds, ...(codes && { codes }) },
      { 'idempotency-key': key },
    )
    t.equal(start.status, 202, JSON.stringify(start.body))
    return h.waitRun(start.body.id)
  }

  const derived = await create([operations.id, estimating.id], 'derive')
  t.match(derived.result.counts, { created: 2, refused: 0, failed: 0 })
  const codes = derived.result.items.map((i: { targetId: string }) => h.erp.get('departments', i.targetId)?.['code'])
  t.same(codes, ['0002', '0003'], 'derived codes fit 9999 and skip the code the ERP already has')

  const given = await create([safety.id], 'given', { [safety.id]: '0420' })
  t.match(given.result.items[0], { status: 'created' })
  t.equal(h.erp.get('departments', given.result.items[0].targetId)?.['code'], '0420', "the caller's code is used")

  const postsBefore = h.erp.calls.filter((x) => x.method === 'POST').length
  const refused = await create([fleet.id], 'refused', { [fleet.id]: 'FLEET' })
  t.match(refused.result.items[0], {
    status: 'refused',
    reason: /Code "FLEET" does not fit Foundation's format: 4 digits, e.g. "0420"; give the code to use in `codes`/,
  })
  t.equal(h.erp.calls.filter((x) => x.method === 'POST').length, postsBefore, 'nothing was sent to the agent')
})
