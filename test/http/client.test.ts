import t from 'tap'
import { errorWithCode, mockedClient, ORIGIN, START, upstreamError } from './fixtures/harness.js'

const json = { 'content-type': 'application/json' }
const resetIn = (seconds: number): string => String(START / 1000 + seconds)

void t.test('a GET returns the parsed body, lower-case headers, the request id and attempts', async (t) => {
  const { client, pool, mock } = mockedClient(t, { defaultHeaders: { Authorization: 'Bearer token' } })
  pool
    .intercept({
      path: '/rest/v1.0/projects?company_id=7',
      method: 'GET',
      headers: { authorization: 'Bearer token', accept: 'application/json', 'procore-company-id': '7' },
    })
    .reply(200, [{ id: 1 }], { headers: { ...json, 'X-Request-Id': 'req-1' } })

  const res = await client.request({
    method: 'GET',
    path: '/rest/v1.0/projects',
    query: { company_id: 7, skipped: undefined },
    headers: { 'Procore-Company-Id': '7' },
  })
  t.strictSame(res.body, [{ id: 1 }])
  t.equal(res.status, 200)
  t.equal(res.requestId, 'req-1')
  t.equal(res.headers['x-request-id'], 'req-1')
  t.equal(res.attempts, 1)
  mock.assertNoPendingInterceptors()
})

void t.test('bigint ids survive the response and the next request body exactly', async (t) => {
  const { client, pool, mock } = mockedClient(t)
  pool
    .intercept({ path: '/rest/v1.0/vendors/9007199254740993', method: 'GET' })
    .reply(200, '{"id":9007199254740993,"name":"Acme"}', { headers: json })
  pool
    .intercept({
      path: '/rest/v1.0/vendors/sync',
      method: 'PATCH',
      body: '{"updates":[{"id":9007199254740993,"origin_id":"V-1"}]}',
    })
    .reply(200, '{"entities":[{"id":9007199254740993}],"errors":[]}', { headers: json })

  const vendor = await client.request<{ id: bigint }>({ method: 'GET', path: '/rest/v1.0/vendors/9007199254740993' })
  t.equal(vendor.body.id, 9007199254740993n)
  const synced = await client.request({
    method: 'PATCH',
    path: '/rest/v1.0/vendors/sync',
    body: { updates: [{ id: vendor.body.id, origin_id: 'V-1' }] },
  })
  t.strictSame(synced.body, { entities: [{ id: 9007199254740993n }], errors: [] })
  mock.assertNoPendingInterceptors()
})

void t.test('429 with X-Rate-Limit-Reset: one sleep until the reset, no request before it', async (t) => {
  const { client, pool, clock, logs } = mockedClient(t)
  const sentAt: number[] = []
  pool.intercept({ path: '/rest/v1.0/projects', method: 'GET' }).reply(() => {
    sentAt.push(clock.now())
    return {
      statusCode: 429,
      data: '',
      responseOptions: { headers: { 'x-rate-limit-remaining': '0', 'x-rate-limit-reset': resetIn(40) } },
    }
  })
  pool.intercept({ path: '/rest/v1.0/projects', method: 'GET' }).reply(() => {
    sentAt.push(clock.now())
    return { statusCode: 200, data: '[]', responseOptions: { headers: json } }
  })

  const res = await client.request({ method: 'GET', path: '/rest/v1.0/projects' })
  t.equal(res.attempts, 2)
  t.equal(clock.sleeps.length, 1, 'exactly one sleep')
  t.ok(clock.sleeps[0]! >= 40_000, `slept ${clock.sleeps[0]} ms`)
  t.strictSame(sentAt.length, 2)
  t.ok(sentAt[1]! >= START + 40_000, 'the retry went out after the reset')
  const retry = logs.lines.find((line) => line.msg === 'retrying')
  t.match(retry, {
    level: 40,
    component: 'http',
    method: 'GET',
    url: '/rest/v1.0/projects',
    attempt: 1,
    reason: `429: waiting for X-Rate-Limit-Reset ${resetIn(40)}`,
  })
})

