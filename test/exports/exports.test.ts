// Send to ERP with accounting acceptance (seed 002), over HTTP against both stand-ins: eligibility,
// send, accept → created once → linked → Procore origin fields → exported; reject with a signed
// notification; retrieve; re-send; refusals; a crash between create and link; racing decisions.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import pg from 'pg'
import t, { type Test } from 'tap'
import { verify } from '../../src/crypto/standard-webhooks.js'
import { digestTask } from '../../src/exports/requests.js'
import { createCompany } from '../helpers/app.js'
import { syncHarness, until, type SyncHarness } from '../sync/fixtures/harness.js'

async function roles(h: SyncHarness) {
  const operator = { authorization: `Bearer ${await h.key('operator', [h.companyId])}` }
  const approver = { authorization: `Bearer ${await h.key('approver', [h.companyId])}` }
  return { operator, approver }
}

const sentBy = { name: 'Pat Sender', email: 'pat@riverside.example' }

async function settled(h: SyncHarness, id: string) {
  return until('settled', async () => {
    const r = await h.api('GET', `/v1/companies/${h.companyId}/exports/${id}`)
    return r.body.status === 'exporting' ? undefined : r
  })
}

async function subscriber(t: Test) {
  const received: Array<{ headers: Record<string, string | string[] | undefined>; body: Buffer }> = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks) })
      res.statusCode = 204
      res.end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received }
}

t.test('seed 002 end to end: send → pending → accept → created once → linked → origin set → exported', async (t) => {
  const h = await syncHarness(t)
  const c = h.companyId
  const { operator, approver } = await roles(h)
  const vendor = h.procore.seed(c, 'vendors', { name: 'Acme Drywall', email_address: 'ap@acme.example' })
  await h.refresh(['vendor'])

  const elig = await h.api('GET', `/v1/companies/${c}/exports/eligibility?type=vendor&procoreId=${vendor.id}`)
  t.same(elig.body, { eligible: true, reasons: [] })

  const sent = await h.api(
    'POST',
    `/v1/companies/${c}/exports`,
    { type: 'vendor', procoreId: String(vendor.id), sentBy },
    operator,
  )
  t.equal(sent.status, 201, JSON.stringify(sent.body))
  t.equal(sent.body.status, 'pending_acceptance')
  t.equal(sent.body.sentFields.name, 'Acme Drywall', 'a frozen copy of the record as sent')

  const queue = await h.api(
    'GET',
    `/v1/companies/${c}/exports?status=pending_acceptance&type=vendor&q=acme`,
    undefined,
    approver,
  )
  t.same(
    queue.body.items.map((i: any) => i.id),
    [sent.body.id],
  )

  const none = await h.api('GET', `/v1/companies/${c}/exports?q=name`, undefined, approver)
  t.equal(none.body.items.length, 0, 'q searches values, not field names')
  const badStatus = await h.api('GET', `/v1/companies/${c}/exports?status=waiting`, undefined, approver)
  t.equal(badStatus.status, 400)

  // The record is held: a manual create in the ERP does not touch it.
  const create = await h.api(
    'POST',
    `/v1/companies/${c}/records/vendor/create-in-erp`,
    { procoreIds: [String(vendor.id)] },
    { 'idempotency-key': 'held' },
  )
  const run = await h.waitRun(create.body.id)
  t.equal(run.result.items[0].status, 'refused', 'held while the request is open')
  t.equal(h.erp.stats().creates, 0)

  // The operator cannot accept.
  const forbidden = await h.api(
    'POST',
    `/v1/companies/${c}/exports/${sent.body.id}/accept`,
    { erpId: 'ACME' },
    { ...operator, 'if-match': sent.headers.etag as string },
  )
  t.equal(forbidden.status, 403)

  const one = await h.api('GET', `/v1/companies/${c}/exports/${sent.body.id}`, undefined, approver)
  const accepted = await h.api(
    'POST',
    `/v1/companies/${c}/exports/${sent.body.id}/accept`,
    { erpId: 'ACME', companyType: 'sub', approver: { name: 'Alex Approver' } },
    { ...approver, 'if-match': one.headers.etag as string },
  )
  t.equal(accepted.status, 200, JSON.stringify(accepted.body))
  t.equal(accepted.body.status, 'exporting')
  const done = await settled(h, sent.body.id)
  t.equal(done.body.status, 'exported', JSON.stringify(done.body))
  t.equal(h.erp.stats().creates, 1, 'created once in the ERP')
  const erpVendor = h.erp.get('vendors', done.body.erpId)!
  t.equal(erpVendor.code, 'ACME')
  t.equal(erpVendor.name, 'Acme Drywall')
  const link = await h.api('GET', `/v1/companies/${c}/links/${done.body.linkId}`)
  t.equal(link.body.procoreId, String(vendor.id))
  t.equal(link.body.erpId, done.body.erpId)
  const procoreVendor = h.procore.get(c, 'vendors', String(vendor.id))!
  t.equal(String(procoreVendor.origin_id), done.body.erpId, 'Procore origin_id is the ERP id')
  t.equal(procoreVendor.origin_code, 'ACME', 'Procore origin_code is the ERP vendor id')
  t.same(
    done.body.history.map((x: any) => x.to),
    ['pending_acceptance', 'exporting', 'exported'],
  )
  const audit = await h.api('GET', `/v1/companies/${c}/audit?action=export`)
  t.equal(audit.body.items.length, 3, 'one audit entry per transition')
  const erpCreates = h.erp.calls.filter((x) => x.method === 'POST' && x.path === '/v1/vendors')
  t.equal(erpCreates.length, 1, 'one ERP call per accepted request')
  t.match(erpCreates[0]!.idempotencyKey, new RegExp(`^erp-sync:export:${sent.body.id}:1$`))

  // A synced record is not exported again.
  const again = await h.api('GET', `/v1/companies/${c}/exports/eligibility?type=vendor&procoreId=${vendor.id}`)
  t.same(
    again.body.reasons.map((r: any) => r.code),
    ['already_linked'],
  )
  // Another company's key sees nothing of it.
  const otherCompany = String(Number(c) + 500_000)
  await createCompany(h.app, h.adminKey, otherCompany)
  const other = { authorization: `Bearer ${await h.key('admin', [otherCompany])}` }
  t.equal((await h.api('GET', `/v1/companies/${c}/exports`, undefined, other)).status, 404)
  t.equal((await h.api('GET', `/v1/companies/${c}/exports/${sent.body.id}`, undefined, other)).status, 404)
})

