import { Type, type Static } from 'typebox'
import { AuditActions } from '../sync/audit.js'

export const AuditEntry = Type.Object({
  id: Type.String(),
  at: Type.String({ format: 'date-time' }),
  actor: Type.String({ description: 'api-key:<key id>, or system:<job> (evaluate, propagate, create, auto-import).' }),
  action: Type.Enum([...AuditActions]),
  type: Type.Union([Type.String(), Type.Null()]),
  procoreId: Type.Union([Type.String(), Type.Null()]),
  erpId: Type.Union([Type.String(), Type.Null()]),
  linkId: Type.Union([Type.String(), Type.Null()]),
  before: Type.Unknown({ description: 'Values before the change (null for a create or a new link).' }),
  after: Type.Unknown({ description: 'Values after the change.' }),
  requestIds: Type.Record(Type.String(), Type.String(), {
    description: 'api: our X-Request-Id; procore / erp: the upstream request behind the change, when known.',
  }),
  detail: Type.Union([Type.String(), Type.Null()]),
})
export type AuditEntry = Static<typeof AuditEntry>
