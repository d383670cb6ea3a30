// ERP Connector Protocol 1.1 as the service reads it: unknown members of anything an agent sends
// are ignored (not quarantined), and Idempotency-Keys outlive a token rotation.
import t from 'tap'
import { ErpClient } from '../../src/erp/client.js'
import { describeFormat, fitCode, fitsFormat } from '../../src/erp/formats.js'
import { erpProblems } from '../../src/sync/registry.js'
import { signStandardWebhook } from '../standins/erp/index.js'
import { connected, standin } from './fixtures/harness.js'

t.test('a notification with a field this service does not know is accepted, not quarantined', async (t) => {
  const c = await connected(t, { env: { WORKER_ENABLED: 'false' } })
  const body = JSON.stringify({
    type: 'record.updated',
    resource: 'vendors',
    id: 'V000001',
    occurred_at: '2024-05-01T12:00:00.000000Z',
    changed_fields: ['phone'],
  })
  const id = 'msg_future_field'
  const timestamp = Math.floor(Date.now() / 1000)
  const res = await c.app.inject({
    method: 'POST',
    url: `/webhooks/erp/${c.companyId}`,
    payload: body,
    headers: {
      'content-type': 'application/json',
      'webhook-id': id,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signStandardWebhook(c.secret, id, timestamp, body),
    },
  })
  t.equal(res.statusCode, 204)
  const events = await c.app.inject({
    method: 'GET',
    url: `/v1/companies/${c.companyId}/webhook-events`,
    headers: c.admin,
  })
  t.equal(events.json().items.length, 1)
  t.not(events.json().items[0].status, 'quarantined', 'stored to be processed')
  t.equal(events.json().items[0].lastError ?? null, null)
})

t.test('list items and /v1/info with fields this service does not know are read', async (t) => {
  const erp = await standin(t)
  const vendor = erp.seed('vendors', { name: 'Acme Concrete' })
  const client = new ErpClient({ baseUrl: erp.url, token: erp.token, concurrencyKey: 'c1' })
  t.teardown(() => client.close())
  erp.faults.push({
    match: { method: 'GET', pathPrefix: '/v1/vendors' },
    rawBody: JSON.stringify({ data: [{ ...vendor, payment_terms: 'NET30' }], next_cursor: null, total: 1 }),
  })
  const pages = []
  for await (const page of client.list('vendors')) pages.push(...page)
  t.match(pages, [{ id: vendor.id, name: 'Acme Concrete', payment_terms: 'NET30' }])

  const answer = await fetch(`${erp.url}/v1/info`, { headers: { authorization: `Bearer ${erp.token}` } })
  const info = (await answer.json()) as { protocol_version: string; capabilities: object; limits: object }
  erp.faults.push({
    match: { method: 'GET', pathPrefix: '/v1/info' },
    rawBody: JSON.stringify({
      ...info,
      timezone: 'America/Chicago',
      capabilities: { ...info.capabilities, attachments: true },
      limits: { ...info.limits, max_batch_size: 50 },
    }),
  })
  t.match(await client.info(), { protocol_version: info.protocol_version, capabilities: { attachments: true } })
})

t.test('a create retried with the next token after a rotation replays instead of creating again', async (t) => {
  for (const tokenScopedKeys of [false, true]) {
    const erp = await standin(t, { quirks: { tokenScopedKeys } })
    const next = `erp_next_${tokenScopedKeys}_0123456789abcdef`
    erp.tokens.accept(next)
    // The first answer is lost after the agent committed, and the service gives up on this attempt.
    erp.faults.push({ match: { method: 'POST' }, dropResponseAfterCommit: true })
    const before = new ErpClient({
      baseUrl: erp.url,
      token: erp.token,
      concurrencyKey: 'c1',
      retry: { maxAttempts: 1 },
    })
    await t.rejects(before.create('vendors', null, { name: 'Bright Electric LLC' }, 'erp-sync:create:1:vendor:9:1'))
    await before.close()
    // The connection's token is rotated; the run retries with the same frozen key and body.
    erp.tokens.retire(erp.token)
    const after = new ErpClient({ baseUrl: erp.url, token: next, concurrencyKey: 'c1' })
    const created = await after.create('vendors', null, { name: 'Bright Electric LLC' }, 'erp-sync:create:1:vendor:9:1')
    await after.close()
    if (tokenScopedKeys) {
      t.equal(erp.stats().creates, 2, 'an agent keying by token makes a second vendor (the quirk the kit catches)')
    } else {
      t.equal(created.replayed, true, 'the agent replays')
      t.equal(erp.stats().creates, 1, 'one vendor')
      t.equal(erp.stats().records.vendors, 1)
    }
  }
})