void t.test('503 Retry-After: 120 is honoured in full, not capped at 30 s', async (t) => {
  const { client, pool, clock } = mockedClient(t, { retry: { maxWaitMs: 300_000 } })
  pool.intercept({ path: '/x', method: 'GET' }).reply(503, '', { headers: { 'retry-after': '120' } })
  pool.intercept({ path: '/x', method: 'GET' }).reply(200, '{}', { headers: json })

  const res = await client.request({ method: 'GET', path: '/x' })
  t.equal(res.attempts, 2)
  t.strictSame(clock.sleeps, [120_000])
})

void t.test('a Retry-After beyond maxWaitMs is not slept: the error carries retryAt', async (t) => {
  const { client, pool, clock, logs } = mockedClient(t)
  pool.intercept({ path: '/x', method: 'GET' }).reply(503, '', { headers: { 'retry-after': '600' } })

  const err = await upstreamError(t, client.request({ method: 'GET', path: '/x' }))
  t.equal(err.reason, 'unavailable')
  t.equal(err.retryAt, START + 600_000)
  t.equal(err.attempts, 1)
  t.ok(err.retryable)
  t.strictSame(clock.sleeps, [])
  t.match(
    logs.lines.find((line) => line.msg === 'giving up'),
    { reason: /exceeds maxWaitMs 120000/ },
  )
})

void t.test('a POST is sent once; a keyed POST (idempotent: true) is retried', async (t) => {
  const { client, pool, mock, logs } = mockedClient(t)
  pool.intercept({ path: '/rest/v1.0/vendors', method: 'POST' }).reply(503, '{"message":"busy"}', { headers: json })

  const err = await upstreamError(
    t,
    client.request({ method: 'POST', path: '/rest/v1.0/vendors', body: { name: 'Acme' } }),
  )
  t.equal(err.attempts, 1)
  t.equal(err.reason, 'unavailable')
  t.strictSame(err.body, { message: 'busy' })
  t.match(
    logs.lines.find((line) => line.msg === 'giving up'),
    { reason: 'not retrying: POST is not idempotent' },
  )
  mock.assertNoPendingInterceptors()

  pool.intercept({ path: '/rest/v1.0/vendors', method: 'POST', headers: { 'idempotency-key': 'k1' } }).reply(503, '')
  pool
    .intercept({ path: '/rest/v1.0/vendors', method: 'POST', headers: { 'idempotency-key': 'k1' } })
    .reply(201, '{"id":5}', { headers: json })
  const res = await client.request({
    method: 'POST',
    path: '/rest/v1.0/vendors',
    body: { name: 'Acme' },
    idempotent: true,
    headers: { 'Idempotency-Key': 'k1' },
  })
  t.equal(res.attempts, 2)
  t.strictSame(res.body, { id: 5 })
})

void t.test('404 is final: one attempt, reason not_found, request id and body kept', async (t) => {
  const { client, pool, clock, logs } = mockedClient(t)
  pool
    .intercept({ path: '/rest/v1.0/projects/1', method: 'GET' })
    .reply(404, '{"errors":"not found"}', { headers: { ...json, 'x-request-id': 'req-404' } })

  const err = await upstreamError(t, client.request({ method: 'GET', path: '/rest/v1.0/projects/1' }))
  t.match(err, {
    reason: 'not_found',
    status: 404,
    requestId: 'req-404',
    attempts: 1,
    method: 'GET',
    url: `${ORIGIN}/rest/v1.0/projects/1`,
  })
  t.strictSame(err.body, { errors: 'not found' })
  t.equal(err.retryable, false)
  t.strictSame(clock.sleeps, [])
  t.strictSame(logs.lines, [], 'a final status is the caller’s to log')
})

