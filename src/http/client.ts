import { setTimeout as delay } from 'node:timers/promises'
import type { Logger } from 'pino'
import { Agent, type Dispatcher } from 'undici'
import {
  UpstreamError,
  reasonForErrorCode,
  reasonForStatus,
  type UpstreamErrorInit,
  type UpstreamSide,
} from './errors.js'
import type { CircuitBreakers } from './breaker.js'
import { flattenHeaders, lowerCaseNames, nextLink, wholeNumber } from './headers.js'
import { parseJson, stringifyJson } from './json.js'
import { ConcurrencyLimiter, RateBudgets } from './limits.js'
import { decideRetry, retryAfterMs } from './retry.js'
import { noteUpstreamId } from './upstream-ids.js'

export interface HttpClientOptions {
  /** e.g. 'https://api.procore.com'; relative request paths are appended to it */
  baseUrl: string
  /** extra host[:port] values allowed for absolute URLs (Link next pages). Default: only baseUrl's host. */
  allowedHosts?: string[]
  /** Default: an undici Agent with the timeouts below. An injected one is not closed by close(),
   * and only headersMs / bodyMs apply to it (connectMs is an Agent option). */
  dispatcher?: Dispatcher
  /** bodyMs is the longest silence between body chunks (undici's bodyTimeout). Defaults 5000 / 15000 / 30000. */
  timeouts?: { connectMs?: number; headersMs?: number; bodyMs?: number }
  /** Default 10 MiB; a larger body fails with reason 'too_large'. */
  maxResponseBytes?: number
  /** Defaults 5 attempts, 250 ms base, 20 s cap, 120 s longest wait before giving up with retryAt. */
  retry?: { maxAttempts?: number; baseDelayMs?: number; maxDelayMs?: number; maxWaitMs?: number }
  /** Requests in flight per concurrencyKey (requests without a key share one). Default 4. */
  maxConcurrency?: number
  defaultHeaders?: Record<string, string>
  /** Retries are logged at warn; headers and bodies never are. */
  logger?: Logger
  sleep?: (ms: number) => Promise<void>
  /** epoch ms */
  now?: () => number
  /** in [0, 1), for jitter */
  random?: () => number
  /** Name under which response request ids are noted for collectUpstreamIds ('procore', 'erp'). */
  traceAs?: string
  /** Set on every UpstreamError this client throws, so whoever reports it can name the upstream. */
  side?: UpstreamSide
  /**
   * Circuit breakers shared across clients: requests with a concurrencyKey go through the circuit
   * `<side>:<concurrencyKey>` (e.g. 'erp:<companyId>'), which fails them fast while that upstream is failing.
   */
  breakers?: CircuitBreakers | undefined
}

export interface HttpRequest<T = unknown> {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'
  /** relative to baseUrl ('/rest/v1.0/…'), or an absolute URL on an allowed host */
  path: string
  /** arrays encode as key[]=a&key[]=b (Procore style) */
  query?: Record<string, string | number | boolean | bigint | Array<string | number | bigint> | undefined>
  headers?: Record<string, string>
  /** JSON-encoded; bigint is written as a bare integer */
  body?: unknown
  /**
   * Default true for GET/PUT/DELETE, false for POST/PATCH. Set true for writes keyed by origin_id or an
   * Idempotency-Key.
   */
  idempotent?: boolean
  /** e.g. the company id: bounded concurrency and a rate-limit budget per key */
  concurrencyKey?: string
  /** validates/converts the JSON body; throwing fails the request with reason 'invalid_response' */
  parse?: (body: unknown) => T
  signal?: AbortSignal
}

export interface HttpResponse<T> {
  status: number
  /** lower-case names */
  headers: Record<string, string>
  /** undefined when the upstream sent no body */
  body: T
  requestId: string | undefined
  attempts: number
}

type Query = NonNullable<HttpRequest['query']>
type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>

interface Target {
  origin: string
  /** pathname and query, as sent */
  path: string
  /** origin and pathname: safe to put in errors (the query may carry secrets) */
  safeUrl: string
  pathname: string
}

interface Prepared {
  method: HttpRequest['method']
  target: Target
  headers: Record<string, string>
  body: string | undefined
  key: string
  signal: AbortSignal | undefined
}

