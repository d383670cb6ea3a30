export const UPSTREAM_REASONS = [
  'timeout',
  'connection',
  'rate_limited',
  'unavailable',
  'server_error',
  'bad_request',
  'unauthorized',
  'forbidden',
  'not_found',
  'conflict',
  'unprocessable',
  'client_error',
  'invalid_response',
  'too_large',
  'redirect_blocked',
  'host_not_allowed',
  'circuit_open',
] as const
export type UpstreamReason = (typeof UPSTREAM_REASONS)[number]

/** Which upstream a failure came from; the client of each connector sets it on its HttpClient. */
export const UPSTREAM_SIDES = ['procore', 'erp'] as const
export type UpstreamSide = (typeof UPSTREAM_SIDES)[number]

// Worth trying again later (by a rescheduled job), whatever the method.
const RETRYABLE: ReadonlySet<UpstreamReason> = new Set([
  'timeout',
  'connection',
  'rate_limited',
  'unavailable',
  'server_error',
  'circuit_open',
])

export function reasonForStatus(status: number): UpstreamReason {
  // We never follow redirects: Procore and the ERP do not send them, and following one could leak the token.
  if (status >= 300 && status < 400) return 'redirect_blocked'
  switch (status) {
    case 400:
      return 'bad_request'
    case 401:
      return 'unauthorized'
    case 403:
      return 'forbidden'
    case 404:
      return 'not_found'
    case 408:
      return 'timeout'
    case 409:
      return 'conflict'
    case 422:
      return 'unprocessable'
    case 429:
      return 'rate_limited'
    case 502:
    case 503:
    case 504:
      return 'unavailable'
  }
  return status >= 500 ? 'server_error' : 'client_error'
}

const TIMEOUT_CODES: ReadonlySet<string> = new Set([
  'ETIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
])
const CONNECTION_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
])

/** Error codes of failures where no response came back; anything else is not an upstream failure. */
export function reasonForErrorCode(code: string): 'timeout' | 'connection' | undefined {
  if (TIMEOUT_CODES.has(code)) return 'timeout'
  return CONNECTION_CODES.has(code) ? 'connection' : undefined
}

export interface UpstreamErrorInit {
  reason: UpstreamReason
  side?: UpstreamSide | undefined
  method: string
  /** origin + path only: the query string may carry secrets */
  url: string
  attempts: number
  status?: number | undefined
  requestId?: string | undefined
  retryAt?: number | undefined
  retryAfterMs?: number | undefined
  body?: unknown
  cause?: unknown
}

export class UpstreamError extends Error {
  override readonly name = 'UpstreamError'
  readonly reason: UpstreamReason
  /** undefined only for a client built without a side (tests of the HTTP layer) */
  readonly side: UpstreamSide | undefined
  /** Trying again later may succeed (timeout, connection, rate limit, 5xx); never for a final answer. */
  readonly retryable: boolean
  readonly method: string
  readonly url: string
  /** requests actually sent (0 when refused before the network) */
  readonly attempts: number
  readonly status?: number
  readonly requestId?: string
  /** epoch ms: the upstream asked us to wait longer than maxWaitMs; reschedule at this time */
  readonly retryAt?: number
  /** The wait the upstream's Retry-After asked for with this answer, whatever its status (e.g. a 409 in progress). */
  readonly retryAfterMs?: number
  /** parsed error body (first 4 KiB) */
  readonly body?: unknown

  constructor(init: UpstreamErrorInit) {
    const status = init.status === undefined ? '' : ` ${init.status}`
    super(
      init.reason === 'circuit_open'
        ? `${init.method} ${init.url} not sent: ${init.side ?? 'the upstream'} is failing (circuit open), ` +
            `next probe at ${new Date(init.retryAt ?? 0).toISOString()}`
        : `${init.method} ${init.url} failed:${status} ${init.reason} after ${init.attempts} attempt(s)`,
      init.cause === undefined ? undefined : { cause: init.cause },
    )
    this.reason = init.reason
    this.side = init.side
    this.retryable = RETRYABLE.has(init.reason)
    this.method = init.method
    this.url = init.url
    this.attempts = init.attempts
    if (init.status !== undefined) this.status = init.status
    if (init.requestId !== undefined) this.requestId = init.requestId
    if (init.retryAt !== undefined) this.retryAt = init.retryAt
    if (init.retryAfterMs !== undefined) this.retryAfterMs = init.retryAfterMs
    if (init.body !== undefined) this.body = init.body
  }
}

/**
 * An upstream's own words from an error body, in the common shapes: RFC 9457 `detail`, OAuth's
 * `error_description`, `message`, `errors` as text, per field (`{name: ["can't be blank"]}`) or
 * as a list of `{message}`; a text body as it is. At most 300 characters.
 */
export function upstreamMessage(body: unknown): string | undefined {
  if (typeof body === 'string') return body.slice(0, 300) || undefined
  if (body === null || typeof body !== 'object') return undefined
  const b = body as Record<string, unknown>
  for (const key of ['detail', 'error_description', 'message', 'errors'] as const) {
    if (typeof b[key] === 'string' && b[key] !== '') return b[key].slice(0, 300)
  }
  const errors = b.errors
  if (errors === null || typeof errors !== 'object') return undefined
  const text = (m: unknown) => (typeof m === 'string' || typeof m === 'number' ? String(m) : '')
  const items = Array.isArray(errors)
    ? errors.map((e) => text(typeof e === 'object' && e !== null ? (e as { message?: unknown }).message : e))
    : Object.entries(errors).flatMap(([field, messages]) =>
        (Array.isArray(messages) ? messages : [messages]).map((m) =>
          field === 'base' ? text(m) : `${field} ${text(m)}`,
        ),
      )
  return (
    items
      .filter((m) => m !== '')
      .join('; ')
      .slice(0, 300) || undefined
  )
}
