import { sql } from 'kysely'
import t from 'tap'
import { getSnapshot } from '../../src/sync/snapshots.js'
import { signStandardWebhook } from '../standins/erp/index.js'
import { connected, eventually, newCompanyId } from './fixtures/harness.js'

type Delivery = { id?: string; timestamp?: string | number; signature?: string; body?: string; contentType?: string }

const event = (over: Record<string, unknown> = {}) =>
  JSON.stringify({
    type: 'record.updated',
    resource: 'vendors',
    id: 'V000001',
    occurred_at: '2024-05-01T12:00:00.000000Z',
    ...over,
  })
const now = () => Math.floor(Date.now() / 1000)
let messages = 0
const messageId = () => `msg_test_${++messages}`

/** A notification signed like the stand-in signs them (an independent sender implementation). */
function signed(secret: string, over: Delivery = {}): Required<Delivery> {
  const id = over.id ?? messageId()
  const timestamp = over.timestamp ?? now()
  const body = over.body ?? event()
  return {
    id,
    timestamp,
    body,
    signature: over.signature ?? signStandardWebhook(secret, id, timestamp, body),
    contentType: over.contentType ?? 'application/json',
  }
}

t.test('the signature matrix: every rejection is 401 problem+json and stores nothing', async (t) => {
  const c = await connected(t, { env: { WORKER_ENABLED: 'false' } })
  const url = `/webhooks/erp/${c.companyId}`
  const rows = async () =>
    Number((await sql<{ n: string }>`select count(*) as n from inbox_events`.execute(c.app.db)).rows[0]!.n)
  const send = (d: Partial<Required<Delivery>>, path = url) =>
    c.app.inject({
      method: 'POST',
      url: path,
      payload: d.body ?? '',
      headers: {
        'content-type': d.contentType ?? 'application/json',
        ...(d.id !== undefined && { 'webhook-id': d.id }),
        ...(d.timestamp !== undefined && { 'webhook-timestamp': String(d.timestamp) }),
        ...(d.signature !== undefined && { 'webhook-signature': d.signature }),
      },
    })
  const otherSecret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
  const good = signed(c.secret)
  const { id: _id, ...noId } = good
  const { timestamp: _ts, ...noTimestamp } = good
  const { signature: _sig, ...noSignature } = good
  const cases: Array<[string, Partial<Required<Delivery>>, RegExp, string?]> = [
    ['no webhook-id', noId, /webhook-id, webhook-timestamp and webhook-signature/],
    ['no webhook-timestamp', noTimestamp, /webhook-id, webhook-timestamp and webhook-signature/],
    ['no webhook-signature', noSignature, /webhook-id, webhook-timestamp and webhook-signature/],
    ['no headers at all', { body: good.body }, /webhook-id, webhook-timestamp and webhook-signature/],
    ['signed with another secret', signed(otherSecret), /No webhook-signature matches/],
    ['tampered body', { ...good, body: event({ id: 'V999999' }) }, /No webhook-signature matches/],
    ['signature of another message id', { ...good, id: messageId() }, /No webhook-signature matches/],
    ['timestamp too old', signed(c.secret, { timestamp: now() - 360 }), /more than 300 s in the past/],
    ['timestamp too new', signed(c.secret, { timestamp: now() + 360 }), /more than 300 s in the future/],
    [
      'not JSON and not signed: refused before any parse',
      { ...good, body: '{not json' },
      /No webhook-signature matches/,
    ],
    ['a company without a connection', good, /No webhook-signature matches/, `/webhooks/erp/${newCompanyId()}`],
    ['a company id beyond int8', good, /No webhook-signature matches/, '/webhooks/erp/9999999999999999999'],
  ]
  for (const [name, delivery, detail, path] of cases) {
    const res = await send(delivery, path)
    t.equal(res.statusCode, 401, name)
    t.match(res.headers['content-type'], /^application\/problem\+json/, name)
    t.match(res.json(), { code: 'invalid_signature', detail }, name)
    t.equal(await rows(), 0, `${name}: nothing stored`)
  }

  const ok = await send(good)
  t.equal(ok.statusCode, 204, ok.body)
  t.equal(await rows(), 1)
  const stored = await c.app.db.selectFrom('inbox_events').selectAll().executeTakeFirstOrThrow()
  t.match(stored, {
    company_id: c.companyId,
    source: 'erp',
    dedupe_key: good.id,
    status: 'queued',
    event_type: 'record.updated',
    record_type: 'vendor',
    resource_id: 'V000001',
    body: good.body,
  })
  t.same(Object.keys(stored.headers).sort(), ['webhook-id', 'webhook-timestamp'], 'no signature kept')

  // A retry of the same message (same webhook-id, signed afresh) is acknowledged and stored once.
  const again = await send(signed(c.secret, { id: good.id, timestamp: now() + 1, body: good.body }))
  t.equal(again.statusCode, 204)
  t.equal(await rows(), 1, 'duplicate delivery stored once')

  t.equal((await send({ ...signed(c.secret), contentType: 'text/plain' })).statusCode, 415)
  const huge = signed(c.secret, { body: event({ id: 'x'.repeat(300 * 1024) }) })
  t.equal((await send(huge)).statusCode, 413)
  t.equal(await rows(), 1)
})

