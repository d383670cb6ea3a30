// Procore or the ERP agent failing while a route calls it: the caller gets problem+json naming the
// side, 503 with Retry-After when trying later may help (unavailable, timed out), 502 when the
// answer is unusable; never 500. Unlinking leaves the Procore write to its job and still answers.
import { Agent, type Dispatcher } from 'undici'
import t, { type Test } from 'tap'
import { syncHarness, until, type Reply, type SyncHarness } from './fixtures/harness.js'

/** ERP agent requests (paths under /v1/) get a short header timeout while `slow` is on. */
let slow = false
const agent = new Agent().compose(
  (dispatch: Dispatcher['dispatch']) => (options, handler) =>
    dispatch(slow && options.path.startsWith('/v1/') ? { ...options, headersTimeout: 500 } : options, handler),
)

/** A vendor linked on both sides, renamed in Procore: `apply` takes the Procore name (GET on both sides first). */
async function openDiscrepancy(h: SyncHarness) {
  const c = h.companyId
  const p = h.procore.seed(c, 'vendors', { name: 'Delta Paving', email_address: 'ap@delta.example' })
  const e = h.erp.seed('vendors', { code: 'DELTA01', name: 'Delta Paving', email: 'ap@delta.example' })
  await h.refresh(['vendor'])
  const pair = { type: 'vendor', procoreId: p.id, erpId: e.id }
  const linked = await h.api('POST', `/v1/companies/${c}/links`, pair, { 'idempotency-key': 'link' })
  const link = linked.body
  h.procore.change(c, 'vendors', p.id, { name: 'Delta Paving Co' })
  const open = await until('discrepancy', async () =>
    (await h.api('GET', `/v1/companies/${c}/discrepancies?type=vendor`)).body.items.find(
      (d: any) => d.linkId === link.id,
    ),
  )

  let attempt = 0
  const apply = async (): Promise<Reply> => {
    const etag = String((await h.api('GET', `/v1/companies/${c}/discrepancies/${open.id}`)).headers.etag)
    return h.api(
      'POST',
      `/v1/companies/${c}/discrepancies/${open.id}/apply`,
      { fields: { name: 'procore' } },
      { 'if-match': etag, 'idempotency-key': `apply-${++attempt}` },
    )
  }
  return { p, e, link, apply }
}

