// Over real sockets on 127.0.0.1: what a MockAgent cannot show (resets, slow headers, the
// exact bytes of the request line, connections in flight).
import t from 'tap'
import { HttpClient } from '../../src/http/client.js'
import { fakeClock, startServer, upstreamError } from './fixtures/harness.js'

void t.test('a socket reset once, then an answer: retried and returned', async (t) => {
  let requests = 0
  const origin = await startServer(t, (req, res) => {
    requests++
    if (requests === 1) {
      req.socket.resetAndDestroy()
      return
    }
    res.setHeader('content-type', 'application/json')
    res.end('{"ok":true}')
  })
  const clock = fakeClock()
  const client = new HttpClient({ baseUrl: origin, sleep: clock.sleep, now: clock.now })
  t.teardown(() => client.close())

  const res = await client.request({ method: 'GET', path: '/x' })
  t.strictSame(res.body, { ok: true })
  t.equal(res.attempts, 2)
  t.equal(requests, 2)
  t.equal(clock.sleeps.length, 1)
})

void t.test('headers that come too slowly fail with reason timeout, after maxAttempts', async (t) => {
  let requests = 0
  const origin = await startServer(t, () => {
    requests++ // never answers
  })
  const clock = fakeClock()
  const client = new HttpClient({
    baseUrl: origin,
    timeouts: { headersMs: 100 },
    retry: { maxAttempts: 2 },
    sleep: clock.sleep,
    now: clock.now,
  })
  t.teardown(() => client.close())

  const err = await upstreamError(t, client.request({ method: 'GET', path: '/slow' }))
  t.match(err, { reason: 'timeout', attempts: 2, url: `${origin}/slow` })
  t.equal(requests, 2)
})

void t.test('the request line carries Procore-style query encoding and a JSON body', async (t) => {
  let seen: { url: string | undefined; headers: Record<string, unknown>; body: string } | undefined
  const origin = await startServer(t, (req, res) => {
    let body = ''
    req.on('data', (chunk: Buffer) => (body += chunk.toString()))
    req.on('end', () => {
      seen = { url: req.url, headers: req.headers, body }
      res.end()
    })
  })
  const client = new HttpClient({ baseUrl: `${origin}/api/`, defaultHeaders: { 'User-Agent': 'sync/1' } })
  t.teardown(() => client.close())

  await client.request({
    method: 'PATCH',
    path: 'vendors/sync',
    query: {
      'filters[id]': [1, 9007199254740993n],
      'filters[updated_at]': '2024-01-01T00:00:00Z...2024-01-02T00:00:00Z',
      q: 'a b&c',
      flag: false,
    },
    body: { id: 9007199254740993n },
  })
  t.equal(
    seen?.url,
    '/api/vendors/sync?filters%5Bid%5D%5B%5D=1&filters%5Bid%5D%5B%5D=9007199254740993' +
      '&filters%5Bupdated_at%5D=2024-01-01T00%3A00%3A00Z...2024-01-02T00%3A00%3A00Z&q=a%20b%26c&flag=false',
  )
  t.equal(seen?.body, '{"id":9007199254740993}')
  t.match(seen?.headers, { 'content-type': 'application/json', accept: 'application/json', 'user-agent': 'sync/1' })
})

void t.test('a redirect to another server is not followed', async (t) => {
  let canaryHits = 0
  const canary = await startServer(t, (_req, res) => {
    canaryHits++
    res.end('{}')
  })
  const origin = await startServer(t, (_req, res) => {
    res.writeHead(302, { location: `${canary}/internal` }).end()
  })
  const client = new HttpClient({ baseUrl: origin })
  t.teardown(() => client.close())

  t.match(await upstreamError(t, client.request({ method: 'GET', path: '/x' })), {
    reason: 'redirect_blocked',
    status: 302,
  })
  t.equal(canaryHits, 0)
})

void t.test('at most maxConcurrency requests are in flight per key; keys do not share slots', async (t) => {
  let inFlight = 0
  let maxInFlight = 0
  // Hold each answer until `hold` requests are in flight, or 100 ms pass (only a release valve, never asserted).
  let hold = 0
  const waiting: Array<() => void> = []
  const origin = await startServer(t, (_req, res) => {
    inFlight++
    maxInFlight = Math.max(maxInFlight, inFlight)
    const answer = (): void => {
      inFlight--
      res.end('{}')
    }
    waiting.push(answer)
    if (waiting.length >= hold) waiting.splice(0).forEach((release) => release())
    else setTimeout(() => waiting.splice(0).forEach((release) => release()), 100)
  })
  const client = new HttpClient({ baseUrl: origin, maxConcurrency: 2 })
  t.teardown(() => client.close())
  const burst = (keys: string[]) =>
    Promise.all(keys.map((key) => client.request({ method: 'GET', path: '/x', concurrencyKey: key })))

  hold = 3
  await burst(['a', 'a', 'a', 'a', 'a', 'a'])
  t.equal(maxInFlight, 2, 'one key: never more than 2 at once')

  hold = 4
  maxInFlight = 0
  await burst(['a', 'a', 'a', 'b', 'b', 'b'])
  t.equal(maxInFlight, 4, 'two keys: 2 each, at the same time')
})

void t.test('a declared Content-Length over the cap fails before the body is read', async (t) => {
  const origin = await startServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '5000' })
    res.write('[') // and nothing more: reading the body would end in a body timeout instead
  })
  const client = new HttpClient({ baseUrl: origin, maxResponseBytes: 1000, timeouts: { bodyMs: 200 } })
  t.teardown(() => client.close())
  t.match(await upstreamError(t, client.request({ method: 'GET', path: '/big' })), { reason: 'too_large', attempts: 1 })
})

// Without the signal reaching the socket, this would hang until headersMs (beyond the subtest's timeout).
void t.test(
  'an abort while the request is in flight ends it at once, and is not retried',
  { timeout: 10_000 },
  async (t) => {
    let requests = 0
    const controller = new AbortController()
    const origin = await startServer(t, () => {
      requests++
      controller.abort(new Error('job cancelled'))
    })
    const client = new HttpClient({ baseUrl: origin, timeouts: { headersMs: 60_000 } })
    t.teardown(() => client.close())
    await t.rejects(client.request({ method: 'GET', path: '/x', signal: controller.signal }), {
      message: 'job cancelled',
    })
    t.equal(requests, 1)
  },
)