type Attempt =
  | { ok: true; status: number; headers: Record<string, string>; body: unknown; requestId: string | undefined }
  | {
      ok: false
      status?: number
      headers?: Record<string, string>
      errorCode?: string
      error: Omit<UpstreamErrorInit, 'attempts'>
    }

const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'PUT', 'DELETE'])
const ERROR_BODY_BYTES = 4096
const ABSOLUTE_URL = /^[a-z][a-z\d+.-]*:\/\//i

export class HttpClient {
  readonly #base: URL
  readonly #allowedHosts: ReadonlySet<string>
  readonly #dispatcher: Dispatcher
  readonly #ownsDispatcher: boolean
  readonly #headersTimeout: number
  readonly #bodyTimeout: number
  readonly #maxResponseBytes: number
  readonly #retry: { maxAttempts: number; baseDelayMs: number; maxDelayMs: number; maxWaitMs: number }
  readonly #defaultHeaders: Record<string, string>
  readonly #logger: Logger | undefined
  readonly #sleep: Sleep
  readonly #now: () => number
  readonly #random: () => number
  readonly #limiter: ConcurrencyLimiter
  readonly #budgets = new RateBudgets()
  readonly #traceAs: string | undefined
  readonly #side: UpstreamSide | undefined
  readonly #breakers: CircuitBreakers | undefined

