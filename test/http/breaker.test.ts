// Circuit breakers over real sockets on 127.0.0.1: a failing upstream costs N requests, then calls
// fail fast (without reaching the server) until one probe per interval; the clock is injected.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Registry } from 'prom-client'
import t, { type Test } from 'tap'
import { fakeClock, startServer, upstreamError } from './fixtures/harness.js'
import { CircuitBreakers, registerCircuitMetrics } from '../../src/http/breaker.js'
import { HttpClient, type HttpClientOptions } from '../../src/http/client.js'
import { upstreamProblem } from '../../src/errors.js'

const OPEN_MS = 30_000
const THRESHOLD = 3

type Handler = (req: IncomingMessage, res: ServerResponse) => void

/** A loopback server whose behaviour can be swapped, counting the requests that reach it per path. */
async function upstream(t: Test, initial: Handler) {
  let handler = initial
  const hits = new Map<string, number>()
  const origin = await startServer(t, (req, res) => {
    const path = req.url ?? ''
    hits.set(path, (hits.get(path) ?? 0) + 1)
    handler(req, res)
  })
  return {
    origin,
    hits: (path = '/x') => hits.get(path) ?? 0,
    set: (next: Handler) => (handler = next),
  }
}

const answer =
  (status: number, body = '{}'): Handler =>
  (_req, res) => {
    res.statusCode = status
    res.setHeader('content-type', 'application/json')
    res.end(body)
  }

function setup(t: Test, origin: string, opts: Partial<HttpClientOptions> = {}) {
  const clock = fakeClock()
  const breakers = new CircuitBreakers({ failureThreshold: THRESHOLD, openMs: OPEN_MS, now: clock.now })
  const client = new HttpClient({
    baseUrl: origin,
    side: 'erp',
    breakers,
    retry: { maxAttempts: 1 },
    sleep: clock.sleep,
    now: clock.now,
    ...opts,
  })
  t.teardown(() => client.close())
  const get = (company = 'A', path = '/x') => client.request({ method: 'GET', path, concurrencyKey: company })
  return { clock, breakers, client, get }
}

void t.test('after N failures calls fail fast, carrying the time of the next probe', async (t) => {
  const server = await upstream(t, answer(500))
  const { clock, breakers, get } = setup(t, server.origin)

  for (let i = 0; i < THRESHOLD; i++) {
    const err = await upstreamError(t, get())
    t.match(err, { reason: 'server_error', status: 500 })
  }
  t.equal(server.hits(), THRESHOLD)
  t.equal(breakers.state('erp:A'), 'open')

  const openedAt = clock.now()
  for (let i = 0; i < 5; i++) {
    const err = await upstreamError(t, get())
    t.match(err, { reason: 'circuit_open', side: 'erp', retryable: true, attempts: 0, retryAt: openedAt + OPEN_MS })
    t.match(err.message, /erp is failing \(circuit open\), next probe at 2023-11-14T22:13:50\.000Z/)
  }
  t.equal(server.hits(), THRESHOLD, 'refused calls never reached the server')

  const problem = upstreamProblem(await upstreamError(t, get()), openedAt + 10_000)
  t.equal(problem.status, 503)
  t.equal(problem.extras.headers?.['retry-after'], '20', 'Retry-After is the time left to the next probe')
  t.match(problem.detail, /The ERP agent is failing, so GET \/x was not sent/)
})

void t.test('socket resets count as failures, and retries within one request stop once it opens', async (t) => {
  const server = await upstream(t, (req) => req.socket.resetAndDestroy())
  const { breakers, get } = setup(t, server.origin, { retry: { maxAttempts: 5 } })

  const err = await upstreamError(t, get())
  t.match(err, { reason: 'circuit_open', attempts: THRESHOLD })
  t.equal(server.hits(), THRESHOLD)
  t.equal(breakers.state('erp:A'), 'open')
})

void t.test('after the interval exactly one probe reaches the server; its success closes the circuit', async (t) => {
  const server = await upstream(t, answer(503))
  const { clock, breakers, get } = setup(t, server.origin)
  for (let i = 0; i < THRESHOLD; i++) await upstreamError(t, get())
  t.equal(breakers.state('erp:A'), 'open')

  await clock.sleep(OPEN_MS - 1)
  await upstreamError(t, get())
  t.equal(server.hits(), THRESHOLD, 'not yet')

  await clock.sleep(1)
  server.set(answer(200, '{"ok":true}'))
  const res = await get()
  t.strictSame(res.body, { ok: true })
  t.equal(server.hits(), THRESHOLD + 1, 'one probe')
  t.equal(breakers.state('erp:A'), 'closed')

  for (let i = 0; i < 3; i++) await get()
  t.equal(server.hits(), THRESHOLD + 4, 'closed: every call is sent')
})

void t.test('a failed probe re-opens the circuit for another interval', async (t) => {
  const server = await upstream(t, answer(502))
  const { clock, breakers, get } = setup(t, server.origin)
  for (let i = 0; i < THRESHOLD; i++) await upstreamError(t, get())

  await clock.sleep(OPEN_MS)
  const probe = await upstreamError(t, get())
  t.match(probe, { reason: 'unavailable', status: 502 })
  t.equal(server.hits(), THRESHOLD + 1)
  t.equal(breakers.state('erp:A'), 'open')

  const refused = await upstreamError(t, get())
  t.match(refused, { reason: 'circuit_open', retryAt: clock.now() + OPEN_MS })
  t.equal(server.hits(), THRESHOLD + 1, 'no second probe in the same interval')

  await clock.sleep(OPEN_MS)
  server.set(answer(200))
  await get()
  t.equal(breakers.state('erp:A'), 'closed')
  t.equal(server.hits(), THRESHOLD + 2)
})