void t.test('HTTP statuses map to reasons', async (t) => {
  const { client, pool } = mockedClient(t, { retry: { maxAttempts: 1 } })
  const cases = {
    400: 'bad_request',
    401: 'unauthorized',
    403: 'forbidden',
    408: 'timeout',
    409: 'conflict',
    410: 'client_error',
    422: 'unprocessable',
    429: 'rate_limited',
    500: 'server_error',
    502: 'unavailable',
  } as const
  for (const [status, reason] of Object.entries(cases)) {
    pool.intercept({ path: `/s/${status}`, method: 'GET' }).reply(Number(status), '')
    const err = await upstreamError(t, client.request({ method: 'GET', path: `/s/${status}` }))
    t.equal(err.reason, reason, status)
  }
})

void t.test('5xx are retried up to maxAttempts with capped, jittered backoff', async (t) => {
  const randoms = [0.9, 0.1, 0.6, 0.3]
  const { client, pool, clock } = mockedClient(t, { random: () => randoms.shift() ?? 0, retry: { maxDelayMs: 1000 } })
  pool.intercept({ path: '/x', method: 'GET' }).reply(500, 'oops').times(5)

  const err = await upstreamError(t, client.request({ method: 'GET', path: '/x' }))
  t.equal(err.reason, 'server_error')
  t.equal(err.attempts, 5)
  t.equal(err.body, 'oops', 'a non-JSON error body is kept as text')
  // caps: min(1000, 250·2^n) = 500, 1000, 1000, 1000
  t.strictSame(clock.sleeps, [450, 100, 600, 300])
  t.equal(new Set(clock.sleeps).size, 4, 'jitter spreads the delays')
})

void t.test('ECONNRESET is retried; a timeout that persists fails with reason timeout', async (t) => {
  const { client, pool, clock } = mockedClient(t)
  pool.intercept({ path: '/x', method: 'GET' }).replyWithError(errorWithCode('ECONNRESET', 'socket hang up'))
  pool.intercept({ path: '/x', method: 'GET' }).reply(200, '{"ok":true}', { headers: json })
  const res = await client.request({ method: 'GET', path: '/x' })
  t.equal(res.attempts, 2)
  t.equal(clock.sleeps.length, 1)

  const client2 = mockedClient(t, { retry: { maxAttempts: 2 } })
  client2.pool
    .intercept({ path: '/y', method: 'GET' })
    .replyWithError(errorWithCode('UND_ERR_HEADERS_TIMEOUT'))
    .times(2)
  const err = await upstreamError(t, client2.client.request({ method: 'GET', path: '/y' }))
  t.match(err, { reason: 'timeout', attempts: 2 })
  t.equal(err.status, undefined)
})

void t.test('an error that is not a transport failure is rethrown unchanged, not retried', async (t) => {
  const { client, pool } = mockedClient(t)
  const bug = new TypeError('bad option')
  pool.intercept({ path: '/x', method: 'GET' }).replyWithError(bug)
  await t.rejects(client.request({ method: 'GET', path: '/x' }), bug)
})

void t.test('3xx is never followed: redirect_blocked, and the target is never called', async (t) => {
  const { client, pool, mock } = mockedClient(t)
  pool
    .intercept({ path: '/x', method: 'GET' })
    .reply(302, '', { headers: { location: 'http://169.254.169.254/latest/meta-data' } })
  mock.get('http://169.254.169.254').intercept({ path: '/latest/meta-data', method: 'GET' }).reply(200, 'secrets')

  const err = await upstreamError(t, client.request({ method: 'GET', path: '/x' }))
  t.match(err, { reason: 'redirect_blocked', status: 302, attempts: 1 })
  t.equal(mock.pendingInterceptors().length, 1, 'the redirect target was not requested')
})