t.test('authentic notifications we cannot act on are stored quarantined and still acknowledged', async (t) => {
  const c = await connected(t, { env: { WORKER_ENABLED: 'false' } })
  for (const body of [
    '{not json',
    event({ resource: 'payments' }),
    event({ type: 'record.exploded' }),
    JSON.stringify([1, 2]),
  ]) {
    const d = signed(c.secret, { body })
    const res = await c.app.inject({
      method: 'POST',
      url: `/webhooks/erp/${c.companyId}`,
      payload: d.body,
      headers: {
        'content-type': 'application/json',
        'webhook-id': d.id,
        'webhook-timestamp': String(d.timestamp),
        'webhook-signature': d.signature,
      },
    })
    t.equal(res.statusCode, 204, body)
  }
  const events = await c.app.inject({
    method: 'GET',
    url: `/v1/companies/${c.companyId}/webhook-events?status=quarantined`,
    headers: c.admin,
  })
  t.equal(events.json().items.length, 4)
  t.match(events.json().items[3], { source: 'erp', status: 'quarantined', lastError: 'the body is not JSON' })
  t.match(events.json().items[2].lastError, /resource/)
})

t.test('rotation: both secrets work during the grace period, only the new one after it', async (t) => {
  const c = await connected(t, { env: { WORKER_ENABLED: 'false' } })
  const send = (d: Required<Delivery>) =>
    c.app.inject({
      method: 'POST',
      url: `/webhooks/erp/${c.companyId}`,
      payload: d.body,
      headers: {
        'content-type': 'application/json',
        'webhook-id': d.id,
        'webhook-timestamp': String(d.timestamp),
        'webhook-signature': d.signature,
      },
    })
  const rotated = await c.app.inject({
    method: 'POST',
    url: `/v1/companies/${c.companyId}/erp/notification-secret`,
    headers: { ...c.admin, 'idempotency-key': 'rotate' },
  })
  const next: string = rotated.json().notificationSecret

  t.equal((await send(signed(c.secret))).statusCode, 204, 'previous secret accepted during the grace period')
  t.equal((await send(signed(next))).statusCode, 204, 'new secret accepted')
  const both = signed(next)
  both.signature =
    `${signStandardWebhook('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', both.id, both.timestamp, both.body)} ` +
    `${both.signature}`
  t.equal((await send(both)).statusCode, 204, 'several signatures, one valid')

  await c.app.db
    .updateTable('erp_connections')
    .set({ previous_secret_expires_at: new Date(Date.now() - 1000) })
    .execute()
  t.equal((await send(signed(c.secret))).statusCode, 401, 'previous secret refused after the grace period')
  t.equal((await send(signed(next))).statusCode, 204)
})