t.test('eligibility names every reason at once, and send answers 422 with all of them', async (t) => {
  const h = await syncHarness(t)
  const c = h.companyId
  const { operator } = await roles(h)
  const long = h.procore.seed(c, 'vendors', { name: 'Riverside Mechanical Contractors Incorporated', is_active: false })
  const fine = h.procore.seed(c, 'vendors', { name: 'Beta Formwork' })
  await h.refresh(['vendor'])
  const elig = await h.api('GET', `/v1/companies/${c}/exports/eligibility?type=vendor&procoreId=${long.id}`)
  t.equal(elig.body.eligible, false)
  t.same(elig.body.reasons.map((r: any) => r.code).sort(), ['name_too_long', 'record_inactive'])
  t.ok(
    elig.body.reasons.every((r: any) => r.fix.length > 0),
    'each with a fix',
  )
  const refused = await h.api(
    'POST',
    `/v1/companies/${c}/exports`,
    { type: 'vendor', procoreId: String(long.id), sentBy },
    operator,
  )
  t.equal(refused.status, 422)
  t.equal(refused.body.errors.length, 2)

  const missing = await h.api('GET', `/v1/companies/${c}/exports/eligibility?type=vendor&procoreId=999999`)
  t.same(
    missing.body.reasons.map((r: any) => r.code),
    ['record_not_found'],
  )
  const first = await h.api(
    'POST',
    `/v1/companies/${c}/exports`,
    { type: 'vendor', procoreId: String(fine.id), sentBy },
    operator,
  )
  t.equal(first.status, 201)
  const twin = h.erp.seed('vendors', { name: 'Beta Formwork Ltd', code: 'BETA' })
  await h.refresh(['vendor'])
  const link = await h.api(
    'POST',
    `/v1/companies/${c}/links`,
    { type: 'vendor', procoreId: String(fine.id), erpId: twin.id },
    { 'idempotency-key': 'held-link' },
  )
  t.equal(link.status, 409, 'a held record is not linked by hand')
  t.equal(link.body.code, 'held_by_export')
  const bulk = await h.api(
    'POST',
    `/v1/companies/${c}/links/bulk`,
    { type: 'vendor', minScore: 0.5 },
    { 'idempotency-key': 'held-bulk' },
  )
  const bulkRun = await h.waitRun(bulk.body.id)
  t.equal(bulkRun.result.counts.linked, 0, 'nor by bulk link')
  const pending = await h.api('GET', `/v1/companies/${c}/exports/eligibility?type=vendor&procoreId=${fine.id}`)
  t.same(
    pending.body.reasons.map((r: any) => r.code),
    ['already_pending'],
  )
  const dept = await h.api('GET', `/v1/companies/${c}/exports/eligibility?type=department&procoreId=1`)
  t.equal(dept.status, 422, 'only exportable types')
})