void t.test('absolute URLs must be on an allowed host and scheme, checked before any request', async (t) => {
  const { client, pool, mock } = mockedClient(t, { allowedHosts: ['files.procore.com'] })
  mock.get('https://evil.example').intercept({ path: '/steal', method: 'GET' }).reply(200, '{}')
  pool.intercept({ path: '/steal', method: 'GET' }).reply(200, '{}')

  for (const path of ['https://evil.example/steal', 'http://api.procore.com/steal', 'file:///etc/passwd']) {
    const err = await upstreamError(t, client.request({ method: 'GET', path }))
    t.match(err, { reason: 'host_not_allowed', attempts: 0 }, path)
  }
  t.equal(mock.pendingInterceptors().length, 2, 'no request was sent')

  mock
    .get('https://files.procore.com')
    .intercept({ path: '/a', method: 'GET' })
    .reply(200, '{"ok":1}', { headers: json })
  const res = await client.request({ method: 'GET', path: 'https://files.procore.com/a' })
  t.strictSame(res.body, { ok: 1 }, 'an allowed host is fine')
})

void t.test('bodies larger than maxResponseBytes fail with too_large, declared or not', async (t) => {
  const { client, pool } = mockedClient(t, { maxResponseBytes: 1000 })
  const big = JSON.stringify({ data: 'x'.repeat(2000) })
  pool
    .intercept({ path: '/declared', method: 'GET' })
    .reply(200, big, { headers: { ...json, 'content-length': String(big.length) } })
  pool.intercept({ path: '/streamed', method: 'GET' }).reply(200, big, { headers: json })
  pool
    .intercept({ path: '/fits', method: 'GET' })
    .reply(200, JSON.stringify({ data: 'x'.repeat(900) }), { headers: json })

  for (const path of ['/declared', '/streamed']) {
    const err = await upstreamError(t, client.request({ method: 'GET', path }))
    t.match(err, { reason: 'too_large', status: 200, attempts: 1 }, path)
  }
  t.equal((await client.request<{ data: string }>({ method: 'GET', path: '/fits' })).body.data.length, 900)
})

void t.test('a body that is not JSON, or fails parse, is invalid_response and not retried', async (t) => {
  const { client, pool } = mockedClient(t)
  pool
    .intercept({ path: '/html', method: 'GET' })
    .reply(200, '<html>maintenance</html>', { headers: { 'content-type': 'text/html' } })
  pool.intercept({ path: '/latin1', method: 'GET' }).reply(200, Buffer.from([0x22, 0xe9, 0x22]))
  pool
    .intercept({ path: '/shape', method: 'GET' })
    .reply(200, '{"id":"1"}', { headers: { ...json, 'x-request-id': 'r' } })

  for (const path of ['/html', '/latin1']) {
    const err = await upstreamError(t, client.request({ method: 'GET', path }))
    t.match(err, { reason: 'invalid_response', attempts: 1 }, path)
  }
  const shapeError = new Error('id must be a number')
  const err = await upstreamError(
    t,
    client.request({
      method: 'GET',
      path: '/shape',
      parse: (body) => {
        if (typeof (body as { id: unknown }).id !== 'number') throw shapeError
        return body
      },
    }),
  )
  t.match(err, { reason: 'invalid_response', status: 200, requestId: 'r', attempts: 1 })
  t.equal(err.cause, shapeError)
})

void t.test('an empty success body (204 or content-length 0) is undefined', async (t) => {
  const { client, pool } = mockedClient(t)
  pool.intercept({ path: '/x', method: 'DELETE' }).reply(204, '')
  pool.intercept({ path: '/y', method: 'PUT' }).reply(200, '', { headers: { 'content-length': '0' } })
  t.equal((await client.request({ method: 'DELETE', path: '/x' })).body, undefined)
  t.equal((await client.request({ method: 'PUT', path: '/y', body: { a: 1 } })).body, undefined)
})

void t.test('error bodies are kept to their first 4 KiB', async (t) => {
  const { client, pool } = mockedClient(t)
  pool
    .intercept({ path: '/x', method: 'GET' })
    .reply(422, JSON.stringify({ errors: 'e'.repeat(10_000) }), { headers: json })
  const err = await upstreamError(t, client.request({ method: 'GET', path: '/x' }))
  t.equal(typeof err.body, 'string', 'a cut JSON body is kept as text')
  t.equal((err.body as string).length, 4096)
})

