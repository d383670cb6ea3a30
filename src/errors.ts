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
  new AppError(401, 'unauthorized', 'Unauthorized', 'Send a valid, unrevoked API key as `Authorization: Bearer <key>`.', {
    headers: { 'www-authenticate': 'Bearer' },
  })

export const forbidden = (detail: string) => new AppError(403, 'forbidden', 'Forbidden', detail)

export const notFound = (what: string, id: string) =>
  new AppError(404, 'not_found', 'Not found', `No ${what} with id ${id} exists, or your API key is not scoped to it.`)

export const conflict = (code: string, detail: string, extras: Record<string, unknown> = {}) =>
  new AppError(409, code, 'Conflict', detail, extras)

export const preconditionFailed = (current: string) =>
  new AppError(412, 'precondition_failed', 'Precondition failed',
    `The resource changed since you read it (current ETag ${current}). GET it again, review, and retry with the new ETag in If-Match.`,
    { headers: { etag: current } })

export const preconditionRequired = () =>
  new AppError(428, 'precondition_required', 'Precondition required',
    'This change needs an If-Match header carrying the ETag from your last GET of the resource, so that concurrent edits are not lost.')

export const unprocessable = (code: string, detail: string, errors?: FieldError[]) =>
  new AppError(422, code, 'Unprocessable content', detail, errors ? { errors } : {})