  constructor(opts: HttpClientOptions) {
    this.#base = new URL(opts.baseUrl)
    if (this.#base.protocol !== 'https:' && this.#base.protocol !== 'http:')
      throw new TypeError('baseUrl must be http(s)')
    const hosts = (opts.allowedHosts ?? []).map((host) => new URL(`${this.#base.protocol}//${host}`).host)
    this.#allowedHosts = new Set([this.#base.host, ...hosts])

    const timeouts = { connectMs: 5000, headersMs: 15_000, bodyMs: 30_000, ...opts.timeouts }
    this.#headersTimeout = timeouts.headersMs
    this.#bodyTimeout = timeouts.bodyMs
    this.#ownsDispatcher = opts.dispatcher === undefined
    this.#dispatcher =
      opts.dispatcher ??
      new Agent({
        connect: { timeout: timeouts.connectMs },
        headersTimeout: timeouts.headersMs,
        bodyTimeout: timeouts.bodyMs,
      })

    this.#maxResponseBytes = opts.maxResponseBytes ?? 10 * 1024 * 1024
    this.#retry = { maxAttempts: 5, baseDelayMs: 250, maxDelayMs: 20_000, maxWaitMs: 120_000, ...opts.retry }
    if (!Number.isInteger(this.#retry.maxAttempts) || this.#retry.maxAttempts < 1) {
      throw new RangeError('retry.maxAttempts must be a positive integer')
    }
    this.#limiter = new ConcurrencyLimiter(opts.maxConcurrency ?? 4)
    this.#defaultHeaders = lowerCaseNames(opts.defaultHeaders ?? {})
    this.#logger = opts.logger
    this.#sleep = opts.sleep ?? ((ms, signal) => delay(ms, undefined, signal === undefined ? {} : { signal }))
    this.#now = opts.now ?? Date.now
    this.#random = opts.random ?? Math.random
    this.#traceAs = opts.traceAs
    this.#side = opts.side
    this.#breakers = opts.breakers
  }

  async request<T>(req: HttpRequest<T>): Promise<HttpResponse<T>> {
    const body = req.body === undefined ? undefined : stringifyJson(req.body)
    const prepared: Prepared = {
      method: req.method,
      target: this.#resolve(req.method, req.path, req.query),
      headers: { accept: 'application/json', ...this.#defaultHeaders, ...lowerCaseNames(req.headers ?? {}) },
      body,
      key: req.concurrencyKey ?? '',
      signal: req.signal,
    }
    if (body !== undefined) prepared.headers['content-type'] ??= 'application/json'
    const idempotent = req.idempotent ?? IDEMPOTENT_METHODS.has(req.method)
    const logFields = { component: 'http', method: req.method, url: prepared.target.pathname }

    const circuit =
      this.#breakers !== undefined && req.concurrencyKey !== undefined
        ? `${this.#side ?? 'http'}:${req.concurrencyKey}`
        : undefined

    for (let attempt = 1; ; attempt++) {
      if (circuit !== undefined) this.#admit(circuit, prepared, attempt - 1)
      let result: Attempt
      try {
        result = await this.#limiter.run(prepared.key, async () => {
          // The signal may have fired while this request queued for a slot.
          req.signal?.throwIfAborted()
          await this.#waitForBudget(prepared, attempt - 1)
          return this.#attempt(prepared, attempt)
        })
      } catch (error) {
        // Aborted, refused before sending, or an answer we could not use: nothing said about the upstream's health.
        if (circuit !== undefined) this.#breakers?.release(circuit)
        throw error
      }
      if (circuit !== undefined) this.#judge(circuit, result, logFields)
      if (result.ok) {
        if (this.#traceAs !== undefined) noteUpstreamId(this.#traceAs, result.requestId)
        const { ok: _ok, ...response } = result
        return { ...response, body: parseBody(req, prepared.target, result, attempt, this.#side), attempts: attempt }
      }

      const decision = decideRetry({
        method: req.method,
        idempotent,
        attempt,
        ...this.#retry,
        status: result.status,
        headers: result.headers,
        errorCode: result.errorCode,
        now: this.#now(),
        random: this.#random(),
      })
      if (!decision.retry) {
        const error = new UpstreamError({
          ...result.error,
          side: this.#side,
          attempts: attempt,
          retryAt: decision.retryAt,
          retryAfterMs: result.headers === undefined ? undefined : retryAfterMs(result.headers, this.#now()),
        })
        // Final statuses (404, 422, …) are the caller's to report; giving up on a transient failure is ours.
        if (error.retryable) this.#logger?.warn({ ...logFields, attempt, reason: decision.reason }, 'giving up')
        throw error
      }
      this.#logger?.warn({ ...logFields, attempt, reason: decision.reason }, 'retrying')
      await this.#wait(decision.delayMs, req.signal)
    }
  }

  /**
   * Yields each page's items: follows `Link: <…>; rel="next"` (host-checked), otherwise asks for
   * page 2, 3, … while the items seen are fewer than the `Total` header.
   */
  async *paginate<T>(req: HttpRequest<T[]> & { perPage?: number }): AsyncGenerator<T[]> {
    const { perPage, query, ...rest } = req
    const pageQuery = (page: number): Query => ({
      ...query,
      page,
      ...(perPage === undefined ? {} : { per_page: perPage }),
    })
    const visited = new Set<string>()
    let page = 1
    let seen = 0
    let next: HttpRequest<T[]> | undefined = { ...rest, query: pageQuery(page) }
    while (next !== undefined) {
      const target = this.#resolve(next.method, next.path, next.query)
      const url = target.origin + target.path
      if (visited.has(url)) throw this.#invalidResponse(next.method, target, 'pagination loops back to a visited page')
      visited.add(url)

      const response: HttpResponse<T[]> = await this.request(next)
      if (!Array.isArray(response.body))
        throw this.#invalidResponse(next.method, target, 'page body is not an array', response)
      yield response.body
      seen += response.body.length
      page++

      const link = nextLink(response.headers['link'])
      const total = wholeNumber(response.headers['total'])
      if (link !== undefined) {
        const { query: _query, ...withoutQuery } = next
        const nextUrl = URL.parse(link, url)
        if (nextUrl === null) throw this.#invalidResponse(next.method, target, 'Link next is not a URL', response)
        next = { ...withoutQuery, path: nextUrl.href }
      } else if (total !== undefined && seen < total && response.body.length > 0) {
        next = { ...rest, query: pageQuery(page) }
      } else {
        next = undefined
      }
    }
  }

  async close(): Promise<void> {
    if (this.#ownsDispatcher) await this.#dispatcher.close()
  }

  #resolve(method: string, path: string, query: Query | undefined): Target {
    const url = ABSOLUTE_URL.test(path)
      ? new URL(path)
      : new URL(`${this.#base.origin}${this.#base.pathname.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`)
    const safeUrl = url.origin + url.pathname
    // Checked on every URL, so neither a caller nor an upstream Link header can point us elsewhere.
    if (url.protocol !== this.#base.protocol || !this.#allowedHosts.has(url.host)) {
      throw new UpstreamError({ reason: 'host_not_allowed', side: this.#side, method, url: safeUrl, attempts: 0 })
    }
    const search = [url.search.slice(1), encodeQuery(query)].filter((part) => part !== '').join('&')
    return {
      origin: url.origin,
      path: url.pathname + (search === '' ? '' : `?${search}`),
      safeUrl,
      pathname: url.pathname,
    }
  }

  /** Fails fast, without sending, while the circuit is open (or its one probe is out). */
  #admit(circuit: string, prepared: Prepared, sent: number): void {
    const admission = this.#breakers!.admit(circuit)
    if (admission.allowed) return
    throw new UpstreamError({
      reason: 'circuit_open',
      side: this.#side,
      method: prepared.method,
      url: prepared.target.safeUrl,
      attempts: sent,
      retryAt: admission.retryAt,
    })
  }

  /** No answer, a timeout or a 5xx counts against the circuit; any other answer (4xx, 429 included) closes it. */
  #judge(circuit: string, result: Attempt, logFields: Record<string, string>): void {
    const breakers = this.#breakers!
    const failed = !result.ok && (result.status === undefined || result.status === 408 || (result.status ?? 0) >= 500)
    if (!failed) {
      breakers.success(circuit)
      return
    }
    if (breakers.failure(circuit)) {
      this.#logger?.warn(
        { ...logFields, side: this.#side, openMs: breakers.openMs },
        'upstream failing: circuit open, calls fail fast until the next probe',
      )
    }
  }

  /** The rate-limit budget this client last saw for a key (X-Rate-Limit-Remaining and -Reset), if still current. */
  rateBudget(key: string): { remaining: number; resetAt: number } | undefined {
    return this.#budgets.peek(key, this.#now())
  }

  /** Waits while this key's rate-limit budget is spent; no request goes out before the reset. */
  async #waitForBudget(prepared: Prepared, sent: number): Promise<void> {
    for (;;) {
      const waitMs = this.#budgets.take(prepared.key, this.#now())
      if (waitMs === 0) return
      if (waitMs > this.#retry.maxWaitMs) {
        throw new UpstreamError({
          reason: 'rate_limited',
          side: this.#side,
          method: prepared.method,
          url: prepared.target.safeUrl,
          attempts: sent,
          retryAt: this.#now() + waitMs,
        })
      }
      this.#logger?.debug(
        { component: 'http', method: prepared.method, url: prepared.target.pathname, waitMs },
        'rate-limit budget spent, waiting for the reset',
      )
      await this.#wait(waitMs + Math.floor(this.#random() * this.#retry.baseDelayMs), prepared.signal)
    }
  }

  async #attempt(prepared: Prepared, attempt: number): Promise<Attempt> {
    const { method, target, signal } = prepared
    let response: Dispatcher.ResponseData
    try {
      response = await this.#dispatcher.request({
        origin: target.origin,
        path: target.path,
        method,
        headers: prepared.headers,
        body: prepared.body ?? null,
        headersTimeout: this.#headersTimeout,
        bodyTimeout: this.#bodyTimeout,
        signal: signal ?? null,
      })
    } catch (err) {
      return transportFailure(err, prepared)
    }

    const status = response.statusCode
    const headers = flattenHeaders(response.headers)
    const requestId = headers['x-request-id']
    this.#budgets.observe(prepared.key, status, headers, this.#now())
    const error = { reason: reasonForStatus(status), side: this.#side, method, url: target.safeUrl, status, requestId }

    // 3xx land here too: redirects are never followed (decideRetry calls them final).
    if (status < 200 || status >= 300) {
      return { ok: false, status, headers, error: { ...error, body: await readErrorBody(response.body) } }
    }

    const declared = wholeNumber(headers['content-length'])
    if (declared !== undefined && declared > this.#maxResponseBytes) {
      response.body.destroy()
      throw new UpstreamError({ ...error, reason: 'too_large', attempts: attempt })
    }
    let read: { bytes: Buffer; truncated: boolean }
    try {
      read = await readCapped(response.body, this.#maxResponseBytes)
    } catch (err) {
      return transportFailure(err, prepared)
    }
    if (read.truncated) throw new UpstreamError({ ...error, reason: 'too_large', attempts: attempt })
    if (read.bytes.length === 0) return { ok: true, status, headers, body: undefined, requestId }
    try {
      return { ok: true, status, headers, body: parseJson(utf8.decode(read.bytes)), requestId }
    } catch (cause) {
      throw new UpstreamError({ ...error, reason: 'invalid_response', attempts: attempt, cause })
    }
  }

  #invalidResponse(method: string, target: Target, why: string, response?: HttpResponse<unknown>): UpstreamError {
    return new UpstreamError({
      reason: 'invalid_response',
      side: this.#side,
      method,
      url: target.safeUrl,
      status: response?.status,
      requestId: response?.requestId,
      attempts: response?.attempts ?? 0,
      cause: new Error(why),
    })
  }

  async #wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
    if (signal === undefined) return this.#sleep(ms)
    signal.throwIfAborted()
    // An injected sleep cannot be cancelled, so race it against the caller's abort.
    let onAbort = (): void => {}
    const aborted = new Promise<never>((_resolve, reject) => {
      onAbort = () => reject(signal.reason as Error)
      signal.addEventListener('abort', onAbort, { once: true })
    })
    try {
      await Promise.race([this.#sleep(ms, signal), aborted])
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

function parseBody<T>(
  req: HttpRequest<T>,
  target: Target,
  result: Extract<Attempt, { ok: true }>,
  attempts: number,
  side: UpstreamSide | undefined,
): T {
  if (req.parse === undefined) return result.body as T
  try {
    return req.parse(result.body)
  } catch (cause) {
    throw new UpstreamError({
      reason: 'invalid_response',
      side,
      method: req.method,
      url: target.safeUrl,
      status: result.status,
      requestId: result.requestId,
      attempts,
      cause,
    })
  }
}

/**
 * Maps a network-level error to a failure decideRetry can judge; anything else (a caller's abort, a bug) is
 * rethrown.
 */
function transportFailure(err: unknown, prepared: Prepared): Attempt {
  // Some socket errors arrive wrapped, with the system error as the cause.
  const cause = typeof err === 'object' && err !== null && 'cause' in err ? err.cause : undefined
  for (const candidate of [err, cause]) {
    const code = typeof candidate === 'object' && candidate !== null && 'code' in candidate ? candidate.code : undefined
    if (typeof code !== 'string') continue
    const reason = reasonForErrorCode(code)
    if (reason !== undefined) {
      return {
        ok: false,
        errorCode: code,
        error: { reason, method: prepared.method, url: prepared.target.safeUrl, cause: err },
      }
    }
  }
  throw err
}

async function readCapped(
  body: Dispatcher.ResponseData['body'],
  limit: number,
): Promise<{ bytes: Buffer; truncated: boolean }> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (size + chunk.length > limit) {
      chunks.push(chunk.subarray(0, limit - size))
      // Leaving the loop destroys the stream: the rest is never downloaded.
      return { bytes: Buffer.concat(chunks), truncated: true }
    }
    chunks.push(chunk)
    size += chunk.length
  }
  return { bytes: Buffer.concat(chunks, size), truncated: false }
}

/** The first 4 KiB of an error body: parsed when it is complete JSON, else as text. */
async function readErrorBody(body: Dispatcher.ResponseData['body']): Promise<unknown> {
  try {
    const { bytes, truncated } = await readCapped(body, ERROR_BODY_BYTES)
    if (bytes.length === 0) return undefined
    const text = bytes.toString('utf8')
    if (truncated) return text
    try {
      return parseJson(text)
    } catch {
      return text
    }
  } catch {
    return undefined // the status already says what went wrong
  }
}

function encodeQuery(query: Query | undefined): string {
  const pairs: string[] = []
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined) continue
    if (Array.isArray(value)) {
      const name = encodeURIComponent(key.endsWith('[]') ? key : `${key}[]`)
      for (const item of value) pairs.push(`${name}=${encodeURIComponent(String(item))}`)
    } else {
      pairs.push(`${encodeURIComponent(key)}=${encodeURIComponent(String(value))}`)
    }
  }
  return pairs.join('&')
}
