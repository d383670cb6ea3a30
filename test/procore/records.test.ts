// The ProcoreRecords contract (src/sync/sides.ts) against the stand-in over real HTTP: paging,
// batch sync with per-item errors, idempotent department upserts, cost codes of the ERP list and
// of projects, 64-bit ids end to end, and rate limits honoured (T15).
import t from 'tap'
import { ProcoreApi } from '../../src/procore/resources.js'
import { procoreRecords } from '../../src/sync/sides.js'
import { entity } from '../../src/sync/registry.js'
import { getSnapshot, upsertSnapshots } from '../../src/sync/snapshots.js'
import {
  COMPANY,
  connectServiceAccount,
  harness,
  inboxSettled,
  installWebhook,
  newUlid,
  until,
  v2Event,
} from './fixtures/harness.js'

const recordId = (result: { ok: boolean; record?: unknown } | undefined): string => {
  if (!result?.ok) throw new Error('expected a successful item')
  return String((result.record as { id: string }).id)
}
const all = async <T>(pages: AsyncGenerator<T[]>): Promise<T[]> => {
  const out: T[] = []
  for await (const page of pages) out.push(...page)
  return out
}

// Generous but bounded: these run many apps and Procore round trips on a shared 2-core machine.
t.setTimeout(300_000)

t.test('list follows Procore pagination and includes inactive records', async (t) => {
  const h = await harness(t)
  for (let i = 0; i < 2300; i++) h.standin.seed(COMPANY, 'vendors', { name: `Vendor ${i}` })
  for (let i = 0; i < 5; i++) h.standin.seed(COMPANY, 'vendors', { name: `Inactive ${i}`, is_active: false })
  await connectServiceAccount(h)
  const records = await procoreRecords(h.app.ctx, COMPANY)
  const vendors = await all(records.list('vendor'))
  t.equal(vendors.length, 2305)
  t.equal(new Set(vendors.map((v) => v.id)).size, 2305, 'no record twice')
  const pages = h.standin.calls.filter((c) => c.path === '/rest/v1.0/vendors')
  t.equal(pages.length, 3, '1,000 per page: three pages')
  t.ok(pages.every((c) => c.companyHeader === COMPANY))
  t.ok(h.standin.calls.some((c) => c.path === `/rest/v1.0/companies/${COMPANY}/vendors/inactive`))
  t.equal(await records.get('vendor', '123456'), null, '404 is null')

  // updated_at filter: only what changed since. (The stand-in's clock runs ahead while seeding fast.)
  const since = new Date(Math.max(...h.standin.list(COMPANY, 'vendors').map((v) => Date.parse(v.updated_at))) + 1)
  const changed = h.standin.change(COMPANY, 'vendors', vendors[7]!.id as string, { name: 'Renamed' }, { emit: false })
  const recent = await all(records.list('vendor', { updatedSince: since }))
  t.same(
    recent.map((v) => v.id),
    [changed.id],
  )
})

t.test('upsertByOrigin through the sync endpoint: ≤ 1,000 per call, per-item errors, idempotent', async (t) => {
  const h = await harness(t)
  await connectServiceAccount(h)
  const records = await procoreRecords(h.app.ctx, COMPANY)
  const items = Array.from({ length: 1500 }, (_, i) => ({
    originId: `ERP-V-${i}`,
    originCode: `V${i}`,
    body: entity('vendor').procore.to({ name: i === 700 ? '' : `ERP Vendor ${i}`, email: `v${i}@example.com` }),
  }))
  const results = await records.upsertByOrigin('vendor', items)
  const syncCalls = h.standin.calls.filter((c) => c.path === '/rest/v1.0/vendors/sync')
  t.equal(syncCalls.length, 2, 'two calls for 1,500 items')
  t.equal(results.length, 1500)
  t.match(
    results[700],
    { ok: false, error: /name/, fieldErrors: { name: [/blank/] } },
    'the refused item carries its reason',
  )
  t.ok(
    results.every(
      (r, i) => i === 700 || (r.ok && r.record.origin_id === `ERP-V-${i}` && r.record.origin_code === `V${i}`),
    ),
    'results in input order',
  )
  t.equal(h.standin.list(COMPANY, 'vendors').length, 1499)

  const again = await records.upsertByOrigin(
    'vendor',
    items.slice(0, 10).map((it) => ({ ...it, body: { ...it.body, name: `${String(it.body.name)} (renamed)` } })),
  )
  t.ok(again.every((r) => r.ok))
  t.equal(h.standin.list(COMPANY, 'vendors').length, 1499, 'a retry updates, never duplicates')
  t.equal(h.standin.list(COMPANY, 'vendors').find((v) => v.origin_id === 'ERP-V-3')?.name, 'ERP Vendor 3 (renamed)')

  const dup = await records.upsertByOrigin('vendor', [
    { originId: 'X', body: { name: 'a' } },
    { originId: 'X', body: { name: 'b' } },
  ])
  t.match(dup, [{ ok: true }, { ok: false, error: /twice/ }])

  // Users: no origin_code on Procore users.
  const users = await records.upsertByOrigin('user', [
    {
      originId: 'EMP-1',
      originCode: 'ignored',
      body: entity('user').procore.to({ lastName: 'Doe', email: 'doe@example.com' }),
    },
  ])
  t.match(users, [{ ok: true, record: { origin_id: 'EMP-1', last_name: 'Doe' } }])
  const updated = await records.update('vendor', recordId(results[1]), { name: 'Direct PATCH' })
  t.equal(updated.name, 'Direct PATCH')
})

