import { Type, type Static } from 'typebox'
import { DiscrepancyStatuses } from '../db/tables/sync.js'
import { FieldValue } from './records.js'

export const Discrepancy = Type.Object({
  id: Type.String({ format: 'uuid' }),
  type: Type.String(),
  linkId: Type.String({ format: 'uuid' }),
  procoreId: Type.String(),
  erpId: Type.String(),
  status: Type.Enum([...DiscrepancyStatuses], {
    description:
      'open: waiting for a person; resolved: the sides agree (after apply, or by themselves); ' +
      'dismissed: the link ended.',
  }),
  fields: Type.Array(
    Type.Object({ field: Type.String(), label: Type.String(), procore: FieldValue, erp: FieldValue }),
    { description: 'Every differing field owned by nobody (manual), with both values.' },
  ),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
  resolvedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  resolvedBy: Type.Union([Type.String(), Type.Null()]),
})
export type Discrepancy = Static<typeof Discrepancy>

/** A person's choice for one field: one side's value, or a value of their own. */
export const DiscrepancyChoice = Type.Union([
  Type.Literal('procore', { description: "Take Procore's value." }),
  Type.Literal('erp', { description: "Take the ERP's value." }),
  Type.Object({ value: FieldValue }, { additionalProperties: false, description: 'Take this value on both sides.' }),
])
export type DiscrepancyChoice = Static<typeof DiscrepancyChoice>

/** What an apply answers: the discrepancy after it, and what was written where. */
export const AppliedDiscrepancy = Type.Object({
  ...Discrepancy.properties,
  applied: Type.Object(
    { procore: Type.Array(Type.String()), erp: Type.Array(Type.String()) },
    { description: 'Fields written to each side.' },
  ),
  notAgreeing: Type.Array(Type.String(), {
    description: 'Chosen fields that still differ after the re-read (one side changed them again).',
  }),
})
