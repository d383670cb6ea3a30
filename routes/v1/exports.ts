import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { expectedVersion } from '../../src/api/etag.js'
import { badRequest } from '../../src/errors.js'
import { pageOf } from '../../src/api/pagination.js'
import {
  acceptExport,
  eligibility,
  getExport,
  getExportSettings,
  listExports,
  putExportSettings,
  rejectExport,
  retrieveExport,
  sendExport,
} from '../../src/exports/requests.js'
import {
  CompanyIdString,
  CompanyParams,
  IdempotencyHeaders,
  IfMatchHeaders,
  Page,
  PageQuery,
  problems,
} from '../../src/schemas/common.js'
import {
  Eligibility,
  ExportRequest,
  ExportRequestDetail,
  ExportStatusParam,
  Person,
} from '../../src/schemas/exports.js'
import { FieldValue, RecordTypeParam } from '../../src/schemas/records.js'
import { apiActor } from '../../src/sync/audit.js'
import { exportableTypes } from '../../src/sync/registry.js'

const RecordId = Type.String({ minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7e]+$', examples: ['5621'] })
const ExportParams = Type.Object({ companyId: CompanyIdString, exportId: Type.String({ format: 'uuid' }) })
const tags = ['exports']
const base = '/companies/:companyId/exports'

const exports: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    `${base}/eligibility`,
    {
      schema: {
        tags,
        summary: 'Can this record be sent to the ERP?',
        description:
          'Every unmet requirement at once ("why is Send to ERP greyed out"): the record is inactive, already ' +
          'linked or waiting, a field the ERP requires is empty, a text is longer than this ERP accepts (Vista 60, ' +
          "QuickBooks Desktop 41, Sage 300 / Spectrum / Foundation 30 for vendor names, and the agent's " +
          "max_lengths), or the project's ERP data is not synced (project-level items). Each reason has a fix.",
        params: CompanyParams,
        querystring: Type.Object({ type: RecordTypeParam, procoreId: RecordId }, { additionalProperties: false }),
        response: { 200: Eligibility, ...problems(400, 401, 404, 422) },
      },
    },
    async (request) => {
      const { eligible, reasons } = await eligibility(
        app.db,
        request.params.companyId,
        request.query.type,
        request.query.procoreId,
      )
      return { eligible, reasons }
    },
  )

  app.post(
    base,
    {
      config: { permission: 'sync' },
      schema: {
        tags,
        summary: 'Send a Procore record to the ERP for accounting acceptance',
        description:
          'Answers 201 `pending_acceptance` with a frozen copy of the record as sent, or 422 naming every reason ' +
          'it is not eligible (see …/exports/eligibility). While the request is open the record is held: ' +
          'nothing else creates or links it. After `rejected`, `retrieved` or `failed_to_export`, the same call ' +
          're-sends it (the new request points at the earlier one). When the type exports without approval ' +
          '(…/exports/settings), the request is accepted at once with `erpId`. Operator or admin.',
        params: CompanyParams,
        headers: IdempotencyHeaders,
        body: Type.Object(
          {
            type: RecordTypeParam,
            procoreId: RecordId,
            note: Type.Optional(Type.String({ maxLength: 2000 })),
            sentBy: Person,
            erpId: Type.Optional(
              Type.String({ minLength: 1, maxLength: 255, description: 'Only for direct export (no approval).' }),
            ),
          },
          {
            additionalProperties: false,
            examples: [
              {
                type: 'vendor',
                procoreId: '5621',
                note: 'New drywall sub for the Riverside job',
                sentBy: { name: 'Pat Sender', email: 'pat@riverside.example' },
              },
              { type: 'invoice', procoreId: '7310', sentBy: { name: 'Pat Sender' } },
            ],
          },
        ),
        response: { 201: ExportRequestDetail, ...problems(400, 401, 403, 404, 409, 422) },
      },
    },
    async (request, reply) => {
      const { request: sent, etag } = await sendExport(
        app.ctx,
        request.params.companyId,
        request.body,
        apiActor(request.principal.keyId, request.id),
      )
      return reply
        .code(201)
        .header('etag', etag)
        .header('location', `/v1/companies/${request.params.companyId}/exports/${sent.id}`)
        .send(sent)
    },
  )

  app.get(
    base,
    {
      schema: {
        tags,
        summary: "The approver's queue",
        description:
          'Export requests, newest first, by status (repeat or comma-separate: `status=pending_acceptance` is ' +
          '"Ready to Export", `failed_to_export` "Failed to Export"), type, and `q` (name, code or Procore id).',
        params: CompanyParams,
        querystring: Type.Object(
          {
            ...PageQuery,
            status: Type.Optional(
              Type.String({ pattern: '^[a-z_]+(,[a-z_]+)*$', examples: ['pending_acceptance,failed_to_export'] }),
            ),
            type: Type.Optional(RecordTypeParam),
            q: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Page(ExportRequest), ...problems(400, 401, 404) },
      },
    },
    async (request) => {
      const statuses = request.query.status?.split(',')
      const known = ExportStatusParam.enum as readonly string[]
      const bad = statuses?.filter((s) => !known.includes(s)) ?? []
      if (bad.length > 0) {
        throw badRequest('invalid_status', `Unknown status ${bad.join(', ')}; use ${known.join(', ')}.`, [
          { pointer: '/query/status', message: `one or more of ${known.join(', ')}` },
        ])
      }
      return listExports(
        app.db,
        request.params.companyId,
        {
          status: statuses as never,
          type: request.query.type,
          q: request.query.q,
        },
        pageOf(request.query),
      )
    },
  )

  app.get(
    `${base}/settings`,
    {
      schema: {
        tags,
        summary: 'Export settings per record type',
        description: '`requireApproval` (default true): false exports at once on send, with the same request trail.',
        params: CompanyParams,
        response: {
          200: Type.Record(Type.String(), Type.Object({ requireApproval: Type.Boolean() })),
          ...problems(401, 404),
        },
      },
    },
    async (request) => getExportSettings(app.db, request.params.companyId),
  )

  app.put(
    `${base}/settings`,
    {
      config: { permission: 'admin' },
      schema: {
        tags,
        summary: 'Change export settings',
        description: 'Per exportable type: `requireApproval`. Admin.',
        params: CompanyParams,
        body: Type.Object(
          Object.fromEntries(
            exportableTypes().map((type) => [
              type,
              Type.Optional(Type.Object({ requireApproval: Type.Boolean() }, { additionalProperties: false })),
            ]),
          ),
          {
            additionalProperties: false,
            examples: [{ vendor: { requireApproval: true }, project: { requireApproval: false } }],
          },
        ),
        response: {
          200: Type.Record(Type.String(), Type.Object({ requireApproval: Type.Boolean() })),
          ...problems(400, 401, 403, 404, 422),
        },
      },
    },
    async (request) =>
      putExportSettings(
        app.db,
        request.params.companyId,
        request.body as Record<string, { requireApproval: boolean }>,
        apiActor(request.principal.keyId, request.id),
      ),
  )

  app.get(
    `${base}/:exportId`,
    {
      schema: {
        tags,
        summary: 'One export request',
        description:
          'With its ETag (for accept and reject), the history of its transitions, and — when the Procore record ' +
          'changed since it was sent — the fields that differ, both values.',
        params: ExportParams,
        response: { 200: ExportRequestDetail, ...problems(400, 401, 404) },
      },
    },
    async (request, reply) => {
      const { request: found, etag } = await getExport(app.db, request.params.companyId, request.params.exportId)
      return reply.header('etag', etag).send(found)
    },
  )

  app.post(
    `${base}/:exportId/accept`,
    {
      config: { permission: 'approve' },
      schema: {
        tags,
        summary: 'Accept: create it in the ERP',
        description:
          'Approver or admin, with If-Match. The ERP id (a vendor code, a job number) must be unused: checked ' +
          'before any ERP call (422). Answers `exporting`; a job then creates the record in the ERP (its ' +
          'Idempotency-Key derived from the request and attempt, so a retry or crash never makes two), links it, ' +
          "writes Procore's origin_id / origin_code, and the request becomes `exported` — or `failed_to_export` " +
          "with the ERP's messages; correct them with `overrides` and accept again, or reject.",
        params: ExportParams,
        headers: IfMatchHeaders,
        body: Type.Object(
          {
            erpId: Type.String({ minLength: 1, maxLength: 255, pattern: '^\\S(.*\\S)?$' }),
            companyType: Type.Optional(Type.String({ maxLength: 50 })),
            overrides: Type.Optional(Type.Record(Type.String(), FieldValue)),
            approver: Type.Optional(Person),
          },
          {
            additionalProperties: false,
            examples: [
              { erpId: 'ACMEDRY', companyType: 'sub', approver: { name: 'Alex Approver' } },
              { erpId: 'AP-2041', approver: { name: 'Alex Approver' } },
            ],
          },
        ),
        response: { 200: ExportRequestDetail, ...problems(400, 401, 403, 404, 409, 412, 422, 428) },
      },
    },
    async (request, reply) => {
      const { request: accepted, etag } = await acceptExport(
        app.ctx,
        request.params.companyId,
        request.params.exportId,
        expectedVersion(request),
        request.body,
        apiActor(request.principal.keyId, request.id),
      )
      return reply.header('etag', etag).send(accepted)
    },
  )

  app.post(
    `${base}/:exportId/reject`,
    {
      config: { permission: 'approve' },
      schema: {
        tags,
        summary: 'Reject, with a reason for the sender',
        description: 'Approver or admin, with If-Match; while pending_acceptance or failed_to_export.',
        params: ExportParams,
        headers: IfMatchHeaders,
        body: Type.Object(
          { reason: Type.String({ minLength: 1, maxLength: 2000 }), approver: Type.Optional(Person) },
          { additionalProperties: false, examples: [{ reason: 'Already in the ERP as V-100; link it instead.' }] },
        ),
        response: { 200: ExportRequestDetail, ...problems(400, 401, 403, 404, 409, 412, 428) },
      },
    },
    async (request, reply) => {
      const { request: rejected, etag } = await rejectExport(
        app.ctx,
        request.params.companyId,
        request.params.exportId,
        expectedVersion(request),
        request.body,
        apiActor(request.principal.keyId, request.id),
      )
      return reply.header('etag', etag).send(rejected)
    },
  )

  app.post(
    `${base}/:exportId/retrieve`,
    {
      config: { permission: 'sync' },
      schema: {
        tags,
        summary: 'Retrieve before a decision',
        description:
          'The sender takes the request back while it is pending_acceptance: the record is editable again and ' +
          'can be re-sent. If-Match optional (412 when stale).',
        params: ExportParams,
        headers: IfMatchHeaders,
        body: Type.Optional(Type.Object({ by: Type.Optional(Person) }, { additionalProperties: false })),
        response: { 200: ExportRequestDetail, ...problems(400, 401, 403, 404, 409, 412) },
      },
    },
    async (request, reply) => {
      const version = request.headers['if-match'] ? expectedVersion(request) : undefined
      const { request: retrieved, etag } = await retrieveExport(
        app.ctx,
        request.params.companyId,
        request.params.exportId,
        version,
        request.body ?? {},
        apiActor(request.principal.keyId, request.id),
      )
      return reply.header('etag', etag).send(retrieved)
    },
  )
}

export default exports