t.test("a create whose key is still in progress waits as long as the agent's Retry-After asks", async (t) => {
  const erp = await standin(t)
  erp.faults.push({ match: { method: 'POST', pathPrefix: '/v1/vendors' }, status: 409, retryAfterSeconds: 3 })
  erp.faults.push({ match: { method: 'POST', pathPrefix: '/v1/vendors' }, status: 409, retryAfterSeconds: 60 })
  erp.faults.push({ match: { method: 'POST', pathPrefix: '/v1/vendors' }, status: 409 })
  const waits: number[] = []
  const client = new ErpClient({
    baseUrl: erp.url,
    token: erp.token,
    concurrencyKey: 'c1',
    sleep: async (ms) => void waits.push(ms),
  })
  t.teardown(() => client.close())
  const created = await client.create('vendors', null, { name: 'Harbor Steel' }, 'erp-sync:create:1:vendor:7:1')
  t.equal(created.record.name, 'Harbor Steel')
  t.same(waits, [3000, 10_000, 4000], 'Retry-After 3 s; 60 s capped at 10 s; none given: the third default wait')
  t.equal(erp.stats().creates, 1, 'one vendor')
})

t.test('lengths count code points; formats read masks, patterns and examples alike', async (t) => {
  const crane = '\u{1F3D7}'
  t.equal(crane.length, 2, 'two UTF-16 units')
  t.same(erpProblems('vendor', 'sage300', { name: crane.repeat(30) }, 'update'), [], '30 code points fit 30')
  t.match(erpProblems('vendor', 'sage300', { name: crane.repeat(31) }, 'update'), [
    { field: 'name', message: /at most 30 characters in Sage 300 CRE \(it has 31\)/ },
  ])
  const agent = { formats: { departments: { code: { mask: '9999', example: '0420' } } } }
  t.match(erpProblems('department', 'generic', { code: 'OPS' }, 'update', agent), [
    { field: 'code', message: /Code "OPS" does not fit the ERP's format: the mask 9999, e.g. "0420"; correct it/ },
  ])
  t.same(erpProblems('department', 'generic', { code: '0042' }, 'update', agent), [])
  t.same(
    erpProblems('department', 'generic', { code: 'OPS' }, 'update', { max_lengths: { departments: { code: 2 } } }),
    [
      {
        field: 'code',
        message: 'Code must be at most 2 characters in the ERP (it has 3); shorten it and retry',
      },
    ],
    "the agent's own max_lengths count too",
  )

  const segment = { mask: '99-999', example: '01-100' }
  t.ok(fitsFormat('01-100', segment))
  t.notOk(fitsFormat('01100', segment))
  t.equal(
    fitCode('Concrete', segment, () => false),
    '00-001',
  )
  t.equal(
    fitCode('Operations', { mask: 'AAA99', example: 'OPS01' }, (c) => c === 'OPE01'),
    'OPE02',
  )
  t.equal(
    fitCode('Operations', { pattern: '[A-Z]{3}', example: 'OPS' }, () => false),
    'OPE',
  )
  t.equal(
    fitCode('', { pattern: '[A-Z]{3}', example: 'OPS' }, () => false),
    null,
    'nothing fits: the caller gives it',
  )
  t.equal(describeFormat({ pattern: '[0-9]{4}', example: '0420', description: '4 digits' }), '4 digits, e.g. "0420"')
})