t.test('reject with a reason → signed export.rejected → re-send → accept; retrieve → re-send', async (t) => {
  const h = await syncHarness(t)
  const c = h.companyId
  const { operator, approver } = await roles(h)
  const hook = await subscriber(t)
  const sub = await h.api('POST', `/v1/companies/${c}/subscriptions`, { url: hook.url, events: ['export.rejected'] })
  t.equal(sub.status, 201)
  t.match(sub.body.secret, /^whsec_/)
  t.equal(
    (await h.api('POST', `/v1/companies/${c}/subscriptions`, { url: hook.url, events: ['export.sent'] }, operator))
      .status,
    403,
  )

  const vendor = h.procore.seed(c, 'vendors', { name: 'Gamma Scaffold' })
  await h.refresh(['vendor'])
  const sent = await h.api(
    'POST',
    `/v1/companies/${c}/exports`,
    { type: 'vendor', procoreId: String(vendor.id), sentBy },
    operator,
  )
  const rejected = await h.api(
    'POST',
    `/v1/companies/${c}/exports/${sent.body.id}/reject`,
    { reason: 'Add the tax id first', approver: { name: 'Alex Approver' } },
    { ...approver, 'if-match': sent.headers.etag as string },
  )
  t.equal(rejected.status, 200, JSON.stringify(rejected.body))
  t.equal(rejected.body.status, 'rejected')
  const msg = await until('delivered', async () => hook.received[0])
  const check = verify({
    id: msg.headers['webhook-id'] as string,
    timestamp: msg.headers['webhook-timestamp'] as string,
    signature: msg.headers['webhook-signature'] as string,
    body: msg.body,
    secrets: [sub.body.secret],
    now: Date.now(),
  })
  t.ok(check.ok, 'signed per Standard Webhooks')
  const payload = JSON.parse(msg.body.toString())
  t.equal(payload.type, 'export.rejected')
  t.equal(payload.data.reason, 'Add the tax id first')
  t.equal(payload.data.sentBy.email, 'pat@riverside.example', 'the sender can be told')
  const log = await until('logged', async () => {
    const r = await h.api('GET', `/v1/companies/${c}/subscriptions/${sub.body.id}/deliveries`)
    return r.body.items[0]?.status === 'delivered' ? r : undefined
  })
  t.equal(log.body.items.length, 1)

  const resent = await h.api(
    'POST',
    `/v1/companies/${c}/exports`,
    { type: 'vendor', procoreId: String(vendor.id), sentBy },
    operator,
  )
  t.equal(resent.status, 201)
  t.equal(resent.body.previousId, sent.body.id, 'linked to the earlier request')
  const retrieved = await h.api('POST', `/v1/companies/${c}/exports/${resent.body.id}/retrieve`, {}, operator)
  t.equal(retrieved.body.status, 'retrieved')
  const third = await h.api(
    'POST',
    `/v1/companies/${c}/exports`,
    { type: 'vendor', procoreId: String(vendor.id), sentBy },
    operator,
  )
  t.equal(third.body.previousId, resent.body.id)
  const accepted = await h.api(
    'POST',
    `/v1/companies/${c}/exports/${third.body.id}/accept`,
    { erpId: 'GAMMA' },
    { ...approver, 'if-match': third.headers.etag as string },
  )
  t.equal(accepted.status, 200)
  t.equal((await settled(h, third.body.id)).body.status, 'exported')
  t.equal(h.erp.stats().records.vendors, 1)

  await h.api('POST', `/v1/companies/${c}/subscriptions/${sub.body.id}/test`, {})
  await until('test delivered', async () => hook.received.length >= 2 || undefined)
  t.equal(JSON.parse(hook.received[1]!.body.toString()).type, 'webhook.test')
})

