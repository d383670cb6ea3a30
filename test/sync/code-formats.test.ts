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
  t.match(await h.settled(link.body.id), { discrepancyId: null }, 'trailing spaces are no discrepancy')

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

t.test('a create whose answer was lost is retried after a token rotation and replays: one department', async (t) => {
  const h = await syncHarness(t)
  const c = h.companyId
  const estimating = h.procore.seed(c, 'departments', { name: 'Estimating' })
  await h.refresh(['department'])

  // The agent commits the create, the answer is lost, and the agent stays unreachable for now.
  h.erp.faults.push({ match: { method: 'POST', pathPrefix: '/v1/departments' }, dropResponseAfterCommit: true })
  h.erp.faults.push({
    match: { method: 'POST', pathPrefix: '/v1/departments' },
    resetConnection: true,
    times: Infinity,
  })
  const start = await h.api(
    'POST',
    `/v1/companies/${c}/records/department/create-in-erp`,
    { procoreIds: [estimating.id] },
    { 'idempotency-key': 'create-across-rotation' },
  )
  t.equal(start.status, 202)
  const posts = () => h.erp.calls.filter((x) => x.method === 'POST' && x.path === '/v1/departments')
  // Wait until this attempt of the run has given up; the job framework retries it later.
  for (;;) {
    const run = await h.api('GET', `/v1/companies/${c}/runs/${start.body.id}`)
    if (run.body.result?.lastError !== undefined || ['succeeded', 'failed'].includes(run.body.status)) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }

  // Meanwhile the agent's token is rotated: next accepted, then saved in the service. (The old one is
  // retired once nothing is in flight with it: an attempt already under way still carries it.)
  const next = 'erp_rotated_token_0123456789abcdef'
  h.erp.tokens.accept(next)
  const current = await h.api('GET', `/v1/companies/${c}/erp/connection`)
  const saved = await h.api(
    'PUT',
    `/v1/companies/${c}/erp/connection`,
    { baseUrl: h.erp.url, token: next },
    { 'if-match': current.headers.etag as string },
  )
  t.equal(saved.status, 200, JSON.stringify(saved.body))
  // The attempt under way still carries the old token; the agent stays unreachable until the next one starts.
  while (!posts().some((x) => x.token === next)) await new Promise((resolve) => setTimeout(resolve, 50))
  h.erp.faults.clear()

  const run = await h.waitRun(start.body.id)
  t.match(run, { status: 'succeeded', result: { counts: { created: 1, failed: 0 } } }, JSON.stringify(run.result))
  t.equal(h.erp.stats().creates, 1, 'one department in the ERP')
  t.equal(h.erp.list('departments').length, 1)
  const keys = new Set(posts().map((x) => x.idempotencyKey))
  t.equal(keys.size, 1, 'every attempt, before and after the rotation, sent the same Idempotency-Key')
  t.match(
    posts().map((x) => x.status),
    [201, 0],
    'the lost 201, then resets while the agent was unreachable',
  )
  t.match(posts().at(-1), { status: 200, token: next }, 'the retry with the next token replayed')
})
