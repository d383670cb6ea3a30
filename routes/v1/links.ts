import { pageOf } from '../../src/api/pagination.js'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { expectedVersion } from '../../src/api/etag.js'
import {
  CompanyIdString,
  CompanyParams,
  IdempotencyHeaders,
  IfMatchHeaders,
  Page,
  PageQuery,
  problems,
} from '../../src/schemas/common.js'
import { Link, LinkCreated } from '../../src/schemas/links.js'
import { ExternalId, RecordTypeParam } from '../../src/schemas/records.js'
import { Run } from '../../src/schemas/runs.js'
import { apiActor } from '../../src/sync/audit.js'
import { requestBulkLink } from '../../src/sync/bulk.js'
import { createLink, getLink, listLinks, unlink } from '../../src/sync/links.js'

const RecordId = ExternalId
const LinkParams = Type.Object({ companyId: CompanyIdString, linkId: Type.String({ format: 'uuid' }) })
const tags = ['links']

const links: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/companies/:companyId/links',
    {
      config: { permission: 'sync', idempotency: 'required' },
      schema: {
        tags,
        summary: 'Link a Procore record to its ERP twin',
        description:
          'Both records must be known, live, of the type and unlinked (409 names the existing link). Answers 201 ' +
          "once the link is committed. Writing the ERP id into the Procore record's origin_id (and the ERP code " +
          'into origin_code where the type has one) follows in a job, one Procore call for all the links waiting, ' +
          'which then compares each pair: `origin` is `pending` until it is `set` (or `failed`, with ' +
          '`originError`), and `discrepancyId` is set from then on when fields differ; follow it at the ' +
          '`Location` of the link. Project cost ' +
          "codes link only within linked projects. The type's link prerequisites must hold (a project: not synced " +
          'to another job, the job active, the project ERP-integrated on the ERP standard cost code list): a ' +
          'refusal is a 422 whose `unmet` lists each with its code, detail and fix; `fix: true` meets the fixable ' +
          "ones through Procore. After a project link the job's cost codes follow (`dependents`), and the " +
          'payments for synced invoices run starts (trigger `project_link`) where the company can run it.',
        params: CompanyParams,
        headers: IdempotencyHeaders,
        body: Type.Object(
          {
            type: RecordTypeParam,
            procoreId: RecordId,
            erpId: RecordId,
            fix: Type.Optional(
              Type.Boolean({
                default: false,
                description:
                  'Meet the fixable link prerequisites through Procore first (a project: turn on ERP-integrated, ' +
                  "which puts a project without a cost code list on the company's ERP list); `fixed` says what " +
                  'changed. Prerequisites that cannot be fixed still refuse, and then nothing is changed.',
              }),
            ),
          },
          {
            additionalProperties: false,
            examples: [{ type: 'project', procoreId: '562949953421312', erpId: 'J-2024-001', fix: true }],
          },
        ),
        response: { 201: LinkCreated, ...problems(400, 401, 403, 404, 409, 422) },
      },
    },
    async (request, reply) => {
      const { link, etag, fixed, dependents } = await createLink(
        app.ctx,
        request.params.companyId,
        request.body,
        apiActor(request.principal.keyId, request.id),
      )
      return reply
        .code(201)
        .header('etag', etag)
        .header('location', `/v1/companies/${request.params.companyId}/links/${link.id}`)
        .send({ ...link, fixed, dependents })
    },
  )

  app.post(
    '/companies/:companyId/links/bulk',
    {
      config: { permission: 'sync', idempotency: 'required' },
      schema: {
        tags,
        summary: 'Link every unambiguous suggestion',
        description:
          'Starts a run that scores every unlinked Procore record against every unlinked ERP record of the type ' +
          'and links each pair whose score is at least `minScore` and that is unambiguous: the best candidate of ' +
          "both records, with no tie. The run's result lists each pair: linked, ambiguous (with why) or skipped. " +
          'When the unpaired names are too alike to compare in bounded time, `result.nameMatchingSkipped` says ' +
          'so and only exact keys were used. Answers 202.',
        params: CompanyParams,
        headers: IdempotencyHeaders,
        body: Type.Object(
          {
            type: RecordTypeParam,
            minScore: Type.Optional(
              Type.Number({
                minimum: 0.5,
                maximum: 1,
                default: 0.9,
                description: 'Lowest score linked (0.5–1). Below the name weight, similar names alone can qualify.',
              }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 202: Run, ...problems(400, 401, 403, 404, 409, 422) },
      },
    },
    async (request, reply) => {
      const run = await requestBulkLink(
        app.db,
        request.params.companyId,
        request.body.type,
        request.body.minScore ?? 0.9,
        apiActor(request.principal.keyId, request.id),
      )
      return reply.code(202).header('location', `/v1/companies/${request.params.companyId}/runs/${run.id}`).send(run)
    },
  )

  app.get(
    '/companies/:companyId/links',
    {
      schema: {
        tags,
        summary: 'List links',
        description: 'Newest first. `active=false` lists ended links (history).',
        params: CompanyParams,
        querystring: Type.Object(
          { ...PageQuery, type: Type.Optional(RecordTypeParam), active: Type.Optional(Type.Boolean()) },
          { additionalProperties: false },
        ),
        response: { 200: Page(Link), ...problems(400, 401, 404) },
      },
    },
    async (request) => listLinks(app.db, request.params.companyId, request.query, pageOf(request.query)),
  )

  app.get(
    '/companies/:companyId/links/:linkId',
    {
      schema: {
        tags,
        summary: 'Get a link',
        description: 'One link with its ETag (needed to unlink).',
        params: LinkParams,
        response: { 200: Link, ...problems(400, 401, 404) },
      },
    },
    async (request, reply) => {
      const { link, etag } = await getLink(app.db, request.params.companyId, request.params.linkId)
      return reply.header('etag', etag).send(link)
    },
  )

  app.delete(
    '/companies/:companyId/links/:linkId',
    {
      config: { permission: 'sync' },
      schema: {
        tags,
        summary: 'Unlink',
        description:
          'Ends the link: syncing of the pair stops, an open discrepancy is dismissed; history stays. ' +
          "Procore's origin_id/origin_code are cleared by a job that follows: `origin` is `clearing` until it is " +
          "`cleared` (GET the link). Send If-Match with the link's ETag; of racing unlinks one wins " +
          'and the others get 412. Repeating it with the ETag of the ended link answers the ended link (safe to ' +
          'retry). A link with linked records inside it (a project with linked cost codes) answers 409 listing ' +
          'them, unless `cascade=true`, which unlinks them too.',
        params: LinkParams,
        headers: IfMatchHeaders,
        querystring: Type.Object(
          {
            cascade: Type.Optional(
              Type.Boolean({ default: false, description: 'Unlink the linked records inside this one too.' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: Link, ...problems(400, 401, 403, 404, 409, 412, 428) },
      },
    },
    async (request, reply) => {
      const { link, etag } = await unlink(
        app.ctx,
        request.params.companyId,
        request.params.linkId,
        expectedVersion(request),
        apiActor(request.principal.keyId, request.id),
        { cascade: request.query.cascade },
      )
      return reply.header('etag', etag).send(link)
    },
  )
}

export default links