void t.test('rate-limit budget: once Remaining hits 0, the next request waits for the reset', async (t) => {
  const { client, pool, clock } = mockedClient(t)
  const sentAt: number[] = []
  pool
    .intercept({ path: '/x', method: 'GET' })
    .reply(() => {
      sentAt.push(clock.now())
      return {
        statusCode: 200,
        data: '{}',
        responseOptions: { headers: { 'x-rate-limit-remaining': '0', 'x-rate-limit-reset': resetIn(30) } },
      }
    })
    .times(2)
  pool.intercept({ path: '/other', method: 'GET' }).reply(200, '{}')

  await client.request({ method: 'GET', path: '/x', concurrencyKey: 'company-1' })
  await client.request({ method: 'GET', path: '/other', concurrencyKey: 'company-2' })
  t.strictSame(clock.sleeps, [], 'another company’s budget is its own')
  const res = await client.request({ method: 'GET', path: '/x', concurrencyKey: 'company-1' })
  t.equal(res.attempts, 1, 'waiting for the budget is not a retry')
  t.equal(clock.sleeps.length, 1)
  t.ok(clock.sleeps[0]! >= 30_000, `slept ${clock.sleeps[0]} ms`)
  t.ok(sentAt[1]! >= START + 30_000, 'the second request went out after the reset')
})

void t.test('rate-limit budget: a reset beyond maxWaitMs fails at once with retryAt, sending nothing', async (t) => {
  const { client, pool, mock, clock } = mockedClient(t)
  pool
    .intercept({ path: '/x', method: 'GET' })
    .reply(200, '{}', { headers: { 'x-rate-limit-remaining': '0', 'x-rate-limit-reset': resetIn(3600) } })
  pool.intercept({ path: '/x', method: 'GET' }).reply(200, '{}')

  await client.request({ method: 'GET', path: '/x', concurrencyKey: 'c' })
  const err = await upstreamError(t, client.request({ method: 'GET', path: '/x', concurrencyKey: 'c' }))
  t.match(err, { reason: 'rate_limited', attempts: 0, retryAt: START + 3_600_000 })
  t.strictSame(clock.sleeps, [])
  t.equal(mock.pendingInterceptors().length, 1, 'the second request was never sent')
})

void t.test('a budget of 2 lets two requests through, then waits', async (t) => {
  const { client, pool, clock } = mockedClient(t)
  pool
    .intercept({ path: '/x', method: 'GET' })
    .reply(200, '{}', { headers: { 'x-rate-limit-remaining': '2', 'x-rate-limit-reset': resetIn(10) } })
  pool.intercept({ path: '/x', method: 'GET' }).reply(200, '{}').times(3)

  for (let i = 0; i < 3; i++) await client.request({ method: 'GET', path: '/x' })
  t.strictSame(clock.sleeps, [], 'the first three fit: one learnt the budget, two spent it')
  await client.request({ method: 'GET', path: '/x' })
  t.equal(clock.sleeps.length, 1)
  t.ok(clock.sleeps[0]! >= 10_000)
})

void t.test('a 429 without Remaining still spends the budget, even when the request is not retried', async (t) => {
  const { client, pool, clock } = mockedClient(t)
  const sentAt: number[] = []
  pool.intercept({ path: '/x', method: 'POST' }).reply(() => {
    sentAt.push(clock.now())
    return { statusCode: 429, data: '', responseOptions: { headers: { 'x-rate-limit-reset': resetIn(20) } } }
  })
  pool.intercept({ path: '/x', method: 'GET' }).reply(() => {
    sentAt.push(clock.now())
    return { statusCode: 200, data: '{}' }
  })

  t.match(await upstreamError(t, client.request({ method: 'POST', path: '/x', body: {} })), {
    reason: 'rate_limited',
    attempts: 1,
  })
  await client.request({ method: 'GET', path: '/x' })
  t.ok(sentAt[1]! >= START + 20_000, 'the next request waited for the reset')
})