t.test('an ERP change notified by the stand-in updates the ERP-side snapshot', async (t) => {
  const c = await connected(t, { listen: true })
  const vendor = c.erp.seed('vendors', { name: 'Acme Concrete', phone: '555-0100' })
  c.erp.notifications.configure(`${c.url}/webhooks/erp/${c.companyId}`, c.secret)

  c.erp.change('vendors', vendor.id, { phone: '555-0199', email: 'ap@acme.example' })
  await c.erp.notifications.idle()
  t.match(c.erp.notifications.sent(), [{ status: 204 }])
  const snapshot = await eventually('the vendor snapshot', async () =>
    getSnapshot(c.app.db, c.companyId, 'erp', 'vendor', vendor.id),
  )
  t.match(snapshot, { type: 'vendor', external_id: vendor.id, parent_id: null, deleted_at: null })
  t.match(snapshot.fields, { name: 'Acme Concrete', phone: '555-0199', email: 'ap@acme.example', active: true })
  t.equal((snapshot.raw as { version: number }).version, 2)

  // A second change, delivered twice (same webhook-id): one stored event, the snapshot follows.
  c.erp.change('vendors', vendor.id, { name: 'Acme Concrete, Inc.' })
  await c.erp.notifications.idle()
  const second = c.erp.notifications.sent()[1]!
  c.erp.notifications.redeliver(second.id)
  await c.erp.notifications.idle()
  t.same(
    c.erp.notifications.sent().map((s) => s.status),
    [204, 204, 204],
  )
  const updated = await eventually('the renamed vendor', async () => {
    const s = await getSnapshot(c.app.db, c.companyId, 'erp', 'vendor', vendor.id)
    return s?.fields['name'] === 'Acme Concrete, Inc.' ? s : undefined
  })
  t.equal((updated.raw as { version: number }).version, 3)
  const events = await c.app.db
    .selectFrom('inbox_events')
    .select(['dedupe_key', 'status'])
    .where('source', '=', 'erp')
    .orderBy('id')
    .execute()
  t.equal(events.length, 2, 'the redelivery was not stored again')
  await eventually('both events processed', async () => {
    const rows = await c.app.db.selectFrom('inbox_events').select('status').where('status', '!=', 'processed').execute()
    return rows.length === 0 ? true : undefined
  })

  // A job cost code: its snapshot's parent is the job.
  const job = c.erp.seed('jobs', { name: 'Riverside Clinic' })
  const code = c.erp.seed('cost-codes', { code: '03-300', name: 'Concrete', job_id: job.id })
  c.erp.change('cost-codes', code.id, { name: 'Cast-in-place concrete' })
  await c.erp.notifications.idle()
  const codeSnapshot = await eventually('the job cost code snapshot', async () =>
    getSnapshot(c.app.db, c.companyId, 'erp', 'cost_code', code.id),
  )
  t.match(codeSnapshot, { parent_id: job.id, fields: { code: '03-300', name: 'Cast-in-place concrete' } })
})

t.test('processing failures are visible on the event and retried', async (t) => {
  const c = await connected(t, { listen: true })
  const vendor = c.erp.seed('vendors', { name: 'Flaky Supply' })
  c.erp.notifications.configure(`${c.url}/webhooks/erp/${c.companyId}`, c.secret)
  // The agent refuses our token when the job re-reads the record: a final failure of this attempt.
  c.erp.faults.push({ match: { method: 'GET', pathPrefix: `/v1/vendors/${vendor.id}` }, status: 401 })
  c.erp.change('vendors', vendor.id, { phone: '555-0111' })
  await c.erp.notifications.idle()
  const failed = await eventually('the failed attempt', async () => {
    const row = await c.app.db.selectFrom('inbox_events').selectAll().where('source', '=', 'erp').executeTakeFirst()
    return row && row.attempts > 0 ? row : undefined
  })
  t.match(failed.last_error, /401 unauthorized/)
  t.notOk(failed.last_error?.includes(c.erp.token), 'no token in the error')
  // The job retries with backoff; rather than wait for it, ask for a retry as an operator would.
  const retried = await c.app.inject({
    method: 'POST',
    url: `/v1/companies/${c.companyId}/webhook-events/${failed.id}/retry`,
    headers: c.admin,
  })
  t.equal(retried.statusCode, 200, retried.body)
  const snapshot = await eventually('the snapshot after the retry', async () =>
    getSnapshot(c.app.db, c.companyId, 'erp', 'vendor', vendor.id),
  )
  t.equal(snapshot.fields['phone'], '555-0111')
})
