// Invoices and payments for synced invoices, over HTTP against both stand-ins: an approved Procore
// invoice is sent, accepted, created in the ERP and linked; the ERP's payments of it are issued on the
// Procore commitment once, a re-run issues nothing, a changed payment updates its twin, money stays exact.
import t from 'tap'
import { syncHarness, until, type SyncHarness } from '../sync/fixtures/harness.js'

const sentBy = { name: 'Pat Sender', email: 'pat@riverside.example' }

/** Exact sum of decimal strings with two decimals, in cents as bigint. */
const cents = (v: string) => BigInt(v.replace('.', ''))

async function linked(h: SyncHarness, type: string, procoreId: string, erpId: string) {
  const r = await h.api(
    'POST',
    `/v1/companies/${h.companyId}/links`,
    { type, procoreId, erpId, ...(type === 'project' ? { fix: true } : {}) },
    { 'idempotency-key': `link-${type}-${procoreId}` },
  )
  if (r.status !== 201 && r.status !== 200) throw new Error(`link ${type}: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body
}

async function paymentsRun(h: SyncHarness, key: string) {
  const r = await h.api(
    'POST',
    `/v1/companies/${h.companyId}/sync-schedule/payments_for_synced_invoices/run`,
    {},
    { 'idempotency-key': key },
  )
  if (r.status !== 202) throw new Error(`run: ${r.status} ${JSON.stringify(r.body)}`)
  const run = await h.waitRun(r.body.id)
  if (run.status !== 'succeeded') throw new Error(`run ${run.status}: ${JSON.stringify(run)}`)
  return run
}

t.test('an approved invoice goes to the ERP; its payments are issued on the commitment once', async (t) => {
  const h = await syncHarness(t)
  const c = h.companyId
  const approver = { authorization: `Bearer ${await h.key('approver', [c])}` }

  // A linked vendor and a linked project ↔ job.
  const vendor = h.procore.seed(c, 'vendors', { name: 'Acme Drywall' })
  const erpVendor = h.erp.seed('vendors', { name: 'Acme Drywall', code: 'ACME01' })
  const project = h.procore.seed(c, 'projects', {
    name: 'Riverside Tower',
    project_number: 'J-100',
    erp_integrated: true,
  })
  const job = h.erp.seed('jobs', { number: 'J-100', name: 'Riverside Tower', status: 'active' })
  await h.refresh(['vendor', 'project'])
  await linked(h, 'vendor', vendor.id, erpVendor.id)
  await linked(h, 'project', project.id, job.id)
  await until('vendor origin_id', async () => h.procore.get(c, 'vendors', vendor.id)?.origin_id === erpVendor.id)
  // The project link started a payments run (nothing to pay yet).
  const afterLink = await h.api(
    'GET',
    `/v1/companies/${c}/runs?syncType=payments_for_synced_invoices&trigger=project_link`,
  )
  t.equal(afterLink.body.items.length, 1, 'a project link starts the payments run')
  t.equal((await h.waitRun(afterLink.body.items[0].id)).status, 'succeeded')

  // A commitment of the vendor with two invoices: one approved, one still a draft.
  const commitment = h.procore.seed(
    c,
    'commitments',
    { vendor_id: vendor.id, number: 'SC-1', title: 'Drywall' },
    {
      projectId: project.id,
    },
  )
  const invoice = h.procore.seed(
    c,
    'requisitions',
    { commitment_id: commitment.id, invoice_number: 'INV-1', status: 'approved', amount: '0.30' },
    { projectId: project.id },
  )
  const draft = h.procore.seed(
    c,
    'requisitions',
    { commitment_id: commitment.id, invoice_number: 'INV-2', status: 'draft', amount: '5.00' },
    { projectId: project.id },
  )
  await h.refresh(['invoice'])

  await t.test('only approved invoices are eligible', async (t) => {
    const e = await h.api('GET', `/v1/companies/${c}/exports/eligibility?type=invoice&procoreId=${draft.id}`)
    t.same(
      e.body.reasons.map((r: any) => r.code),
      ['invoice_not_approved'],
    )
    const ok = await h.api('GET', `/v1/companies/${c}/exports/eligibility?type=invoice&procoreId=${invoice.id}`)
    t.same(ok.body, { eligible: true, reasons: [] })
  })

  const sent = await h.api('POST', `/v1/companies/${c}/exports`, { type: 'invoice', procoreId: invoice.id, sentBy })
  t.equal(sent.status, 201, JSON.stringify(sent.body))
  const one = await h.api('GET', `/v1/companies/${c}/exports/${sent.body.id}`, undefined, approver)
  const accepted = await h.api(
    'POST',
    `/v1/companies/${c}/exports/${sent.body.id}/accept`,
    { erpId: 'AP-0001', approver: { name: 'Alex Approver' } },
    { ...approver, 'if-match': one.headers.etag as string },
  )
  t.equal(accepted.status, 200, JSON.stringify(accepted.body))
  const done = await until('exported', async () => {
    const r = await h.api('GET', `/v1/companies/${c}/exports/${sent.body.id}`)
    return r.body.status === 'exporting' ? undefined : r
  })
  t.equal(done.body.status, 'exported', JSON.stringify(done.body))
  const apInvoice = h.erp.get('ap-invoices', done.body.erpId)!
  t.match(apInvoice, {
    invoice_number: 'INV-1',
    vendor_id: erpVendor.id,
    job_id: job.id,
    amount: '0.30',
    reference: 'AP-0001',
  })
  const link = await h.api('GET', `/v1/companies/${c}/links/${done.body.linkId}`)
  t.equal(link.body.procoreId, invoice.id, 'linked')
  await until('invoice origin_id', async () => h.procore.get(c, 'requisitions', invoice.id)?.origin_id === apInvoice.id)

  // The ERP records two payments of it, and one of an invoice nobody linked.
  const p1 = h.erp.seedPayment({ vendor_id: erpVendor.id, job_id: job.id, invoice_number: 'INV-1', amount: '0.10' })
  const p2 = h.erp.seedPayment({ vendor_id: erpVendor.id, job_id: job.id, invoice_number: 'inv-1', amount: '0.20' })
  const stray = h.erp.seedPayment({ vendor_id: erpVendor.id, job_id: job.id, invoice_number: 'INV-404' })

  const first = await paymentsRun(h, 'pay-1')
  t.match(first.result.counts, { listed: 3, sent: 2, unchanged: 0, refused: 1 })
  t.equal(first.result.items[0].sourceId, stray.id)
  t.match(first.result.items[0].reason, /INV-404/)
  t.equal(first.result.apiCalls.procore, 1, 'one Procore call for both payments')
  t.equal(first.syncType, 'payments_for_synced_invoices')
  const issued = () => h.procore.list(c, 'invoice_payments')
  t.equal(issued().length, 2)
  t.same(
    issued()
      .map((p) => p.origin_id)
      .sort(),
    [p1.id, p2.id].sort(),
    'keyed by the ERP payment id',
  )
  t.ok(
    issued().every((p) => p.commitment_id === commitment.id && p.requisition_id === invoice.id),
    'on the commitment of the invoice',
  )
  const total = issued().reduce((sum, p) => sum + cents(String(p.amount)), 0n)
  t.equal(total, cents('0.30'), '0.10 + 0.20 is exactly the invoice amount 0.30')
  t.same(
    issued()
      .map((p) => p.amount)
      .sort(),
    ['0.10', '0.20'],
    'amounts are decimal strings',
  )

  const again = await paymentsRun(h, 'pay-2')
  t.match(again.result.counts, { sent: 0, unchanged: 2, refused: 1 })
  t.equal(again.result.apiCalls.procore, 0, 'nothing new: no Procore call')
  t.equal(issued().length, 2, 'nothing issued twice')

  h.erp.changePayment(p2.id, { amount: '0.25', check_number: '20001' })
  h.erp.changePayment(p1.id, { status: 'voided' })
  const third = await paymentsRun(h, 'pay-3')
  t.match(third.result.counts, { sent: 2, unchanged: 0 })
  t.equal(issued().length, 2, 'the changed payments update their twins')
  const byOrigin = new Map(issued().map((p) => [p.origin_id, p]))
  t.match(byOrigin.get(p2.id), { amount: '0.25', check_number: '20001', status: 'paid' })
  t.match(byOrigin.get(p1.id), { amount: '0.10', status: 'voided' })

  const schedule = await h.api('GET', `/v1/companies/${c}/sync-schedule`)
  const entry = schedule.body.entries.find((e: any) => e.syncType === 'payments_for_synced_invoices')
  t.equal(entry.available, true, 'the schedule runs it')
})