t.test(
  'an ERP id already used → 422 before any ERP call; ERP refusal → failed → overrides → exported once',
  async (t) => {
    const h = await syncHarness(t)
    const c = h.companyId
    const { operator, approver } = await roles(h)
    h.erp.seed('vendors', { name: 'Existing Vendor', code: 'TAKEN' })
    const vendor = h.procore.seed(c, 'vendors', { name: 'Delta Crane', email_address: 'not-an-email' })
    await h.refresh(['vendor'])
    const sent = await h.api(
      'POST',
      `/v1/companies/${c}/exports`,
      { type: 'vendor', procoreId: String(vendor.id), sentBy },
      operator,
    )
    const callsBefore = h.erp.calls.length
    const used = await h.api(
      'POST',
      `/v1/companies/${c}/exports/${sent.body.id}/accept`,
      { erpId: 'taken' },
      { ...approver, 'if-match': sent.headers.etag as string },
    )
    t.equal(used.status, 422, JSON.stringify(used.body))
    t.equal(used.body.code, 'erp_id_in_use')
    t.equal(h.erp.calls.length, callsBefore, 'no ERP call')

    const accepted = await h.api(
      'POST',
      `/v1/companies/${c}/exports/${sent.body.id}/accept`,
      { erpId: 'DELTA' },
      { ...approver, 'if-match': sent.headers.etag as string },
    )
    t.equal(accepted.status, 200, JSON.stringify(accepted.body))
    const failed = await settled(h, sent.body.id)
    t.equal(failed.body.status, 'failed_to_export', JSON.stringify(failed.body))
    t.ok(
      failed.body.messages.some((m: any) => m.field === 'email'),
      JSON.stringify(failed.body.messages),
    )
    const fixed = await h.api(
      'POST',
      `/v1/companies/${c}/exports/${sent.body.id}/accept`,
      { erpId: 'DELTA', overrides: { email: 'ap@delta.example' } },
      { ...approver, 'if-match': failed.headers.etag as string },
    )
    t.equal(fixed.status, 200, JSON.stringify(fixed.body))
    const done = await settled(h, sent.body.id)
    t.equal(done.body.status, 'exported', JSON.stringify(done.body))
    t.equal(h.erp.stats().records.vendors, 2, 'one ERP record made (besides the one seeded)')
    t.equal(h.erp.get('vendors', done.body.erpId)!.email, 'ap@delta.example')
  },
)

t.test('a crash between the ERP create and the link: the rerun creates nothing twice', async (t) => {
  const h = await syncHarness(t)
  const c = h.companyId
  const { operator, approver } = await roles(h)
  const vendor = h.procore.seed(c, 'vendors', { name: 'Epsilon Survey' })
  await h.refresh(['vendor'])
  const sent = await h.api(
    'POST',
    `/v1/companies/${c}/exports`,
    { type: 'vendor', procoreId: String(vendor.id), sentBy },
    operator,
  )

  const blocker = new pg.Client(h.databaseUrl)
  await blocker.connect()
  t.teardown(() => blocker.end())
  await blocker.query('begin')
  await blocker.query('lock table record_links in share mode')
  await h.api(
    'POST',
    `/v1/companies/${c}/exports/${sent.body.id}/accept`,
    { erpId: 'EPS' },
    { ...approver, 'if-match': sent.headers.etag as string },
  )
  await until('ERP created', async () => h.erp.stats().creates === 1 || undefined)
  const waiting = await until('link blocked', async () => {
    const { rows } = await blocker.query<{ pid: number }>(
      'select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() ' +
        "and wait_event_type = 'Lock'",
    )
    return rows[0]?.pid
  })
  await blocker.query('select pg_terminate_backend($1)', [waiting])
  await blocker.query('rollback')
  const done = await settled(h, sent.body.id)
  t.equal(done.body.status, 'exported', JSON.stringify(done.body))
  t.equal(h.erp.stats().records.vendors, 1, 'one ERP record')
  t.equal(h.erp.stats().distinctCreateKeys, 1, 'the rerun replayed the same key')
})

