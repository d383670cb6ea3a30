import { pageOf } from '../../src/api/pagination.js'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { expectedVersion } from '../../src/api/etag.js'
import { DiscrepancyStatuses } from '../../src/db/tables/sync.js'
import {
  CompanyIdString,
  CompanyParams,
  IdempotencyHeaders,
  IfMatchHeaders,
  Page,
  PageQuery,
  problems,
} from '../../src/schemas/common.js'
import { AppliedDiscrepancy, Discrepancy, DiscrepancyChoice } from '../../src/schemas/discrepancies.js'
import { RecordTypeParam } from '../../src/schemas/records.js'
import { apiActor } from '../../src/sync/audit.js'
import { applyDiscrepancy, getDiscrepancy, listDiscrepancies } from '../../src/sync/discrepancies.js'

const Params = Type.Object({ companyId: CompanyIdString, discrepancyId: Type.String({ format: 'uuid' }) })
const tags = ['discrepancies']

const discrepancies: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/companies/:companyId/discrepancies',
    {
      schema: {
        tags,
        summary: 'List discrepancies',
        description: 'Linked pairs whose manually owned fields differ (status open by default), newest first.',
        params: CompanyParams,
        querystring: Type.Object(
          {
            ...PageQuery,
            type: Type.Optional(RecordTypeParam),
            status: Type.Optional(Type.Enum([...DiscrepancyStatuses])),
            linkId: Type.Optional(Type.String({ format: 'uuid' })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Page(Discrepancy), ...problems(400, 401, 404) },
      },
    },
    async (request) => listDiscrepancies(app.db, request.params.companyId, request.query, pageOf(request.query)),
  )

  app.get(
    '/companies/:companyId/discrepancies/:discrepancyId',
    {
      schema: {
        tags,
        summary: 'Get a discrepancy',
        description: 'Every differing field with both values, and the ETag to apply with.',
        params: Params,
        response: { 200: Discrepancy, ...problems(400, 401, 404) },
      },
    },
    async (request, reply) => {
      const { discrepancy, etag } = await getDiscrepancy(app.db, request.params.companyId, request.params.discrepancyId)
      return reply.header('etag', etag).send(discrepancy)
    },
  )

  app.post(
    '/companies/:companyId/discrepancies/:discrepancyId/apply',
    {
      config: { permission: 'sync', idempotency: 'required' },
      schema: {
        tags,
        summary: 'Resolve a discrepancy field by field',
        description:
          'For each field: "procore", "erp" or {"value": …}. Writes the chosen value to whichever side differs (the ' +
          "ERP's rules are checked first), re-reads both sides and closes the discrepancy only when they agree; " +
          'fields left out stay open. Send If-Match with the ETag of your GET: a stale one is 412 (of two applies ' +
          'with one ETag, one wins). A field that changed again in Procore or the ERP since you read it is not ' +
          'overwritten: the discrepancy is updated and the answer is 409 with the new ETag. When Procore or the ERP ' +
          'agent cannot be reached or is busy the answer is 503 with Retry-After, and 502 when it gives an answer ' +
          'this service cannot use; either names the side and what is left as it was.',
        params: Params,
        headers: Type.Object({ ...IdempotencyHeaders.properties, ...IfMatchHeaders.properties }),
        body: Type.Object(
          {
            fields: Type.Record(Type.String({ pattern: '^[A-Za-z][A-Za-z0-9]*$' }), DiscrepancyChoice, {
              minProperties: 1,
            }),
          },
          { additionalProperties: false },
        ),
        response: {
          200: AppliedDiscrepancy,
          ...problems(400, 401, 403, 404, 409, 412, 422, 428, 502, 503),
        },
      },
    },
    async (request, reply) => {
      const { companyId, discrepancyId } = request.params
      const { discrepancy, etag, applied, notAgreeing } = await applyDiscrepancy(
        app.ctx,
        companyId,
        discrepancyId,
        expectedVersion(request),
        request.body.fields,
        apiActor(request.principal.keyId, request.id),
      )
      return reply.header('etag', etag).send({ ...discrepancy, applied, notAgreeing })
    },
  )
}

export default discrepancies
