import { pageOf } from '../../src/api/pagination.js'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { AuditEntry } from '../../src/schemas/audit.js'
import { CompanyParams, Page, PageQuery, problems } from '../../src/schemas/common.js'
import { RecordTypeParam } from '../../src/schemas/records.js'
import { AuditActions, listAudit } from '../../src/sync/audit.js'

const audit: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/companies/:companyId/audit',
    {
      schema: {
        tags: ['audit'],
        summary: 'History of changes',
        description:
          'Every link, unlink, create, apply, automatic propagation, ignore and settings change, newest first, with ' +
          'before and after values. `recordId` matches a Procore id, an ERP id or a link id.',
        params: CompanyParams,
        querystring: Type.Object(
          {
            ...PageQuery,
            type: Type.Optional(RecordTypeParam),
            recordId: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
            action: Type.Optional(Type.Enum([...AuditActions])),
          },
          { additionalProperties: false },
        ),
        response: { 200: Page(AuditEntry), ...problems(400, 401, 404) },
      },
    },
    async (request) => listAudit(app.db, request.params.companyId, request.query, pageOf(request.query)),
  )
}

export default audit
