// What propagating an owned field reads. Procore's API calls are the scarce resource: the Procore
// record the webhook's read has just brought is not read a second time before its owned fields go to
// the ERP. A Procore snapshot that no read saw lately is never trusted: then Procore is read first.
import { sql } from 'kysely'
import t from 'tap'
import { syncHarness, until } from './fixtures/harness.js'

t.test('propagating a Procore-owned field', async (t) => {
  const h = await syncHarness(t)
  const c = h.companyId
  const p = h.procore.seed(c, 'vendors', { name: 'Granite Supply', email_address: 'ap@granite.example' })
  const e = h.erp.seed('vendors', { code: 'GRAN01', name: 'Granite Supply', email: 'ap@granite.example' })
  await h.refresh(['vendor'])
  const linked = await h.api(
    'POST',
    `/v1/companies/${c}/links`,
    { type: 'vendor', procoreId: p.id, erpId: e.id },
    { 'idempotency-key': 'link' },
  )
  t.equal(linked.status, 201, JSON.stringify(linked.body))
  await h.settled(linked.body.id)
  const s = await h.api('GET', `/v1/companies/${c}/sync-settings`)
  const put = await h.api(
    'PUT',
    `/v1/companies/${c}/sync-settings`,
    { types: { vendor: { direction: 'both', fieldOwners: { name: 'procore' } } } },
    { 'if-match': String(s.headers.etag) },
  )
  t.equal(put.status, 200, JSON.stringify(put.body))
  await h.quiet()
  const procoreReads = (since: number) =>
    h.procore.calls
      .slice(since)
      .filter((x) => x.method === 'GET' && (x.path.includes(p.id) || JSON.stringify(x.query).includes(p.id))).length

  await t.test('a change in Procore reaches the ERP on the one read its webhook brought', async (t) => {
    const before = h.procore.calls.length
    h.procore.change(c, 'vendors', p.id, { name: 'Granite Supply Co' })
    await until('propagated', async () => h.erp.get('vendors', e.id)?.name === 'Granite Supply Co')
    await h.quiet()
    t.equal(procoreReads(before), 1, 'Procore was read once, by the webhook, not again by the propagation')
    const entry = (await h.api('GET', `/v1/companies/${c}/audit?recordId=${p.id}&action=propagate`)).body.items[0]
    t.match(entry, {
      actor: 'system:propagate',
      before: { erp: { name: 'Granite Supply' } },
      after: { erp: { name: 'Granite Supply Co' } },
    })
  })

  await t.test('a Procore snapshot no read saw lately is read again before the ERP is written', async (t) => {
    // Procore changes without a webhook (one lost), and the last read of the vendor is a minute old.
    h.procore.change(c, 'vendors', p.id, { name: 'Granite Supply & Rental' }, { emit: false })
    await sql`update record_snapshots set seen_at = now() - interval '1 minute'
      where company_id = ${c} and side = 'procore' and external_id = ${p.id}`.execute(h.app.db)
    const before = h.procore.calls.length
    // Someone renames the vendor in the ERP: Procore owns the name, so it is written back, with Procore's value now.
    h.erp.change('vendors', e.id, { name: 'GRANITE SUPPLY' })
    await until('written back', async () => h.erp.get('vendors', e.id)?.name === 'Granite Supply & Rental')
    await h.quiet()
    t.ok(procoreReads(before) >= 1, 'Procore was read')
    t.equal(h.erp.get('vendors', e.id)?.name, 'Granite Supply & Rental')
  })
})
