import assert from 'node:assert/strict'
import fc from 'fast-check'
import t from 'tap'
import { backoffDelay, decideRetry, type RetryInput } from '../../src/http/retry.js'

const NOW = 1_700_000_000_000
const base: RetryInput = {
  method: 'GET',
  idempotent: true,
  attempt: 1,
  maxAttempts: 5,
  now: NOW,
  random: 0.5,
  baseDelayMs: 250,
  maxDelayMs: 20_000,
  maxWaitMs: 120_000,
}
const decide = (input: Partial<RetryInput>) => decideRetry({ ...base, ...input })

void t.test('429 waits for X-Rate-Limit-Reset (Unix seconds), plus jitter', (t) => {
  const reset = String(NOW / 1000 + 40)
  const decision = decide({ status: 429, headers: { 'x-rate-limit-reset': reset, 'retry-after': '5' } })
  t.equal(decision.retry, true)
  t.equal(decision.delayMs, 40_000 + 125, 'until the reset, then 0.5 × base of jitter')
  t.equal(decision.reason, `429: waiting for X-Rate-Limit-Reset ${reset}`)
  t.end()
})

void t.test('429 falls back to Retry-After, then to backoff', (t) => {
  t.strictSame(decide({ status: 429, headers: { 'retry-after': '7' } }), {
    retry: true,
    delayMs: 7000,
    reason: '429 Retry-After 7s',
  })
  const pastReset = String(NOW / 1000 - 1)
  t.strictSame(
    decide({ status: 429, headers: { 'x-rate-limit-reset': pastReset } }),
    { retry: true, delayMs: 250, reason: '429, attempt 1/5, backoff 250ms' },
    'a reset in the past is ignored',
  )
  t.strictSame(decide({ status: 429, headers: {} }), {
    retry: true,
    delayMs: 250,
    reason: '429, attempt 1/5, backoff 250ms',
  })
  t.end()
})

void t.test('503 honours Retry-After beyond 30 s, in seconds or as an HTTP date', (t) => {
  t.strictSame(decide({ status: 503, headers: { 'retry-after': '120' } }), {
    retry: true,
    delayMs: 120_000,
    reason: '503 Retry-After 120s',
  })
  const date = new Date(NOW + 90_000).toUTCString()
  const decision = decide({ status: 502, headers: { 'retry-after': date } })
  t.equal(decision.delayMs, 90_000)
  t.equal(decision.reason, `502 Retry-After ${date} (90000ms)`)
  t.equal(decide({ status: 504, headers: { 'retry-after': 'soon' } }).delayMs, 250, 'garbage → backoff')
  t.equal(decide({ status: 500, headers: { 'retry-after': '60' } }).delayMs, 250, '500 is backed off, not told')
  t.end()
})

void t.test('a wait beyond maxWaitMs is not slept: the decision carries retryAt instead', (t) => {
  const decision = decide({ status: 503, headers: { 'retry-after': '600' } })
  t.strictSame(decision, {
    retry: false,
    delayMs: 600_000,
    reason: 'not retrying: 503 Retry-After 600s exceeds maxWaitMs 120000',
    retryAt: NOW + 600_000,
  })
  const hourly = decide({ status: 429, headers: { 'x-rate-limit-reset': String(NOW / 1000 + 3600) } })
  t.equal(hourly.retry, false)
  t.equal(hourly.retryAt, NOW + 3_600_000 + 125)
  t.end()
})