t.test('racing accept, reject and retrieve: exactly one wins, the rest 409/412', async (t) => {
  // 200 requests at once queue for the 10 connections: the back-pressure guard would refuse some of them with 503
  // before they do anything (its own tests cover that); here every one must reach the race.
  const h = await syncHarness(t, { env: { PRESSURE_MAX_POOL_WAITING: '0' } })
  const c = h.companyId
  const { operator, approver } = await roles(h)
  const vendor = h.procore.seed(c, 'vendors', { name: 'Zeta Drywall' })
  await h.refresh(['vendor'])
  const sent = await h.api(
    'POST',
    `/v1/companies/${c}/exports`,
    { type: 'vendor', procoreId: String(vendor.id), sentBy },
    operator,
  )
  const etag = sent.headers.etag as string
  const url = `/v1/companies/${c}/exports/${sent.body.id}`
  const calls = Array.from({ length: 200 }, (_, i) =>
    i % 3 === 0
      ? h.api('POST', `${url}/accept`, { erpId: 'ZETA' }, { ...approver, 'if-match': etag })
      : i % 3 === 1
        ? h.api('POST', `${url}/reject`, { reason: 'no' }, { ...approver, 'if-match': etag })
        : h.api('POST', `${url}/retrieve`, {}, operator),
  )
  const answers = await Promise.all(calls)
  const statuses = answers.map((a) => a.status)
  t.equal(statuses.filter((s) => s === 200).length, 1, 'exactly one transition wins')
  t.ok(
    statuses.every((s) => s === 200 || s === 409 || s === 412),
    JSON.stringify([...new Set(answers.map((a) => `${a.status} ${a.body?.code ?? ''}`))]),
  )
  const final = await settled(h, sent.body.id)
  t.equal(final.body.history.length, final.body.status === 'exported' ? 3 : 2)
  t.ok(h.erp.stats().creates <= 1)
})

t.test('a project exported through the same mechanism', async (t) => {
  const h = await syncHarness(t)
  const c = h.companyId
  const { operator, approver } = await roles(h)
  const project = h.procore.seed(c, 'projects', { name: 'Riverside Tower' })
  await h.refresh(['project'])
  const sent = await h.api(
    'POST',
    `/v1/companies/${c}/exports`,
    { type: 'project', procoreId: String(project.id), sentBy },
    operator,
  )
  t.equal(sent.status, 201, JSON.stringify(sent.body))
  const accepted = await h.api(
    'POST',
    `/v1/companies/${c}/exports/${sent.body.id}/accept`,
    { erpId: 'J-2040' },
    { ...approver, 'if-match': sent.headers.etag as string },
  )
  t.equal(accepted.status, 200, JSON.stringify(accepted.body))
  const done = await settled(h, sent.body.id)
  t.equal(done.body.status, 'exported', JSON.stringify(done.body))
  const job = h.erp.get('jobs', done.body.erpId)!
  t.equal(job.number, 'J-2040')
  const p = h.procore.get(c, 'projects', String(project.id))!
  t.equal(String(p.origin_id), done.body.erpId)
  t.equal(p.origin_code, 'J-2040')
})