t.test('departments (no sync endpoint): found by origin_id, so a retry updates instead of duplicating', async (t) => {
  const h = await harness(t)
  await connectServiceAccount(h)
  const records = await procoreRecords(h.app.ctx, COMPANY)
  h.standin.seed(COMPANY, 'departments', { name: 'Already linked', origin_id: 'D-9' })
  const items = [
    { originId: 'D-1', body: { name: 'Estimating' } },
    { originId: 'D-2', body: { name: 'Field' } },
    { originId: 'D-9', body: { name: 'Already linked, renamed' } },
  ]
  const first = await records.upsertByOrigin('department', items)
  t.ok(first.every((r) => r.ok))
  const second = await records.upsertByOrigin('department', items)
  t.ok(second.every((r) => r.ok))
  const depts = h.standin.list(COMPANY, 'departments')
  t.equal(depts.length, 3, 'one record per origin_id after two runs')
  t.equal(depts.find((d) => d.origin_id === 'D-9')?.name, 'Already linked, renamed')
  const refused = await records.upsertByOrigin('department', [{ originId: 'D-3', body: { name: '' } }])
  t.match(refused, [{ ok: false, fieldErrors: { name: [/blank/] } }])
})

t.test("cost codes: the ERP standard list without a parent, a project's codes with one", async (t) => {
  const h = await harness(t)
  await connectServiceAccount(h)
  const records = await procoreRecords(h.app.ctx, COMPANY)
  await t.rejects(
    all(records.list('cost_code')),
    { code: 'procore_no_erp_cost_code_list' },
    'no ERP list: said clearly',
  )

  const list = h.standin.seed(COMPANY, 'standard_cost_code_lists', { name: 'ERP list', is_erp_list: true })
  h.standin.seed(COMPANY, 'standard_cost_code_lists', { name: 'Other list' })
  const std = await records.upsertByOrigin('cost_code', [{ originId: 'CC-01', body: { code: '01', name: 'General' } }])
  t.match(std, [{ ok: true, record: { standard_cost_code_list_id: list.id, code: '01' } }])
  const listed = await all(records.list('cost_code'))
  t.match(listed, [{ code: '01', full_code: '01', name: 'General' }], 'the extended view, with codes and names')

  const project = h.standin.seed(COMPANY, 'projects', { name: 'Tower', project_number: 'P-1', erp_integrated: true })
  const codes = await records.upsertByOrigin(
    'cost_code',
    [{ originId: 'PCC-1', body: { code: '100', name: 'Concrete' } }],
    project.id,
  )
  t.ok(codes[0]?.ok)
  const id = recordId(codes[0])
  const changed = await records.update('cost_code', id, { name: 'Concrete work' }, project.id)
  t.equal(changed.name, 'Concrete work', 'ERP-integrated project: updated through sync')
  const mapped = entity('cost_code').procore.from((await records.get('cost_code', id, project.id))!)
  t.equal(mapped.parentId, project.id)
  t.equal(await records.get('cost_code', id), null, 'a project code is not a standard code of the ERP list')
})