void t.test('connection errors and timeouts are backed off', (t) => {
  t.strictSame(decide({ errorCode: 'ECONNRESET', attempt: 2, random: 0.731 }), {
    retry: true,
    delayMs: 731,
    reason: 'ECONNRESET, attempt 2/5, backoff 731ms',
  })
  for (const errorCode of ['ECONNREFUSED', 'UND_ERR_SOCKET', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']) {
    t.equal(decide({ errorCode }).retry, true, errorCode)
  }
  t.strictSame(decide({ errorCode: 'ERR_INVALID_ARG_TYPE' }), {
    retry: false,
    delayMs: 0,
    reason: 'not retrying: ERR_INVALID_ARG_TYPE is not a transport error',
  })
  t.end()
})

void t.test('final statuses, non-idempotent methods and the last attempt are not retried', (t) => {
  t.strictSame(decide({ status: 404 }), { retry: false, delayMs: 0, reason: 'not retrying: 404 is final' })
  t.strictSame(decide({ status: 422, method: 'POST', idempotent: false }), {
    retry: false,
    delayMs: 0,
    reason: 'not retrying: 422 is final',
  })
  t.strictSame(decide({ status: 503, method: 'POST', idempotent: false }), {
    retry: false,
    delayMs: 0,
    reason: 'not retrying: POST is not idempotent',
  })
  t.strictSame(decide({ errorCode: 'ECONNRESET', method: 'PATCH', idempotent: false }), {
    retry: false,
    delayMs: 0,
    reason: 'not retrying: PATCH is not idempotent',
  })
  t.equal(decide({ status: 503, method: 'POST', idempotent: true }).retry, true, 'a keyed POST is retried')
  t.strictSame(decide({ status: 500, attempt: 5 }), {
    retry: false,
    delayMs: 0,
    reason: 'not retrying: 500 on attempt 5/5, the last',
  })
  t.equal(decide({ status: 408 }).retry, true, '408 is a timeout, not a final 4xx')
  t.end()
})

void t.test('full jitter: spread over [0, min(cap, base · 2^attempt))', (t) => {
  const delays = [0, 0.25, 0.5, 0.999].map((random) => backoffDelay(3, random, 250, 20_000))
  t.strictSame(delays, [0, 500, 1000, 1998])
  t.equal(new Set(delays).size, delays.length, 'different random values give different delays')
  t.equal(backoffDelay(20, 0.999, 250, 20_000), 19_980, 'capped at maxDelayMs')
  t.end()
})

void t.test('properties: retries are bounded, idempotent, transient and within maxWaitMs', (t) => {
  const headerValue = fc.oneof(fc.constant(undefined), fc.nat({ max: 4000 }).map(String), fc.string())
  fc.assert(
    fc.property(
      fc.record({
        idempotent: fc.boolean(),
        attempt: fc.integer({ min: 1, max: 10 }),
        maxAttempts: fc.integer({ min: 1, max: 10 }),
        status: fc.option(fc.integer({ min: 300, max: 599 }), { nil: undefined }),
        errorCode: fc.constantFrom('ECONNRESET', 'UND_ERR_BODY_TIMEOUT', 'EWHATEVER'),
        random: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        maxWaitMs: fc.integer({ min: 0, max: 300_000 }),
        retryAfter: headerValue,
        reset: headerValue.map((v) => (v === undefined ? v : String(NOW / 1000 + Number(v)))),
      }),
      (input) => {
        const headers: Record<string, string> = {}
        if (input.retryAfter !== undefined) headers['retry-after'] = input.retryAfter
        if (input.reset !== undefined) headers['x-rate-limit-reset'] = input.reset
        const decision = decide({
          ...input,
          errorCode: input.status === undefined ? input.errorCode : undefined,
          headers,
        })
        assert.ok(decision.delayMs >= 0 && Number.isInteger(decision.delayMs))
        if (decision.retry) {
          assert.ok(input.idempotent)
          assert.ok(input.attempt < input.maxAttempts)
          assert.ok(decision.delayMs <= input.maxWaitMs)
          assert.ok(input.status === undefined || input.status === 408 || input.status === 429 || input.status >= 500)
          assert.equal(decision.retryAt, undefined)
        } else {
          assert.match(decision.reason, /^not retrying: /)
          if (decision.retryAt !== undefined)
            assert.ok(decision.retryAt === NOW + decision.delayMs && decision.delayMs > input.maxWaitMs)
        }
      },
    ),
    { numRuns: 2000 },
  )
  t.end()
})
