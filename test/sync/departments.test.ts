// Seed 000 (Foundation's Procore integration, Departments) end to end over HTTP, against the
// Procore and ERP stand-ins: link what exists on both sides, create what exists on one side
// only, resolve a rename field by field, and let an ERP-owned field propagate by itself.
import t from 'tap'
import { syncHarness, until } from './fixtures/harness.js'

t.test('departments: link, create both ways, resolve a discrepancy, propagate an owned field', async (t) => {
  const h = await syncHarness(t)
  const c = h.companyId
  const accounting = h.procore.seed(c, 'departments', { name: 'Accounting' })
  const estimating = h.procore.seed(c, 'departments', { name: 'Estimating' })
  const erpAccounting = h.erp.seed('departments', { code: '10', name: 'Accounting' })
  const erpSafety = h.erp.seed('departments', { code: '30', name: 'Safety' })
  await h.refresh(['department'])

  const list = await h.api('GET', `/v1/companies/${c}/records/department`)
  t.same(list.body.counts, { linked: 0, discrepancy: 0, only_in_procore: 2, only_in_erp: 2, ignored: 0, failed: 0 })

  await t.test('(a) both exist → suggested → linked → no discrepancy', async (t) => {
    const s = await h.api('GET', `/v1/companies/${c}/records/department/procore/${accounting.id}/suggestions`)
    t.equal(s.status, 200)
    t.match(s.body.items[0], { id: erpAccounting.id, strong: true, reasons: ['same name'] })
    const link = await h.api(
      'POST',
      `/v1/companies/${c}/links`,
      { type: 'department', procoreId: accounting.id, erpId: erpAccounting.id },
      { 'idempotency-key': 'link-accounting' },
    )
    t.equal(link.status, 201, JSON.stringify(link.body))
    t.match(link.body, { active: true, discrepancyId: null })
    t.match(await h.settled(link.body.id), { origin: 'set', discrepancyId: null }, "the link's job writes the origin")
    t.equal(h.procore.get(c, 'departments', accounting.id)?.origin_id, erpAccounting.id, 'origin_id carries the ERP id')
    const rec = await h.api('GET', `/v1/companies/${c}/records/department/procore/${accounting.id}`)
    t.equal(rec.body.status, 'linked')
  })

  await t.test('(b) ERP only → created in Procore → linked, origin_id set', async (t) => {
    const start = await h.api(
      'POST',
      `/v1/companies/${c}/records/department/create-in-procore`,
      { erpIds: [erpSafety.id] },
      { 'idempotency-key': 'create-safety' },
    )
    t.equal(start.status, 202, JSON.stringify(start.body))
    t.equal(start.headers.location, `/v1/companies/${c}/runs/${start.body.id}`)
    const run = await h.waitRun(start.body.id)
    t.match(run, { status: 'succeeded', result: { counts: { created: 1, refused: 0, failed: 0 } } })
    const item = run.result.items[0]
    t.match(item, { sourceId: erpSafety.id, status: 'created' })
    const created = h.procore.get(c, 'departments', item.targetId)
    t.match(created, { name: 'Safety', origin_id: erpSafety.id })
    const rec = await h.api('GET', `/v1/companies/${c}/records/department/erp/${erpSafety.id}`)
    t.match(rec.body, { status: 'linked', linkId: item.linkId, procore: { id: item.targetId } })
  })

  await t.test('(c) Procore only → created in the ERP → linked', async (t) => {
    const start = await h.api(
      'POST',
      `/v1/companies/${c}/records/department/create-in-erp`,
      { procoreIds: [estimating.id] },
      { 'idempotency-key': 'create-estimating' },
    )
    t.equal(start.status, 202)
    const run = await h.waitRun(start.body.id)
    const item = run.result.items[0]
    t.match(item, { sourceId: estimating.id, status: 'created' })
    t.match(h.erp.get('departments', item.targetId), { name: 'Estimating', code: 'ESTIMATING' })
    t.equal(
      h.procore.get(c, 'departments', estimating.id)?.origin_id,
      item.targetId,
      "the new ERP id is in Procore's origin_id",
    )
    const keys = h.erp.calls
      .filter((x) => x.method === 'POST' && x.path === '/v1/departments')
      .map((x) => x.idempotencyKey)
    t.same(
      keys,
      [`erp-sync:create:${c}:department:${estimating.id}:1`],
      'one create, keyed by company, type and Procore id',
    )
    const created = (await h.api('GET', `/v1/companies/${c}/audit?recordId=${estimating.id}&action=create`)).body
      .items[0]
    const post = h.erp.calls.find((x) => x.method === 'POST' && x.path === '/v1/departments')
    t.match(
      created,
      {
        actor: start.body.requestedBy,
        erpId: item.targetId,
        requestIds: { api: String(start.headers['x-request-id']), erp: post?.requestId },
      },
      'the audit names who asked, the API request and the ERP request that created it',
    )
    const counts = (await h.api('GET', `/v1/companies/${c}/records/department`)).body.counts
    t.same(counts, { linked: 3, discrepancy: 0, only_in_procore: 0, only_in_erp: 0, ignored: 0, failed: 0 })
  })

  await t.test('(d) renamed in Procore → discrepancy → apply procore → ERP updated → closed → audited', async (t) => {
    h.procore.change(c, 'departments', accounting.id, { name: 'Accounting & Finance' })
    const open = await until('discrepancy', async () => {
      const l = await h.api('GET', `/v1/companies/${c}/discrepancies?type=department`)
      return l.body.items[0]
    })
    t.match(open.fields, [{ field: 'name', procore: 'Accounting & Finance', erp: 'Accounting' }])
    const rec = await h.api('GET', `/v1/companies/${c}/records/department?status=discrepancy`)
    t.equal(rec.body.items.length, 1)

    const got = await h.api('GET', `/v1/companies/${c}/discrepancies/${open.id}`)
    const etag = String(got.headers.etag)
    const applied = await h.api(
      'POST',
      `/v1/companies/${c}/discrepancies/${open.id}/apply`,
      { fields: { name: 'procore' } },
      { 'if-match': etag, 'idempotency-key': 'apply-1' },
    )
    t.equal(applied.status, 200, JSON.stringify(applied.body))
    t.match(applied.body, { status: 'resolved', applied: { erp: ['name'], procore: [] }, notAgreeing: [] })
    t.equal(h.erp.get('departments', erpAccounting.id)?.name, 'Accounting & Finance', 'the ERP has the chosen value')

    // Our own write comes back as an ERP notification: it must not reopen anything.
    await h.quiet()
    const events = await h.api('GET', `/v1/companies/${c}/webhook-events?source=erp`)
    t.ok(
      events.body.items.length > 0 &&
        events.body.items.every((e: any) => e.status === 'processed' || e.status === 'skipped'),
      'the echo arrived and was handled',
    )
    const after = await h.api('GET', `/v1/companies/${c}/discrepancies?type=department`)
    t.same(after.body.items, [], 'no new discrepancy from our own write')

    const audit = await h.api('GET', `/v1/companies/${c}/audit?recordId=${accounting.id}&action=apply`)
    t.match(audit.body.items[0], {
      action: 'apply',
      type: 'department',
      procoreId: accounting.id,
      erpId: erpAccounting.id,
      before: { procore: { name: 'Accounting & Finance' }, erp: { name: 'Accounting' } },
      after: { procore: { name: 'Accounting & Finance' }, erp: { name: 'Accounting & Finance' } },
      actor: /^api-key:/,
      requestIds: {
        api: /.+/,
        erp: h.erp.calls.filter((x) => x.method === 'PATCH' && x.path === `/v1/departments/${erpAccounting.id}`).at(-1)
          ?.requestId,
      },
    })
  })

  await t.test('(e) a field owned by the ERP changes → propagated to Procore, no discrepancy', async (t) => {
    const s = await h.api('GET', `/v1/companies/${c}/sync-settings`)
    const put = await h.api(
      'PUT',
      `/v1/companies/${c}/sync-settings`,
      { types: { department: { direction: 'both', fieldOwners: { name: 'erp' } } } },
      { 'if-match': String(s.headers.etag) },
    )
    t.equal(put.status, 200, JSON.stringify(put.body))
    h.erp.change('departments', erpAccounting.id, { name: 'Finance' })
    await until('propagated', async () => h.procore.get(c, 'departments', accounting.id)?.name === 'Finance')
    await h.quiet()
    const open = await h.api('GET', `/v1/companies/${c}/discrepancies?type=department`)
    t.same(open.body.items, [], 'no discrepancy')
    const entry = (await h.api('GET', `/v1/companies/${c}/audit?recordId=${accounting.id}&action=propagate`)).body
      .items[0]
    const patch = h.procore.calls
      .filter((x) => x.method === 'PATCH' && x.path.endsWith(`/departments/${accounting.id}`))
      .at(-1)
    t.ok(patch, 'Procore received the write')
    t.match(entry, {
      actor: 'system:propagate',
      before: { procore: { name: 'Accounting & Finance' } },
      after: { procore: { name: 'Finance' } },
      requestIds: { procore: patch?.requestId },
    })
  })
})