t.test('64-bit ids round-trip exactly: read, written, stored and received by webhook', async (t) => {
  const h = await harness(t, { worker: true })
  await connectServiceAccount(h)
  await installWebhook(h, { payloadVersion: 'v2.0' })
  const bigId = '9007199254740993' // 2^53 + 1: a JS number would round it to ...992
  const biggest = '9223372036854775807'
  h.standin.seed(COMPANY, 'vendors', { id: bigId, name: 'Big Id Ltd' })
  h.standin.seed(COMPANY, 'vendors', { id: biggest, name: 'Biggest Id Ltd' })
  const records = await procoreRecords(h.app.ctx, COMPANY)
  const got = await records.get('vendor', bigId)
  t.equal(got?.id, bigId)
  t.equal(typeof got?.id, 'string')
  const listed = await all(records.list('vendor'))
  t.same(listed.map((v) => v.id).sort(), [bigId, biggest].sort())

  const [synced] = await records.upsertByOrigin('vendor', [
    { id: biggest, originId: 'ERP-BIG', body: { name: 'Biggest Id Ltd' } },
  ])
  t.match(synced, { ok: true, record: { id: biggest, origin_id: 'ERP-BIG' } })
  t.equal(h.standin.get(COMPANY, 'vendors', biggest)?.origin_id, 'ERP-BIG', 'the write reached exactly that record')
  await upsertSnapshots(h.app.db, COMPANY, 'procore', 'vendor', [{ ...entity('vendor').procore.from(got!), raw: got }])
  t.equal((await getSnapshot(h.app.db, COMPANY, 'procore', 'vendor', bigId))?.external_id, bigId)

  const auth = h.standin.webhooks.hooks()[0]!.destination_headers.Authorization!
  h.standin.change(COMPANY, 'vendors', biggest, { name: 'Renamed Biggest' }, { emit: false })
  await h.app.inject({
    method: 'POST',
    url: '/webhooks/procore',
    headers: { authorization: auth, 'content-type': 'application/json' },
    payload: v2Event({ resourceName: 'Company Vendors', resourceId: biggest, ulid: newUlid() }),
  })
  await until('processed', () => inboxSettled(h))
  const snapshot = await getSnapshot(h.app.db, COMPANY, 'procore', 'vendor', biggest)
  t.equal(snapshot?.fields.name, 'Renamed Biggest')
  t.equal((snapshot?.raw as { id: string }).id, biggest, 'the raw record keeps the exact id')
})

t.test('T15: a 429 with X-Rate-Limit-Reset: no request before the reset', async (t) => {
  const h = await harness(t)
  const vendor = h.standin.seed(COMPANY, 'vendors', { name: 'Patient Co' })
  await connectServiceAccount(h)
  const records = await procoreRecords(h.app.ctx, COMPANY)
  h.standin.faults.push({ match: { pathPrefix: '/rest/v1.0/vendors' }, status: 429, rateLimitResetInSeconds: 2 })
  const from = h.standin.calls.length
  const first = records.get('vendor', vendor.id)
  // Once Procore has answered 429, more callers of the same company arrive.
  await until('429 answered', async () => h.standin.calls.slice(from).some((c) => c.status === 429))
  const limited = h.standin.calls.slice(from).find((c) => c.status === 429)!
  const results = await Promise.all([first, ...Array.from({ length: 4 }, () => records.get('vendor', vendor.id))])
  t.ok(
    results.every((r) => r?.name === 'Patient Co'),
    'every caller gets its answer after the wait',
  )
  const resetAt = (Math.floor(limited.at / 1000) + 2) * 1000
  const afterwards = h.standin.calls.slice(from).filter((c) => c !== limited)
  t.equal(afterwards.length, 5, 'the retry and the four later callers')
  t.equal(afterwards.filter((c) => c.at < resetAt).length, 0, 'requests sent before the reset: 0')
  t.ok(afterwards.every((c) => c.status === 200))
})

t.test('timecard entries: typed read and write', async (t) => {
  const h = await harness(t)
  await connectServiceAccount(h)
  const api = new ProcoreApi(h.app.ctx, COMPANY)
  const user = h.standin.seed(COMPANY, 'users', { last_name: 'Doe', email_address: 'doe@example.com' })
  const entry = await api.createTimecardEntry({
    date: '2025-03-01',
    hours: '8.0',
    party_id: user.id,
    description: 'Pour',
    origin_id: 7,
  })
  t.equal(entry.party_id, user.id)
  t.equal(entry.origin_id, 7, 'origin_id stays an integer (PROCORE.md §2.6)')
  const refused = await api
    .createTimecardEntry({ date: '2025-03-01', hours: '1', party_id: user.id, origin_id: 'T-2' })
    .then(
      () => null,
      (error: unknown) => error as { status?: number },
    )
  t.equal(refused?.status, 422, 'a text origin_id is refused, as the spec types it an integer')
  t.equal((await api.getTimecardEntry(entry.id))?.description, 'Pour')
  const updated = await api.updateTimecardEntry(entry.id, { hours: '7.5' })
  t.equal(updated.hours, '7.5')
  const listed: string[] = []
  for await (const page of api.timecardEntries()) listed.push(...page.map((e) => e.id))
  t.same(listed, [entry.id])
})
