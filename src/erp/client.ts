// The ERP Connector Protocol client (openapi/erp-connector.json) for one agent. All traffic goes
// through the shared HttpClient (src/http): its timeouts, jittered retries, Retry-After and
// rate-limit handling, host pinning (no redirects) and typed UpstreamErrors. This file only adds
// what the protocol says: paths, Idempotency-Key on POST, If-Match on PATCH, keyset pages,
// response validation and the mapping of the agent's problem+json to our errors.
import { setTimeout as delay } from 'node:timers/promises'
import type { Logger } from 'pino'
import type { Dispatcher } from 'undici'
import type { CircuitBreakers } from '../http/breaker.js'
import { HttpClient, type HttpClientOptions } from '../http/client.js'
import { UpstreamError } from '../http/errors.js'
import { parseCostTotals, type CostTotal } from './cost-totals.js'
import { ErpRefusedError, ErpStaleVersionError } from './errors.js'
import {
  asProblem,
  parseInfo,
  parsePage,
  parsePaymentPage,
  parseRecord,
  type ErpPayment,
  type ErpInfo,
  type ErpRecordJson,
  type ErpResource,
} from './protocol.js'

export interface ErpClientOptions {
  /** The agent's base URL, validated by the caller (src/erp/urls.ts). */
  baseUrl: string
  token: string
  /** Concurrency and rate-limit budgets are kept per key: the company id. */
  concurrencyKey: string
  dispatcher?: Dispatcher | undefined
  logger?: Logger | undefined
  retry?: HttpClientOptions['retry']
  timeouts?: HttpClientOptions['timeouts']
  /** Records asked for per list page (the agent may send fewer); at most 500. Default 500. */
  pageSize?: number
  /** How long to wait between tries while the agent reports the Idempotency-Key still in use. */
  sleep?: (ms: number) => Promise<void>
  /** The app's circuit breakers: this agent's circuit is 'erp:<concurrencyKey>'. None: every call is sent. */
  breakers?: CircuitBreakers | undefined
}

/** What a create answered: the record, and whether the agent replayed an earlier create of this key. */
export interface Created {
  record: ErpRecordJson
  replayed: boolean
}

const IN_USE_WAITS_MS = [1000, 2000, 4000]
const MAX_IN_USE_WAIT_MS = 10_000
/** An agent answering endless empty pages with fresh cursors is broken, not slow. */
const MAX_EMPTY_PAGES = 100

export function collectionPath(resource: ErpResource, jobId?: string | null): string {
  if (jobId !== undefined && jobId !== null) {
    if (resource !== 'cost-codes') throw new TypeError(`only cost codes are listed under a job, not ${resource}`)
    return `/v1/jobs/${encodeURIComponent(jobId)}/cost-codes`
  }
  return `/v1/${resource}`
}

export function recordPath(resource: ErpResource, id: string): string {
  return `/v1/${resource}/${encodeURIComponent(id)}`
}

export class ErpClient {
  readonly #http: HttpClient
  readonly #key: string
  readonly #pageSize: number
  readonly #sleep: (ms: number) => Promise<void>

