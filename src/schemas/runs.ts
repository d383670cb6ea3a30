import { Type, type Static } from 'typebox'
import { RunStatuses } from '../db/tables/records.js'
import { CompanyIdString } from './common.js'

/** Background work a caller can poll: refreshes, reconciliations, bulk creates. */
export const Run = Type.Object({
  id: Type.String({ format: 'uuid' }),
  companyId: CompanyIdString,
  kind: Type.String({ description: 'What the run does, e.g. erp_refresh.' }),
  status: Type.String({
    description:
      `One of ${RunStatuses.join(', ')}: queued → running → succeeded | failed. ` +
      'A running run that hit a transient failure says so in result.lastError and is retried.',
    examples: ['succeeded'],
  }),
  params: Type.Record(Type.String(), Type.Unknown(), { description: 'What was asked for.' }),
  result: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()], {
    description: 'Progress while running, the outcome when finished (counts per record type).',
  }),
  error: Type.Union([Type.String(), Type.Null()], { description: 'Why the run failed.' }),
  requestedBy: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
  startedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  finishedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
})
export type Run = Static<typeof Run>
