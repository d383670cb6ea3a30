import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { CompanyParams, Page, PageQuery, problems } from '../../src/api/schemas.js'
import { AuditActions, listAudit } from '../../src/sync/audit.js'
import { RecordTypeParam } from './records.js'

const AuditEntry = Type.Object({
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
  requestIds: Type.Record(Type.String(), Type.String(), { description: 'api: our X-Request-Id; procore / erp: the upstream request behind the change, when known.' }),
  detail: Type.Union([Type.String(), Type.Null()]),
})

const audit: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/companies/:companyId/audit', {
    schema: {
      tags: ['audit'], summary: 'History of changes',
      description: 'Every link, unlink, create, apply, automatic propagation, ignore and settings change, newest first, with before and after values. ' +
        '`recordId` matches a Procore id, an ERP id or a link id.',
      params: CompanyParams,
      querystring: Type.Object({
        ...PageQuery,
        type: Type.Optional(RecordTypeParam),
        recordId: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
        action: Type.Optional(Type.Enum([...AuditActions])),
      }, { additionalProperties: false }),
      response: { 200: Page(AuditEntry), ...problems(400, 401, 404) },
    },
  }, async (request) => listAudit(app.db, request.params.companyId, request.query, { limit: request.query.limit ?? 50, cursor: request.query.cursor }))
}

export default audit
