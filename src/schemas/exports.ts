import { Type, type Static } from 'typebox'
import { ExportStatuses } from '../db/tables/exports.js'
import { DateTime, Nullable } from './common.js'

// A field value, as in records.ts (which imports this file, so it is not imported from there).
const FieldValue = Type.Union([Type.String(), Type.Boolean(), Type.Null()])
const Fields = Type.Record(Type.String(), FieldValue)

export const ExportStatusParam = Type.Enum([...ExportStatuses], {
  description:
    'pending_acceptance (blue: waiting for an approver), exporting (accepted, being created), exported (green), ' +
    'failed_to_export (the ERP refused; fix and accept again, or reject), rejected / retrieved (yellow), ' +
    'withdrawn (deleted or made inactive in Procore, or superseded by a re-send).',
})

export const Reason = Type.Object({
  code: Type.String({ description: 'Stable: record_inactive, already_linked, already_pending, field_missing, …' }),
  detail: Type.String(),
  fix: Type.String(),
  field: Type.Optional(Type.String()),
})

export const Eligibility = Type.Object(
  { eligible: Type.Boolean(), reasons: Type.Array(Reason) },
  {
    examples: [
      {
        eligible: false,
        reasons: [
          {
            code: 'name_too_long',
            field: 'name',
            detail: 'Name must be at most 30 characters in Sage 300 CRE (it has 41)',
            fix: 'Shorten the name in Procore, then send again.',
          },
        ],
      },
    ],
  },
)
export type Eligibility = Static<typeof Eligibility>

export const Person = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    email: Type.Optional(Type.String({ maxLength: 320 })),
    procoreUserId: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
)

export const Transition = Type.Object({
  at: DateTime,
  from: Nullable(ExportStatusParam),
  to: ExportStatusParam,
  actor: Type.String(),
  person: Nullable(Type.String()),
  detail: Nullable(Type.String()),
})

export const ExportRequest = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    type: Type.String(),
    procoreId: Type.String(),
    status: ExportStatusParam,
    note: Nullable(Type.String()),
    sentBy: Person,
    sentAt: DateTime,
    sentFields: Type.Record(Type.String(), FieldValue, { description: 'The record as it was sent (frozen).' }),
    previousId: Nullable(Type.String({ description: 'The earlier request of the same record (a re-send).' })),
    erpCode: Nullable(Type.String({ description: "The approver's ERP id (vendor code, job number)." })),
    companyType: Nullable(Type.String()),
    overrides: Nullable(Fields),
    attempt: Type.Integer({ description: 'Accepts so far; each keys its ERP create.' }),
    runId: Nullable(Type.String()),
    erpId: Nullable(Type.String({ description: 'The ERP record created.' })),
    linkId: Nullable(Type.String()),
    messages: Nullable(Type.Array(Type.Object({ field: Nullable(Type.String()), message: Type.String() }))),
    reason: Nullable(Type.String()),
    updatedAt: DateTime,
  },
  {
    examples: [
      {
        id: '3d0f4f2a-6c1b-4f3e-9a77-2b8e0c1d5a90',
        type: 'vendor',
        procoreId: '5621',
        status: 'pending_acceptance',
        note: 'New drywall sub for the Riverside job',
        sentBy: { name: 'Pat Sender', email: 'pat@riverside.example' },
        sentAt: '2026-12-04T15:00:00.000Z',
        sentFields: { name: 'Acme Drywall', code: null, email: 'ap@acme.example', active: true },
        previousId: null,
        erpCode: null,
        companyType: null,
        overrides: null,
        attempt: 0,
        runId: null,
        erpId: null,
        linkId: null,
        messages: null,
        reason: null,
        updatedAt: '2026-12-04T15:00:00.000Z',
      },
    ],
  },
)
export type ExportRequest = Static<typeof ExportRequest>

export const ExportRequestDetail = Type.Intersect([
  ExportRequest,
  Type.Object({
    history: Type.Array(Transition),
    changedSinceSent: Type.Array(Type.Object({ field: Type.String(), sent: FieldValue, current: FieldValue }), {
      description: 'Fields of the Procore record that changed since it was sent, both values.',
    }),
  }),
])
export type ExportRequestDetail = Static<typeof ExportRequestDetail>

/** What a record view shows of its open or last export request. */
export const ExportSummary = Type.Object({
  id: Type.String(),
  status: ExportStatusParam,
  color: Type.Enum(['blue', 'green', 'yellow', 'red', 'grey']),
  updatedAt: DateTime,
  reason: Nullable(Type.String()),
})
export type ExportSummary = Static<typeof ExportSummary>