void t.test('calls made while the probe is out fail fast', async (t) => {
  let release = (): void => {}
  const server = await upstream(t, answer(500))
  const { clock, breakers, get } = setup(t, server.origin)
  for (let i = 0; i < THRESHOLD; i++) await upstreamError(t, get())
  await clock.sleep(OPEN_MS)

  const held = new Promise<void>((resolve) => (release = resolve))
  server.set((req, res) => void held.then(() => answer(200)(req, res)))
  const probe = get()
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(breakers.state('erp:A'), 'half_open')
  const concurrent = await upstreamError(t, get())
  t.match(concurrent, { reason: 'circuit_open', attempts: 0 })

  release()
  await probe
  t.equal(server.hits(), THRESHOLD + 1, 'only the probe reached the server')
  t.equal(breakers.state('erp:A'), 'closed')
})

void t.test('refusals (4xx, 429) never open the circuit', async (t) => {
  const server = await upstream(t, answer(404))
  const { breakers, get } = setup(t, server.origin)
  for (const status of [400, 401, 403, 404, 409, 422, 429]) {
    server.set(answer(status))
    for (let i = 0; i < THRESHOLD + 1; i++) await upstreamError(t, get())
  }
  t.equal(server.hits(), 7 * (THRESHOLD + 1), 'every call was sent')
  t.equal(breakers.state('erp:A'), 'closed')

  // An answer between failures breaks the run: failures must be consecutive.
  server.set(answer(500))
  for (let i = 0; i < THRESHOLD - 1; i++) await upstreamError(t, get())
  server.set(answer(404))
  await upstreamError(t, get())
  server.set(answer(500))
  for (let i = 0; i < THRESHOLD - 1; i++) await upstreamError(t, get())
  t.equal(breakers.state('erp:A'), 'closed')
})

void t.test("company A's dead upstream does not affect company B", async (t) => {
  const server = await upstream(t, (req, res) => answer(req.url === '/a' ? 503 : 200)(req, res))
  const { breakers, get } = setup(t, server.origin)
  for (let i = 0; i < THRESHOLD + 2; i++) await upstreamError(t, get('A', '/a'))
  t.equal(server.hits('/a'), THRESHOLD)
  t.equal(breakers.state('erp:A'), 'open')

  for (let i = 0; i < 3; i++) await get('B', '/b')
  t.equal(server.hits('/b'), 3)
  t.equal(breakers.state('erp:B'), 'closed')
})

void t.test('requests without a concurrency key, or a client without breakers, are never refused', async (t) => {
  const server = await upstream(t, answer(500))
  const { client, breakers } = setup(t, server.origin)
  for (let i = 0; i < THRESHOLD + 2; i++) await upstreamError(t, client.request({ method: 'GET', path: '/x' }))
  t.equal(server.hits(), THRESHOLD + 2)
  t.same([...breakers.counts()], [])
})

void t.test('metrics: circuits per side and state, calls refused per side, no company ids', async (t) => {
  const server = await upstream(t, answer(500))
  const { clock, breakers, get } = setup(t, server.origin)
  const registry = new Registry()
  registerCircuitMetrics(registry, breakers)

  const before = await registry.metrics()
  t.match(before, /^upstream_circuit_state\{side="erp",state="open"\} 0$/m)
  t.match(before, /^upstream_circuit_rejected_total\{side="erp"\} 0$/m)

  for (let i = 0; i < THRESHOLD + 2; i++) await upstreamError(t, get('company-a-9041'))
  await upstreamError(t, get('company-b-9042'))
  let text = await registry.metrics()
  t.match(text, /^# TYPE upstream_circuit_state gauge$/m)
  t.match(text, /^upstream_circuit_state\{side="erp",state="open"\} 1$/m)
  t.match(text, /^upstream_circuit_state\{side="erp",state="closed"\} 1$/m)
  t.match(text, /^upstream_circuit_state\{side="procore",state="open"\} 0$/m)
  t.match(text, /^# TYPE upstream_circuit_rejected_total counter$/m)
  t.match(text, /^upstream_circuit_rejected_total\{side="erp"\} 2$/m)
  t.match(text, /^upstream_circuit_rejected_total\{side="procore"\} 0$/m)
  t.notMatch(text, /904[12]/)

  await clock.sleep(OPEN_MS)
  server.set((_req, res) => setTimeout(() => answer(200)(_req, res), 50))
  const probe = get('company-a-9041')
  await new Promise((resolve) => setTimeout(resolve, 20))
  text = await registry.metrics()
  t.match(text, /^upstream_circuit_state\{side="erp",state="half_open"\} 1$/m)
  await probe
  text = await registry.metrics()
  t.match(text, /^upstream_circuit_state\{side="erp",state="open"\} 0$/m)
  t.match(text, /^upstream_circuit_state\{side="erp",state="half_open"\} 0$/m)
})

void t.test('thresholds are validated', async (t) => {
  t.throws(() => new CircuitBreakers({ failureThreshold: 0 }), RangeError)
  t.throws(() => new CircuitBreakers({ openMs: 0 }), RangeError)
  const defaults = new CircuitBreakers()
  t.equal(defaults.failureThreshold, 5)
  t.equal(defaults.openMs, 30_000)
})
