// Whether and when to retry a failed attempt. Pure: the clock and the jitter are inputs,
// so every decision, and the reason logged with it, can be tested in isolation.

import { reasonForErrorCode } from './errors.js'
import { wholeNumber } from './headers.js'

export interface RetryInput {
  method: string
  idempotent: boolean
  /** 1-based number of the attempt that just failed */
  attempt: number
  maxAttempts: number
  /** the response status, when there was a response */
  status?: number | undefined
  /** response headers, lower-case names */
  headers?: Readonly<Record<string, string>> | undefined
  /** the error code, when no response came back (ECONNRESET, UND_ERR_HEADERS_TIMEOUT, …) */
  errorCode?: string | undefined
  /** epoch ms */
  now: number
  /** a fresh value in [0, 1) for jitter */
  random: number
  baseDelayMs: number
  maxDelayMs: number
  maxWaitMs: number
}

export interface RetryDecision {
  retry: boolean
  delayMs: number
  reason: string
  /** epoch ms: set when the upstream's wait exceeds maxWaitMs, so the caller can reschedule instead */
  retryAt?: number
}

const RETRY_AFTER_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504])

export function decideRetry(input: RetryInput): RetryDecision {
  const { status, errorCode, attempt, maxAttempts } = input
  const failure = status === undefined ? (errorCode ?? 'unknown error') : String(status)

  if (status !== undefined && !isRetryableStatus(status)) return stop(`${status} is final`)
  if (status === undefined && (errorCode === undefined || reasonForErrorCode(errorCode) === undefined)) {
    return stop(`${failure} is not a transport error`)
  }
  if (!input.idempotent) return stop(`${input.method} is not idempotent`)
  if (attempt >= maxAttempts) return stop(`${failure} on attempt ${attempt}/${maxAttempts}, the last`)

  const wait = upstreamWait(input) ?? backoff(input, failure)
  if (wait.delayMs > input.maxWaitMs) {
    return {
      retry: false,
      delayMs: wait.delayMs,
      reason: `not retrying: ${wait.reason} exceeds maxWaitMs ${input.maxWaitMs}`,
      retryAt: input.now + wait.delayMs,
    }
  }
  return { retry: true, ...wait }
}

/** Full jitter: uniform in [0, min(maxDelay, base * 2^attempt)). */
export function backoffDelay(attempt: number, random: number, baseDelayMs: number, maxDelayMs: number): number {
  return Math.floor(random * Math.min(maxDelayMs, baseDelayMs * 2 ** attempt))
}

function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500
}

function stop(why: string): RetryDecision {
  return { retry: false, delayMs: 0, reason: `not retrying: ${why}` }
}

function backoff(input: RetryInput, failure: string): { delayMs: number; reason: string } {
  const delayMs = backoffDelay(input.attempt, input.random, input.baseDelayMs, input.maxDelayMs)
  return { delayMs, reason: `${failure}, attempt ${input.attempt}/${input.maxAttempts}, backoff ${delayMs}ms` }
}

/** The wait the upstream asked for, if it asked (and it lies in the future). */
function upstreamWait(input: RetryInput): { delayMs: number; reason: string } | undefined {
  const { status, headers, now } = input
  if (status === undefined || headers === undefined || !RETRY_AFTER_STATUSES.has(status)) return undefined

  const reset = wholeNumber(headers['x-rate-limit-reset'])
  if (status === 429 && reset !== undefined) {
    const untilReset = reset * 1000 - now
    if (untilReset > 0) {
      // Jitter after the reset, so that every waiting worker does not hit the new window at once.
      const jitter = Math.floor(input.random * input.baseDelayMs)
      return { delayMs: untilReset + jitter, reason: `429: waiting for X-Rate-Limit-Reset ${reset}` }
    }
  }

  const delayMs = retryAfterMs(headers, now)
  if (delayMs === undefined) return undefined
  const asked = headers['retry-after']!
  const inSeconds = wholeNumber(asked) !== undefined
  return { delayMs, reason: `${status} Retry-After ${inSeconds ? `${asked}s` : `${asked} (${delayMs}ms)`}` }
}

/** The wait a `Retry-After` header asks for (seconds or an HTTP date), in ms; undefined when absent or past. */
export function retryAfterMs(headers: Record<string, string>, now: number): number | undefined {
  const retryAfter = headers['retry-after']
  if (retryAfter === undefined) return undefined
  const seconds = wholeNumber(retryAfter)
  const delayMs = seconds !== undefined ? seconds * 1000 : Date.parse(retryAfter) - now
  return delayMs > 0 ? delayMs : undefined
}