  constructor(opts: ErpClientOptions) {
    this.#http = new HttpClient({
      baseUrl: opts.baseUrl,
      ...(opts.dispatcher !== undefined && { dispatcher: opts.dispatcher }),
      defaultHeaders: { authorization: `Bearer ${opts.token}` },
      traceAs: 'erp',
      side: 'erp',
      ...(opts.breakers !== undefined && { breakers: opts.breakers }),
      ...(opts.logger !== undefined && { logger: opts.logger }),
      ...(opts.retry !== undefined && { retry: opts.retry }),
      ...(opts.timeouts !== undefined && { timeouts: opts.timeouts }),
    })
    this.#key = opts.concurrencyKey
    this.#pageSize = Math.min(500, Math.max(1, opts.pageSize ?? 500))
    this.#sleep = opts.sleep ?? ((ms) => delay(ms))
  }

  /** `GET /v1/info`: the connection test. */
  async info(): Promise<ErpInfo> {
    const res = await this.#http.request({
      method: 'GET',
      path: '/v1/info',
      concurrencyKey: this.#key,
      parse: parseInfo,
    })
    return res.body
  }

  /** The record, or null when the agent answers 404. */
  async get(resource: ErpResource, id: string): Promise<ErpRecordJson | null> {
    try {
      const res = await this.#http.request({
        method: 'GET',
        path: recordPath(resource, id),
        concurrencyKey: this.#key,
        parse: (b) => parseRecord(resource, b),
      })
      return res.body
    } catch (error) {
      if (error instanceof UpstreamError && error.status === 404) return null
      throw error
    }
  }

  // ---- job cost totals (read-only) ----------------------------------------------------------

  /** `GET /v1/jobs/{jobId}/cost-totals`: the job's totals per cost code and cost type; null when the job is 404. */
  async costTotals(jobId: string): Promise<CostTotal[] | null> {
    try {
      const res = await this.#http.request({
        method: 'GET',
        path: `/v1/jobs/${encodeURIComponent(jobId)}/cost-totals`,
        concurrencyKey: this.#key,
        parse: parseCostTotals,
      })
      return res.body
    } catch (error) {
      if (error instanceof UpstreamError && error.status === 404) return null
      throw error
    }
  }

  /**
   * Every record of a list, one page at a time, in the agent's `(updated_at, id)` order; a
   * record changed during the walk may come twice (the protocol's promise), never not at all.
   */
  async *list(
    resource: ErpResource,
    opts: { jobId?: string | null | undefined; updatedSince?: Date | undefined } = {},
  ): AsyncGenerator<ErpRecordJson[]> {
    yield* this.#walk(collectionPath(resource, opts.jobId), resource, opts.updatedSince, (b) => parsePage(resource, b))
  }

  /** Payments of AP invoices (`GET /v1/payments`, list-only), changed since `updatedSince` when given. */
  async *payments(opts: { updatedSince?: Date | undefined } = {}): AsyncGenerator<ErpPayment[]> {
    yield* this.#walk('/v1/payments', 'payments', opts.updatedSince, parsePaymentPage)
  }

  async *#walk<T>(
    path: string,
    resource: string,
    since: Date | undefined,
    parse: (body: unknown) => { data: T[]; next_cursor: string | null },
  ): AsyncGenerator<T[]> {
    const updatedSince = since?.toISOString()
    const cursors = new Set<string>()
    let cursor: string | undefined
    let emptyPages = 0
    for (;;) {
      const res = await this.#http.request({
        method: 'GET',
        path,
        concurrencyKey: this.#key,
        query: { limit: this.#pageSize, cursor, updated_since: updatedSince },
        parse,
      })
      const { data, next_cursor: next } = res.body
      if (data.length > 0) yield data
      if (next === null) return
      emptyPages = data.length === 0 ? emptyPages + 1 : 0
      if (cursors.has(next) || emptyPages > MAX_EMPTY_PAGES) {
        throw new UpstreamError({
          reason: 'invalid_response',
          side: 'erp',
          method: 'GET',
          url: path,
          status: res.status,
          attempts: res.attempts,
          cause: new Error(`the ${resource} list does not advance: next_cursor repeats or pages stay empty`),
        })
      }
      cursors.add(next)
      cursor = next
    }
  }

  /**
   * `POST` with an Idempotency-Key, so the HTTP layer may retry it after a lost response and the
   * agent answers the retry with the record it already created (200 Idempotent-Replayed).
   */
  async create(
    resource: ErpResource,
    jobId: string | null | undefined,
    body: Record<string, unknown>,
    idempotencyKey: string,
  ): Promise<Created> {
    const path = collectionPath(resource, jobId)
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await this.#http.request({
          method: 'POST',
          path,
          body,
          idempotent: true,
          concurrencyKey: this.#key,
          headers: { 'idempotency-key': idempotencyKey },
          parse: (b) => parseRecord(resource, b),
        })
        return { record: res.body, replayed: res.headers['idempotent-replayed'] === 'true' }
      } catch (error) {
        // The first request with this key is still being handled by the agent (ours, whose answer was lost):
        // wait as long as its Retry-After asks (at most MAX_IN_USE_WAIT_MS), else 1, 2, 4 s.
        const fallback = IN_USE_WAITS_MS[attempt]
        if (problemCode(error) === 'idempotency_key_in_use' && fallback !== undefined) {
          const asked = error instanceof UpstreamError ? error.retryAfterMs : undefined
          await this.#sleep(Math.min(asked ?? fallback, MAX_IN_USE_WAIT_MS))
          continue
        }
        throw mapWriteError(error, `create a ${noun(resource)}`)
      }
    }
  }

  /**
   * `PATCH` with `If-Match: "<version>"`. The HTTP layer may retry it; if the first attempt had
   * in fact succeeded, the retry gets 412, so on a 412 after a retry the record is re-read and
   * accepted when it already holds every value we sent.
   */
  async update(
    resource: ErpResource,
    id: string,
    body: Record<string, unknown>,
    version: number,
  ): Promise<ErpRecordJson> {
    try {
      const res = await this.#http.request({
        method: 'PATCH',
        path: recordPath(resource, id),
        body,
        idempotent: true,
        concurrencyKey: this.#key,
        headers: { 'if-match': `"${version}"` },
        parse: (b) => parseRecord(resource, b),
      })
      return res.body
    } catch (error) {
      if (error instanceof UpstreamError && error.status === 412) {
        if (error.attempts > 1) {
          const current = await this.get(resource, id)
          if (current !== null && current.version > version && holds(current, body)) return current
        }
        const current = asProblem(error.body).current_version
        throw new ErpStaleVersionError({ id, expectedVersion: version, currentVersion: current ?? null })
      }
      throw mapWriteError(error, `update ${noun(resource)} ${id}`)
    }
  }

  async close(): Promise<void> {
    await this.#http.close()
  }
}

function noun(resource: ErpResource): string {
  return resource === 'cost-codes' ? 'cost code' : resource.replace(/s$/, '')
}

function problemCode(error: unknown): string | undefined {
  return error instanceof UpstreamError ? asProblem(error.body).code : undefined
}

/** Every field we sent already has the value we sent. */
function holds(record: Record<string, unknown>, body: Record<string, unknown>): boolean {
  return Object.entries(body).every(([k, v]) => JSON.stringify(record[k]) === JSON.stringify(v))
}

/**
 * A final 4xx of a write is the agent refusing it: carry its per-field messages. Authentication,
 * rate limits, unavailability, timeouts and invalid responses stay UpstreamErrors (the caller
 * retries the retryable ones later).
 */
function mapWriteError(error: unknown, what: string): unknown {
  if (!(error instanceof UpstreamError) || error.status === undefined) return error
  const status = error.status
  if (status < 400 || status >= 500 || status === 401 || status === 403 || status === 408 || status === 429)
    return error
  const problem = asProblem(error.body)
  return new ErpRefusedError({
    erpStatus: status,
    erpCode: problem.code ?? `http_${status}`,
    erpDetail: problem.detail ?? `the agent answered ${status} without details.`,
    fieldErrors: problem.errors ?? [],
    existingId: problem.existing_id,
    what,
  })
}