t.test('withdrawn when made inactive or deleted in Procore; status on the record; direct export', async (t) => {
  const h = await syncHarness(t)
  const c = h.companyId
  const { operator } = await roles(h)
  const a = h.procore.seed(c, 'vendors', { name: 'Theta Paving' })
  const b = h.procore.seed(c, 'vendors', { name: 'Iota Roofing' })
  const d = h.procore.seed(c, 'vendors', { name: 'Kappa Glass' })
  await h.refresh(['vendor'])
  const sa = await h.api(
    'POST',
    `/v1/companies/${c}/exports`,
    { type: 'vendor', procoreId: String(a.id), sentBy },
    operator,
  )
  const sb = await h.api(
    'POST',
    `/v1/companies/${c}/exports`,
    { type: 'vendor', procoreId: String(b.id), sentBy },
    operator,
  )

  const view = await h.api('GET', `/v1/companies/${c}/records/vendor/procore/${a.id}`)
  t.match(view.body.export, { id: sa.body.id, status: 'pending_acceptance', color: 'blue' }, 'the sender sees blue')
  const list = await h.api('GET', `/v1/companies/${c}/records/vendor?q=theta`)
  t.equal(list.body.items[0].export.status, 'pending_acceptance')

  h.procore.change(c, 'vendors', String(a.id), { is_active: false })
  h.procore.remove(c, 'vendors', String(b.id))
  await h.quiet()
  await h.refresh(['vendor'])
  await h.quiet()
  const wa = await h.api('GET', `/v1/companies/${c}/exports/${sa.body.id}`)
  t.equal(wa.body.status, 'withdrawn')
  t.match(wa.body.reason, /inactive/)
  const wb = await h.api('GET', `/v1/companies/${c}/exports/${sb.body.id}`)
  t.equal(wb.body.status, 'withdrawn')
  t.match(wb.body.reason, /deleted/)

  // requireApproval false: exported at once, with the same trail.
  const settings = await h.api('PUT', `/v1/companies/${c}/exports/settings`, { vendor: { requireApproval: false } })
  t.same(settings.body.vendor, { requireApproval: false })
  const direct = await h.api(
    'POST',
    `/v1/companies/${c}/exports`,
    { type: 'vendor', procoreId: String(d.id), sentBy, erpId: 'KAPPA' },
    operator,
  )
  t.equal(direct.status, 201, JSON.stringify(direct.body))
  const done = await settled(h, direct.body.id)
  t.equal(done.body.status, 'exported')
  t.same(
    done.body.history.map((x: any) => x.to),
    ['pending_acceptance', 'exporting', 'exported'],
  )
  const green = await h.api('GET', `/v1/companies/${c}/records/vendor/procore/${d.id}`)
  t.match(green.body.export, { status: 'exported', color: 'green' })
})

t.test('the daily digest tells subscribers how many requests wait and since when', async (t) => {
  const h = await syncHarness(t)
  const c = h.companyId
  const { operator } = await roles(h)
  const hook = await subscriber(t)
  await h.api('POST', `/v1/companies/${c}/subscriptions`, { url: hook.url, events: ['exports.digest'] })
  const v = h.procore.seed(c, 'vendors', { name: 'Lambda Steel' })
  await h.refresh(['vendor'])
  await h.api('POST', `/v1/companies/${c}/exports`, { type: 'vendor', procoreId: String(v.id), sentBy }, operator)
  await digestTask.run(h.app.ctx, {}, { id: 'digest', attempt: 1, maxAttempts: 1, lastAttempt: true })
  const msg = await until('digest delivered', async () => hook.received[0])
  const payload = JSON.parse(msg.body.toString())
  t.equal(payload.type, 'exports.digest')
  t.equal(payload.data.companyId, c)
  t.equal(payload.data.pending, 1)
})

t.test('a run that fails for good is told to subscribers of run.failed, signed, once', async (t) => {
  const h = await syncHarness(t)
  const c = h.companyId
  const hook = await subscriber(t)
  const sub = await h.api('POST', `/v1/companies/${c}/subscriptions`, { url: hook.url, events: ['run.failed'] })
  t.equal(sub.status, 201, JSON.stringify(sub.body))

  h.erp.faults.push({ match: { method: 'GET', pathPrefix: '/v1/vendors' }, status: 401, times: Infinity })
  const started = await h.api('POST', `/v1/companies/${c}/erp/refresh`, { type: 'vendor' })
  t.equal(started.status, 202)
  const run = await h.waitRun(started.body.id)
  t.equal(run.status, 'failed')

  const msg = await until('delivered', async () => hook.received[0])
  const check = verify({
    id: msg.headers['webhook-id'] as string,
    timestamp: msg.headers['webhook-timestamp'] as string,
    signature: msg.headers['webhook-signature'] as string,
    body: msg.body,
    secrets: [sub.body.secret],
    now: Date.now(),
  })
  t.ok(check.ok, 'signed per Standard Webhooks')
  const payload = JSON.parse(msg.body.toString())
  t.equal(payload.type, 'run.failed')
  t.match(payload.data, { companyId: c, runId: started.body.id, kind: 'erp_refresh' })
  t.match(payload.data.error, /refused this service's credentials/)
  await h.quiet()
  t.equal(hook.received.length, 1, 'one run, one message')
})
