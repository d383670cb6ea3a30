import { Type, type Static } from 'typebox'
import { TimeEntryStatuses } from '../db/tables/timecards.js'
import { DateTime, Nullable } from './common.js'

/** At most this many entries per request. */
export const MAX_TIME_ENTRIES = 1000

/**
 * A record named on either side: `procore:<id>` (the Procore id) or `erp:<id>` (the ERP's own id). The prefix
 * is required: a bare `1042` could be either.
 */
export const RecordRef = Type.String({
  pattern: '^(procore:[0-9]{1,19}|erp:[^\\u0000]{1,255})$',
  description:
    'A linked record named on either side: `erp:<ERP id>` (e.g. `erp:E1042`) or `procore:<Procore id>` ' +
    '(e.g. `procore:562949953421312`). It must be linked (a user to its ERP employee, a project to its job, a ' +
    "cost code to the job's cost code) before its time is sent.",
  examples: ['erp:E-7'],
})

export const TimeEntryExternalId = Type.String({
  minLength: 1,
  maxLength: 255,
  pattern: '^[^\\u0000-\\u001f/]+$',
  description: "The entry's id in the time-keeping system: unique per company, the key of every resubmission.",
  examples: ['TC-2026-0001'],
})

const YMD = Type.String({ format: 'date', description: 'The working day, YYYY-MM-DD.' })

export const TimeEntryInput = Type.Object(
  {
    externalId: TimeEntryExternalId,
    user: RecordRef,
    project: RecordRef,
    costCode: RecordRef,
    date: YMD,
    hours: Type.Optional(
      Type.Number({ exclusiveMinimum: 0, maximum: 24, description: 'Hours worked; or timeIn and timeOut.' }),
    ),
    timeIn: Type.Optional(Type.String({ format: 'date-time', description: 'Clock-in, with its UTC offset.' })),
    timeOut: Type.Optional(Type.String({ format: 'date-time', description: 'Clock-out, after timeIn.' })),
    lunchMinutes: Type.Optional(Type.Integer({ minimum: 0, maximum: 1440 })),
    description: Type.Optional(Type.String({ maxLength: 1000 })),
    approvedAt: Type.String({ format: 'date-time', description: 'When the time card was approved.' }),
    voided: Type.Optional(
      Type.Boolean({ description: 'true removes the entry from Procore (as DELETE …/time-entries/{externalId}).' }),
    ),
  },
  { additionalProperties: false },
)
export type TimeEntryInput = Static<typeof TimeEntryInput>

export const TimeEntryBatch = Type.Object(
  { entries: Type.Array(TimeEntryInput, { minItems: 1, maxItems: MAX_TIME_ENTRIES }) },
  {
    additionalProperties: false,
    examples: [
      {
        entries: [
          {
            externalId: 'TC-2026-0001',
            user: 'erp:E-7',
            project: 'erp:J-2024-001',
            costCode: 'erp:CC-03-300',
            date: '2026-12-01',
            hours: 8,
            lunchMinutes: 30,
            description: 'Formwork, level 2',
            approvedAt: '2026-12-02T16:00:00Z',
          },
          {
            externalId: 'TC-2026-0002',
            user: 'procore:562949953421401',
            project: 'procore:562949953421312',
            costCode: 'erp:CC-01-100',
            date: '2026-12-01',
            timeIn: '2026-12-01T07:00:00-05:00',
            timeOut: '2026-12-01T15:30:00-05:00',
            approvedAt: '2026-12-02T16:00:00Z',
          },
        ],
      },
    ],
  },
)
export type TimeEntryBatch = Static<typeof TimeEntryBatch>

export const TimeEntryStatusParam = Type.Enum([...TimeEntryStatuses], {
  description:
    'pending (accepted, not in Procore as sent yet), sent (Procore holds it as sent), failed (Procore refused it: ' +
    '`error` has its message; resubmit it corrected), voided (removed from Procore, or never sent).',
})

export const Refusal = Type.Object({
  index: Type.Integer({ description: 'Position of the entry in `entries`.' }),
  externalId: Type.String(),
  code: Type.String({
    description: 'Stable: user_not_linked, project_not_linked, cost_code_not_linked, cost_code_not_in_project.',
  }),
  detail: Type.String(),
  fix: Type.String(),
})
export type Refusal = Static<typeof Refusal>

export const Acceptance = Type.Object({
  index: Type.Integer(),
  externalId: Type.String(),
  originId: Type.String({ description: "The integer written as the Procore timecard entry's origin_id." }),
  change: Type.Enum(['created', 'updated', 'unchanged', 'voided'], {
    description:
      'created: new; updated: differs from what was accepted before (its Procore twin is updated); unchanged: ' +
      'the same as before (nothing is sent); voided: its Procore twin is removed.',
  }),
  status: TimeEntryStatusParam,
})
export type Acceptance = Static<typeof Acceptance>

export const BatchResult = Type.Object(
  {
    counts: Type.Object({ accepted: Type.Integer(), refused: Type.Integer() }),
    accepted: Type.Array(Acceptance),
    refused: Type.Array(Refusal),
  },
  {
    examples: [
      {
        counts: { accepted: 1, refused: 1 },
        accepted: [{ index: 0, externalId: 'TC-2026-0001', originId: '1', change: 'created', status: 'pending' }],
        refused: [
          {
            index: 1,
            externalId: 'TC-2026-0002',
            code: 'user_not_linked',
            detail: 'user E1042 is not linked — link it or run onboarding step users',
            fix:
              'Link the ERP user E1042 to its twin (ERP employee ↔ Procore user: POST ' +
              '/v1/companies/5358233/links with type user), then resubmit the entry.',
          },
        ],
      },
    ],
  },
)
export type BatchResult = Static<typeof BatchResult>

export const TimeEntry = Type.Object(
  {
    externalId: Type.String(),
    originId: Type.String({
      description: 'The integer origin_id of its Procore timecard entry (as a decimal string).',
    }),
    status: TimeEntryStatusParam,
    error: Nullable(Type.String({ description: "Procore's message when it refused the entry." })),
    procoreId: Nullable(Type.String({ description: 'The Procore timecard entry id, once created.' })),
    entry: Type.Record(Type.String(), Type.Unknown(), { description: 'The entry as last accepted.' }),
    procore: Type.Object({
      partyId: Type.String({ description: 'The Procore user.' }),
      projectId: Type.String(),
      costCodeId: Type.String(),
    }),
    attempts: Type.Integer(),
    acceptedAt: DateTime,
    updatedAt: DateTime,
    sentAt: Nullable(DateTime),
  },
  {
    examples: [
      {
        externalId: 'TC-2026-0001',
        originId: '1',
        status: 'sent',
        error: null,
        procoreId: '562949953430001',
        entry: { user: 'erp:E-7', project: 'erp:J-2024-001', costCode: 'erp:CC-03-300', date: '2026-12-01', hours: 8 },
        procore: { partyId: '562949953421401', projectId: '562949953421312', costCodeId: '562949953425001' },
        attempts: 1,
        acceptedAt: '2026-12-02T16:05:00.000Z',
        updatedAt: '2026-12-02T16:05:02.000Z',
        sentAt: '2026-12-02T16:05:02.000Z',
      },
    ],
  },
)
export type TimeEntry = Static<typeof TimeEntry>