t.test('upstream failures during apply and unlink', async (t) => {
  t.teardown(() => agent.close())
  // Each case here reaches the failing upstream; the circuit breakers have a test of their own below.
  const h = await syncHarness(t, { options: { dispatcher: agent }, env: { UPSTREAM_CIRCUIT_FAILURES: '1000' } })
  const c = h.companyId
  const { p, e, link, apply } = await openDiscrepancy(h)
  const problem = (t: Test, res: Reply, status: number, code: string) => {
    t.equal(res.status, status, JSON.stringify(res.body))
    t.match(res.headers['content-type'], /^application\/problem\+json/)
    t.match(res.body, { status, code, type: `urn:procore-erp-sync:problem:${code}`, requestId: String })
  }
  const erpGet = { method: 'GET', pathPrefix: `/v1/vendors/${e.id}` }
  const procoreGet = { method: 'GET', pathPrefix: `/rest/v1.0/vendors/${p.id}` }

  await t.test('the ERP agent answers 503: 503 with its Retry-After, naming the agent', async (t) => {
    h.erp.faults.push({ match: erpGet, status: 503, retryAfterSeconds: 300 })
    const res = await apply()
    problem(t, res, 503, 'erp_unavailable')
    const wait = Number(res.headers['retry-after'])
    t.ok(wait > 290 && wait <= 300, `Retry-After ${wait} is the agent's`)
    const answered = `The ERP agent answered GET ${erpGet.pathPrefix} with 503`
    t.match(res.body.detail, new RegExp(`^${answered}.*Retry after ${wait} seconds`))
    t.match(res.body.detail, /check that the agent is running/)
  })

  await t.test('the ERP agent does not answer in time: 503 with Retry-After', async (t) => {
    h.erp.faults.push({ match: erpGet, delayMs: 2000, times: Infinity })
    slow = true
    t.teardown(() => {
      slow = false
      h.erp.faults.clear()
    })
    const res = await apply()
    problem(t, res, 503, 'erp_unavailable')
    t.equal(res.headers['retry-after'], '30')
    t.match(res.body.detail, new RegExp(`^The ERP agent did not answer GET /v1/vendors/${e.id} in time\\.`))
  })

  await t.test('the ERP agent answers something that is not JSON: 502, once the Procore read has ended', async (t) => {
    h.erp.faults.push({ match: erpGet, rawBody: '{"id": "V0' })
    // A Procore read still under way after the answer would meet the next case's fault instead of its apply.
    h.procore.faults.push({ match: procoreGet, delayMs: 400 })
    const started = performance.now()
    const res = await apply()
    t.ok(performance.now() - started >= 400, 'the answer waited for the Procore read that ran beside the failed one')
    problem(t, res, 502, 'erp_bad_response')
    t.equal(res.headers['retry-after'], undefined)
    t.match(res.body.detail, new RegExp(`^The ERP agent answered GET ${erpGet.pathPrefix} with an answer that is not`))
  })

  await t.test('Procore answers 503, then an answer of the wrong shape: 503 and 502 naming Procore', async (t) => {
    h.procore.faults.push({ match: procoreGet, status: 503, retryAfterSeconds: 600 })
    const unavailable = await apply()
    problem(t, unavailable, 503, 'procore_unavailable')
    t.ok(Number(unavailable.headers['retry-after']) > 590, "Procore's Retry-After")
    t.match(unavailable.body.detail, /^Procore answered GET \/rest\/v1\.0\/vendors\/\d+ with 503/)

    h.procore.faults.push({ match: procoreGet, rawBody: '[]' })
    const bad = await apply()
    problem(t, bad, 502, 'procore_bad_response')
    t.match(bad.body.detail, /^Procore answered GET \/rest\/v1\.0\/vendors\/\d+ with an answer that is not what/)
  })

  await t.test('with both sides back, the same apply goes through', async (t) => {
    const res = await apply()
    t.equal(res.status, 200, JSON.stringify(res.body))
    t.equal(h.erp.get('vendors', e.id)?.name, 'Delta Paving Co')
  })

  await t.test('unlink while Procore is down: the link ends, the origin clearing waits for its job', async (t) => {
    h.procore.faults.push({ match: { method: 'PATCH' }, status: 503, retryAfterSeconds: 300, times: Infinity })
    h.procore.faults.push({ match: { method: 'POST' }, status: 503, retryAfterSeconds: 300, times: Infinity })
    t.teardown(() => h.procore.faults.clear())
    const etag = String((await h.api('GET', `/v1/companies/${c}/links/${link.id}`)).headers.etag)
    const res = await h.api('DELETE', `/v1/companies/${c}/links/${link.id}`, undefined, { 'if-match': etag })
    t.equal(res.status, 200, JSON.stringify(res.body))
    t.match(res.body, { active: false, origin: 'clearing' })
  })
})

t.test(
  'a failing ERP agent opens its circuit: calls fail fast until the next probe, counted in /metrics',
  async (t) => {
    const h = await syncHarness(t, { env: { UPSTREAM_CIRCUIT_FAILURES: '2' } })
    const { e, apply } = await openDiscrepancy(h)
    await h.quiet()
    const path = `/v1/vendors/${e.id}`
    const sent = () => h.erp.calls.filter((call) => call.method === 'GET' && call.path === path).length
    h.erp.faults.push({ match: { method: 'GET', pathPrefix: path }, status: 500, times: Infinity })
    t.teardown(() => h.erp.faults.clear())
    const before = sent()

    const first = await apply()
    t.equal(first.status, 503, JSON.stringify(first.body))
    t.equal(sent() - before, 2, 'two failures opened the circuit; the third try was not sent')
    const wait = Number(first.headers['retry-after'])
    t.ok(wait > 25 && wait <= 30, `Retry-After ${wait} is the time to the next probe`)
    t.match(first.body, { code: 'erp_unavailable' })
    t.match(
      first.body.detail,
      new RegExp(`^The ERP agent is failing, so GET ${path} was not sent until the next probe`),
    )

    const second = await apply()
    t.equal(second.status, 503)
    t.equal(sent() - before, 2, 'while open, nothing reaches the agent')

    const metrics = await h.app.inject({ method: 'GET', url: '/metrics' })
    t.match(metrics.body, /^upstream_circuit_state\{side="erp",state="open"\} 1$/m)
    t.match(metrics.body, /^upstream_circuit_rejected_total\{side="erp"\} [1-9]\d*$/m)
    t.match(metrics.body, /^upstream_circuit_state\{side="procore",state="open"\} 0$/m)
    const circuitLines = metrics.body.split('\n').filter((line) => line.startsWith('upstream_circuit'))
    t.notOk(
      circuitLines.some((line) => line.includes(h.companyId)),
      'no company id in a label',
    )
  },
)
