import { Type, type Static } from 'typebox'
import { OriginStates } from '../db/tables/sync.js'

export const Link = Type.Object({
  id: Type.String({ format: 'uuid' }),
  type: Type.String(),
  procoreId: Type.String(),
  erpId: Type.String(),
  active: Type.Boolean({ description: 'False once unlinked (the row stays as history).' }),
  origin: Type.Enum([...OriginStates], {
    description:
      "Procore's origin_id/origin_code: pending → set while linked; clearing → cleared after unlink; " +
      'failed: Procore refused the write (originError says why).',
  }),
  originError: Type.Union([Type.String(), Type.Null()]),
  discrepancyId: Type.Union([Type.String({ format: 'uuid' }), Type.Null()], {
    description: 'The open discrepancy of this pair, if its fields differ.',
  }),
  createdBy: Type.String({ description: 'api-key:<id> or system:<job>.' }),
  createdAt: Type.String({ format: 'date-time' }),
  unlinkedBy: Type.Union([Type.String(), Type.Null()]),
  unlinkedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
})
export type Link = Static<typeof Link>
