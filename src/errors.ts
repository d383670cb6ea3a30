import { UpstreamError, upstreamMessage, type UpstreamReason, type UpstreamSide } from './http/errors.js'

/**
 * Typed errors with a stable `code`. Domain code throws them; the error plugin renders them as
 * RFC 9457 problem+json. The `detail` is shown to callers, so it must say what to do.
 */
export interface FieldError {
  /** JSON pointer into the request, e.g. `/body/name` or `/query/limit`. */
  pointer: string
  message: string
}

export class AppError extends Error {
  override name = 'AppError'
  constructor(
    readonly status: number,
    readonly code: string,
    readonly title: string,
    readonly detail: string,
    readonly extras: { errors?: FieldError[]; headers?: Record<string, string>; [key: string]: unknown } = {},
  ) {
    super(detail)
  }
}

export const badRequest = (code: string, detail: string, errors?: FieldError[]) =>
  new AppError(400, code, 'Bad request', detail, errors ? { errors } : {})

export const unauthorized = () =>
  new AppError(
    401,
    'unauthorized',
    'Unauthorized',
    'Send a valid, unrevoked API key as `Authorization: Bearer <key>`.',
    {
      headers: { 'www-authenticate': 'Bearer' },
    },
  )

export const forbidden = (detail: string) => new AppError(403, 'forbidden', 'Forbidden', detail)

export const notFound = (what: string, id: string) =>
  new AppError(404, 'not_found', 'Not found', `No ${what} with id ${id} exists, or your API key is not scoped to it.`)

export const conflict = (code: string, detail: string, extras: Record<string, unknown> = {}) =>
  new AppError(409, code, 'Conflict', detail, extras)

export const preconditionFailed = (current: string) =>
  new AppError(
    412,
    'precondition_failed',
    'Precondition failed',
    `The resource changed since you read it (current ETag ${current}). ` +
      'GET it again, review, and retry with the new ETag in If-Match.',
    { headers: { etag: current } },
  )

export const preconditionRequired = () =>
  new AppError(
    428,
    'precondition_required',
    'Precondition required',
    'This change needs an If-Match header carrying the ETag from your last GET of the resource, so ' +
      'that concurrent edits are not lost.',
  )

export const unprocessable = (code: string, detail: string, errors?: FieldError[]) =>
  new AppError(422, code, 'Unprocessable content', detail, errors ? { errors } : {})

/** The company has no usable connection to that side yet: nothing goes there until it is connected. */
export class NotConnectedError extends AppError {
  override name = 'NotConnectedError'
  constructor(
    readonly side: UpstreamSide,
    code: string,
    title: string,
    detail: string,
  ) {
    super(409, code, title, detail)
  }
}

/**
 * Whether trying the same thing again later may succeed: an upstream that was unavailable, timed
 * out or rate-limited, or one of our own 429 / 5xx problems. Everything else is final as it is.
 */
export function isRetryable(error: unknown): boolean {
  if (error instanceof UpstreamError) return error.retryable
  return error instanceof AppError && (error.status === 429 || error.status >= 500)
}

/**
 * A refusal that trying again cannot change: an upstream's final answer (a 4xx, an answer we
 * cannot use) or one of our own 4xx problems. A failure that is neither (a database error, a
 * bug) is not a refusal either: it may pass.
 */
export function isRefusal(error: unknown): boolean {
  if (error instanceof UpstreamError) return !error.retryable
  return error instanceof AppError && error.status < 500 && error.status !== 429
}

const UPSTREAMS = {
  procore: {
    code: 'procore',
    name: 'Procore',
    title: 'Procore',
    fix: 'Check the data in Procore and retry.',
    persists: '',
  },
  erp: {
    code: 'erp',
    name: 'the ERP agent',
    title: 'ERP agent',
    fix: 'Check the record in the ERP and retry.',
    persists: ' If it persists, check that the agent is running and that this service can reach it.',
  },
  unknown: {
    code: 'upstream',
    name: 'an upstream service',
    title: 'Upstream service',
    fix: 'Check the data and retry.',
    persists: '',
  },
} as const

/** Seconds to wait when the upstream did not say. */
const DEFAULT_RETRY_AFTER_S = 30

const capitalised = (text: string) => text.charAt(0).toUpperCase() + text.slice(1)

/**
 * A failed Procore or ERP call as the API caller sees it, naming the side and what to do: 503
 * with Retry-After (the upstream's own wait when it gave one) when trying again later may help —
 * unavailable, timed out, rate-limited — and 502 when it refused the request or answered
 * something this service cannot use. Procore refusing our access stays 422: only the company's
 * Procore administrator can change that. Nothing of the request (tokens, bodies) is echoed.
 */
export function upstreamProblem(error: UpstreamError, now = Date.now()): AppError {
  const side = UPSTREAMS[error.side ?? 'unknown']
  const Name = capitalised(side.name)
  let path = error.url
  try {
    path = new URL(error.url).pathname
  } catch {
    // already a bare path
  }
  const call = `${error.method} ${path}`
  const said = upstreamMessage(error.body)?.replace(/[.\s]+$/, '')
  const answered = `${error.status ?? error.reason}${said ? `: ${said}` : ''}`

  if (error.retryable) {
    const seconds =
      error.retryAt === undefined ? DEFAULT_RETRY_AFTER_S : Math.max(1, Math.ceil((error.retryAt - now) / 1000))
    const unanswered: Partial<Record<UpstreamReason, string>> = {
      timeout: `did not answer ${call} in time`,
      connection: `could not be reached for ${call}`,
      rate_limited: `is limiting this service's requests (${call})`,
      circuit_open: `is failing, so ${call} was not sent until the next probe`,
    }
    const what = unanswered[error.reason] ?? `answered ${call} with ${answered}`
    return new AppError(
      503,
      `${side.code}_unavailable`,
      `${side.title} unavailable`,
      `${Name} ${what}. Retry after ${seconds} seconds.${side.persists}`,
      { headers: { 'retry-after': String(seconds) } },
    )
  }
  if (error.reason === 'unauthorized' || error.reason === 'forbidden') {
    if (error.side === 'procore') {
      return new AppError(
        422,
        'procore_access_denied',
        'Procore refused access',
        `Procore answered ${call} with ${answered}. Check that the app is installed for this company in Procore's ` +
          'App Management and that its permissions include this tool.',
      )
    }
    return new AppError(
      502,
      `${side.code}_access_denied`,
      `${side.title} refused access`,
      `${Name} refused this service's credentials on ${call} (${answered}). Update the token in the company's ` +
        'ERP connection (PUT /v1/companies/{companyId}/erp/connection) to the one the agent expects.',
    )
  }
  const unusable: Partial<Record<UpstreamReason, string>> = {
    invalid_response: 'an answer that is not what its API describes',
    too_large: 'an answer larger than this service accepts',
    redirect_blocked: `a redirect (${error.status ?? '3xx'}), which this service never follows`,
    host_not_allowed: 'a link to a host this service does not call',
  }
  const bad = unusable[error.reason]
  if (bad !== undefined) {
    return new AppError(
      502,
      `${side.code}_bad_response`,
      `Bad answer from ${side.name}`,
      `${Name} answered ${call} with ${bad}. Retry later; if it persists, report it with this response's requestId.`,
    )
  }
  return new AppError(
    502,
    `${side.code}_request_failed`,
    `${side.title} request failed`,
    `${Name} answered ${call} with ${answered}. ${side.fix}`,
  )
}
