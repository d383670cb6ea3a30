import { Type, type TSchema } from 'typebox'

/** RFC 9457 problem details, as every non-2xx response of this service carries them. */
export const ProblemSchema = Type.Object(
  {
    type: Type.String({ description: 'URI identifying the problem type.' }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String({ description: 'What went wrong and what to do about it.' }),
    instance: Type.String({ description: 'The request path.' }),
    code: Type.String({ description: 'Stable machine-readable code.' }),
    requestId: Type.String({
      description: 'Quote it when reporting a problem; it is in every log line of the request.',
    }),
    errors: Type.Optional(
      Type.Array(
        Type.Object({
          pointer: Type.String({ description: 'JSON pointer into the request, e.g. /body/name.' }),
          message: Type.String(),
        }),
      ),
    ),
  },
  { $id: 'Problem', additionalProperties: true, description: 'RFC 9457 problem details.' },
)

const problemDescriptions: Record<number, string> = {
  400: 'The request is malformed; `errors` names each bad field.',
  401: 'Missing, invalid or revoked API key.',
  403: "The API key's role does not allow this.",
  404: "No such resource, or it belongs to a company outside the key's scope.",
  409: 'Conflicts with the current state (or the same Idempotency-Key is still in flight).',
  412: 'If-Match does not match the current ETag.',
  413: 'Body too large.',
  415: 'Unsupported Content-Type.',
  422: 'Idempotency-Key reused with a different request, or a business rule refused it.',
  428: 'If-Match is required.',
  503: 'Temporarily unavailable; retry after Retry-After seconds.',
}

/** What a caller sees, per status: shown in Swagger UI instead of a body generated from the open-ended schema. */
const problemExamples: Record<number, [code: string, title: string, detail: string]> = {
  400: ['validation_failed', 'Invalid request', 'Fix these fields and retry: /body/erpId must not be empty.'],
  401: ['unauthorized', 'Unauthorized', 'Send a valid, unrevoked API key as `Authorization: Bearer <key>`.'],
  403: ['forbidden', 'Forbidden', 'This needs the operator or admin role; your API key is a viewer key.'],
  404: ['not_found', 'Not found', 'No company with id 5358233 exists, or your API key is not scoped to it.'],
  409: ['conflict', 'Conflict', 'The ERP vendor V000001 is already linked to Procore vendor 4300000009.'],
  412: [
    'precondition_failed',
    'Precondition failed',
    'The resource changed since you read it (current ETag "4"). GET it again, review, and retry with the new ETag.',
  ],
  413: ['body_too_large', 'Payload too large', 'The body is larger than 1048576 bytes.'],
  415: ['unsupported_media_type', 'Unsupported media type', 'Send the body as application/json.'],
  422: [
    'idempotency_key_reused',
    'Idempotency-Key reused',
    'This Idempotency-Key was already used for a different request. Use a new key for a new request.',
  ],
  428: [
    'precondition_required',
    'Precondition required',
    'This change needs an If-Match header carrying the ETag from your last GET of the resource.',
  ],
  503: ['unavailable', 'Service unavailable', 'The database is not answering; retry after Retry-After seconds.'],
}

/** Response entries for the given problem statuses, as application/problem+json. */
export function problems(...statuses: number[]): Record<number, TSchema> {
  const out: Record<number, TSchema> = {}
  for (const status of statuses) {
    const [code, title, detail] = problemExamples[status] ?? ['problem', 'Problem', 'What went wrong and what to do.']
    out[status] = {
      description: problemDescriptions[status] ?? 'Problem',
      content: {
        'application/problem+json': {
          schema: Type.Ref('Problem'),
          example: {
            type: `urn:procore-erp-sync:problem:${code}`,
            title,
            status,
            detail,
            instance: '/v1/companies/5358233/links',
            code,
            requestId: '0b6f4a1e-3c2d-4e5f-8a9b-1c2d3e4f5a6b',
          },
        },
      },
    }
  }
  return out
}

export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()])
export const DateTime = Type.String({ format: 'date-time' })

/** Procore company ids are 64-bit: always a decimal string in our API. */
export const CompanyIdString = Type.String({
  pattern: '^[1-9][0-9]{0,18}$',
  description: 'Procore company id (64-bit, as a decimal string).',
  examples: ['5358233'],
})
export const CompanyParams = Type.Object({ companyId: CompanyIdString })

export const PageQuery = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50, description: 'Page size (1–200).' })),
  cursor: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 512,
      description: 'Opaque cursor from `next` of the previous page.',
    }),
  ),
}

export const Page = <T extends TSchema>(item: T) =>
  Type.Object({
    items: Type.Array(item),
    next: Type.Union([Type.String(), Type.Null()], { description: 'Cursor for the next page; null on the last page.' }),
  })

export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 255,
      description:
        'Makes the POST safe to retry: the same key and body replay the first response (kept ≥ 24 h). ' +
        'Required where the operation says so.',
    }),
  ),
})
export const IfMatchHeaders = Type.Object({
  'if-match': Type.Optional(Type.String({ description: 'The ETag from your last GET; required.' })),
})