void t.test('secrets stay out of errors and logs: no query string, no headers, no bodies', async (t) => {
  const { client, pool, logs } = mockedClient(t, { retry: { maxAttempts: 2 } })
  pool
    .intercept({ path: '/oauth/token?client_secret=s3cret', method: 'POST' })
    .reply(503, '{"token":"leaked?"}')
    .times(2)

  const err = await upstreamError(
    t,
    client.request({
      method: 'POST',
      path: '/oauth/token',
      query: { client_secret: 's3cret' },
      headers: { authorization: 'Bearer tok3n' },
      body: { refresh_token: 'r3fresh' },
      idempotent: true,
    }),
  )
  t.equal(err.url, `${ORIGIN}/oauth/token`)
  const logged = JSON.stringify(logs.lines) + err.message
  t.match(logs.lines[0], { msg: 'retrying', url: '/oauth/token' })
  for (const secret of ['s3cret', 'tok3n', 'r3fresh', 'leaked?']) t.notMatch(logged, secret, `${secret} not logged`)

  pool.intercept({ path: '/files?token=s3cret', method: 'GET' }).reply(404, '')
  const inline = await upstreamError(t, client.request({ method: 'GET', path: `${ORIGIN}/files?token=s3cret` }))
  t.equal(inline.url, `${ORIGIN}/files`, 'a query written into the path is dropped too')
})

void t.test('an abort during a retry wait stops at once, with the caller’s reason', async (t) => {
  const controller = new AbortController()
  const stop = new Error('shutting down')
  const { client, pool, mock } = mockedClient(t, {
    sleep: () => {
      controller.abort(stop)
      return new Promise(() => {}) // never wakes: only the abort can end the wait
    },
  })
  pool.intercept({ path: '/x', method: 'GET' }).reply(503, '')
  pool.intercept({ path: '/x', method: 'GET' }).reply(200, '{}')

  await t.rejects(client.request({ method: 'GET', path: '/x', signal: controller.signal }), stop)
  t.equal(mock.pendingInterceptors().length, 1, 'no request after the abort')
})

void t.test('an already aborted signal sends nothing; the caller’s reason comes back', async (t) => {
  const { client, pool, mock } = mockedClient(t)
  pool.intercept({ path: '/x', method: 'GET' }).reply(200, '{}')
  const stop = new Error('deadline')
  await t.rejects(client.request({ method: 'GET', path: '/x', signal: AbortSignal.abort(stop) }), stop)
  t.equal(mock.pendingInterceptors().length, 1)
})

void t.test(
  'collectUpstreamIds: the last request id of each upstream, in every enclosing collection, nothing outside',
  async (t) => {
    const { collectUpstreamIds } = await import('../../src/http/upstream-ids.js')
    const { client, pool } = mockedClient(t, { traceAs: 'procore' })
    for (const id of ['req-a', 'req-b', 'req-c'])
      pool
        .intercept({ path: '/rest/v1.0/me', method: 'GET' })
        .reply(200, {}, { headers: { ...json, 'X-Request-Id': id } })
    pool.intercept({ path: '/rest/v1.0/me', method: 'GET' }).reply(200, {}, { headers: json })

    await client.request({ method: 'GET', path: '/rest/v1.0/me' })
    const outer = await collectUpstreamIds(async () => {
      const inner = await collectUpstreamIds(() => client.request({ method: 'GET', path: '/rest/v1.0/me' }))
      t.same(inner.ids, { procore: 'req-b' }, 'the inner collection sees its own call')
      await client.request({ method: 'GET', path: '/rest/v1.0/me' })
      // A response without the header leaves the last id in place.
      await client.request({ method: 'GET', path: '/rest/v1.0/me' })
    })
    t.same(outer.ids, { procore: 'req-c' }, 'the outer one sees the last, the call before it started is not in it')
  },
)
