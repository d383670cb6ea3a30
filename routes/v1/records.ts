import { pageOf } from '../../src/api/pagination.js'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { CompanyIdString, IdempotencyHeaders, PageQuery, problems } from '../../src/schemas/common.js'
import {
  ExternalId,
  RecordItem,
  RecordPage,
  RecordStatuses,
  RecordTypeParam,
  RecordViews,
  SideParam,
  Suggestion,
} from '../../src/schemas/records.js'
import { Run } from '../../src/schemas/runs.js'
import { apiActor } from '../../src/sync/audit.js'
import { MAX_CREATE_IDS, requestCreate } from '../../src/sync/create.js'
import { getRecord, listRecords, setArchived, setIgnored } from '../../src/sync/status.js'
import { linkCandidates } from '../../src/sync/links.js'
import { LinkCandidate } from '../../src/schemas/links.js'
import { suggestionsFor } from '../../src/sync/suggestions.js'

const TypeParams = Type.Object({ companyId: CompanyIdString, type: RecordTypeParam })
const RecordParams = Type.Object({
  companyId: CompanyIdString,
  type: RecordTypeParam,
  side: SideParam,
  externalId: ExternalId,
})
const Ids = (what: string) =>
  Type.Array(ExternalId, { minItems: 1, maxItems: MAX_CREATE_IDS, description: `${what} (1–${MAX_CREATE_IDS}).` })
const Codes = Type.Optional(
  Type.Record(Type.String({ minLength: 1, maxLength: 255 }), Type.String({ minLength: 1, maxLength: 255 }), {
    description:
      'The ERP code to use per Procore id (department code, employee number, job number, cost code, vendor code), ' +
      "checked against the agent's declared length and format; records not named get a derived code that fits.",
    examples: [{ '5512': '0420' }],
  }),
)
const Force = Type.Optional(
  Type.Boolean({
    default: false,
    description: 'Create even when a strong match exists on the target side (a duplicate, knowingly).',
  }),
)
const tags = ['records']

const records: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/companies/:companyId/records/:type',
    {
      schema: {
        tags,
        summary: 'List records with their sync status',
        description:
          'Records of one type from both sides, each with its status: a linked pair is one row, a record ' +
          'on one side only is one row. Filter by `status`, search names and codes with `q` (substring, ' +
          'case-insensitive). `counts` gives the number per status for everything `q` matches. Ordered by the ' +
          "type's display field (name, e-mail, number or code).",
        params: TypeParams,
        querystring: Type.Object(
          {
            ...PageQuery,
            status: Type.Optional(
              Type.Enum([...new Set([...RecordStatuses, ...RecordViews])], {
                description:
                  "A status, or one of the filters of Procore's ERP Integrations tool (ready_to_import, " +
                  'ready_to_export, ready_to_update, failed, synced, archived); `views` counts the latter.',
              }),
            ),
            q: Type.Optional(
              Type.String({ minLength: 1, maxLength: 200, description: 'Search text (name, code, e-mail, number).' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: RecordPage, ...problems(400, 401, 404) },
      },
    },
    async (request) =>
      listRecords(app.db, request.params.companyId, request.params.type, request.query, pageOf(request.query)),
  )

  app.get(
    '/companies/:companyId/records/:type/:side/:externalId',
    {
      schema: {
        tags,
        summary: 'Get one record with its status',
        description: 'The record (and its linked twin, if any) as listed by GET …/records/{type}.',
        params: RecordParams,
        response: { 200: RecordItem, ...problems(400, 401, 404) },
      },
    },
    async (request) =>
      getRecord(app.db, request.params.companyId, request.params.type, request.params.side, request.params.externalId),
  )

  app.get(
    '/companies/:companyId/records/:type/:side/:externalId/suggestions',
    {
      schema: {
        tags,
        summary: 'Match suggestions for a record',
        description:
          'Ranked candidates on the other side that are free to link, each with a score (0–1) and the reasons ("same ' +
          'e-mail", "name 0.92 similar", "same tax id"). Link one with POST /v1/companies/{companyId}/links.',
        params: RecordParams,
        querystring: Type.Object(
          { limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 50, default: 10 })) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ items: Type.Array(Suggestion) }), ...problems(400, 401, 404) },
      },
    },
    async (request) => {
      const { companyId, type, side, externalId } = request.params
      await getRecord(app.db, companyId, type, side, externalId) // 404 for an unknown record
      return { items: await suggestionsFor(app.db, companyId, type, side, externalId, request.query.limit ?? 10) }
    },
  )

  for (const [action, ignored] of [
    ['ignore', true],
    ['unignore', false],
  ] as const) {
    app.post(
      `/companies/:companyId/records/:type/:side/:externalId/${action}`,
      {
        config: { permission: 'sync' },
        schema: {
          tags,
          summary: ignored ? 'Ignore a record' : 'Stop ignoring a record',
          description: ignored
            ? 'Sets an unlinked record aside: status `ignored`, no suggestions for or to it, never ' +
              'auto-imported. Safe to repeat.'
            : 'Undoes ignore: the record is matched and auto-imported again. Safe to repeat.',
          params: RecordParams,
          headers: IdempotencyHeaders,
          response: { 200: RecordItem, ...problems(400, 401, 403, 404, 409, 422) },
        },
      },
      async (request) => {
        const { companyId, type, side, externalId } = request.params
        return setIgnored(
          app.db,
          companyId,
          type,
          side,
          externalId,
          ignored,
          apiActor(request.principal.keyId, request.id),
        )
      },
    )
  }

  for (const [action, archived] of [
    ['archive', true],
    ['unarchive', false],
  ] as const) {
    app.post(
      `/companies/:companyId/records/:type/:side/:externalId/${action}`,
      {
        config: { permission: 'sync' },
        schema: {
          tags,
          summary: archived ? 'Archive an inactive ERP job' : 'Unarchive an ERP job',
          description: archived
            ? 'Archives an unlinked record of a type that has archiving (ERP jobs: POST …/records/project/erp/' +
              "{jobId}/archive), as Procore's ERP Integrations tool archives inactive jobs: status `ignored`, " +
              'listed under the `archived` filter, off ready-to-import, never suggested or auto-imported. Archived ' +
              'and ignored are one state. Safe to repeat; 422 for a type or side without archiving.'
            : 'Undoes archive: the job is listed, matched and auto-imported again. Safe to repeat.',
          params: RecordParams,
          headers: IdempotencyHeaders,
          response: { 200: RecordItem, ...problems(400, 401, 403, 404, 409, 422) },
        },
      },
      async (request) => {
        const { companyId, type, side, externalId } = request.params
        return setArchived(
          app.db,
          companyId,
          type,
          side,
          externalId,
          archived,
          apiActor(request.principal.keyId, request.id),
        )
      },
    )
  }

  app.get(
    '/companies/:companyId/records/:type/:side/:externalId/link-candidates',
    {
      schema: {
        tags,
        summary: 'Records this one could be linked to, with eligibility',
        description:
          'The ranked match suggestions on the other side, plus with `q` the unlinked records whose names or codes ' +
          'contain it: each with `eligible` and every unmet link prerequisite (code, detail, fix, fixable). For an ' +
          'ERP job: GET …/records/project/erp/{jobId}/link-candidates?q=tower. Link one with POST …/links.',
        params: RecordParams,
        querystring: Type.Object(
          {
            q: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Search text (name, number).' })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 50, default: 20 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ items: Type.Array(LinkCandidate) }), ...problems(400, 401, 404) },
      },
    },
    async (request) => {
      const { companyId, type, side, externalId } = request.params
      await getRecord(app.db, companyId, type, side, externalId) // 404 for an unknown record
      const { q, limit } = request.query
      return { items: await linkCandidates(app.ctx, companyId, type, side, externalId, q, limit ?? 20) }
    },
  )

  // One route per target side; the body names the ids of the other side.
  const creates = [
    {
      target: 'procore' as const,
      ids: 'erpIds' as const,
      summary: 'Create ERP records in Procore and link them',
      description:
        'Starts a run that creates each ERP record in Procore (through the batch sync endpoint, keyed by origin_id ' +
        '= the ERP id, so a retry never duplicates) and links it. Refused per record, with the reason: unknown or ' +
        'already linked, a strong match already in Procore (named; pass force to create anyway), a field Procore ' +
        "requires is empty. Projects are created ERP-integrated on the company's ERP standard cost code list and " +
        'need name, address, city, state, ZIP and country: a request naming a job without them is refused whole ' +
        '(422, each missing field named). Answers 202 with the run; GET its Location for a result per record.',
    },
    {
      target: 'erp' as const,
      ids: 'procoreIds' as const,
      summary: 'Create Procore records in the ERP and link them',
      description:
        'Starts a run that creates each Procore record in the ERP (with an Idempotency-Key derived from company, ' +
        'type and Procore id, so a retried or rerun job never duplicates), links it and writes the new ERP id into ' +
        "Procore's origin_id. The ERP's rules (name length per ERP, required fields, code format) are checked first " +
        'and refusals say what to fix; a strong match already in the ERP is refused unless force. Answers 202 with ' +
        'the run; GET its Location for a result per record.',
    },
  ]
  for (const c of creates) {
    app.post(
      `/companies/:companyId/records/:type/create-in-${c.target}`,
      {
        config: { permission: 'sync', idempotency: 'required' },
        schema: {
          tags,
          summary: c.summary,
          description: c.description,
          params: TypeParams,
          headers: IdempotencyHeaders,
          body: Type.Object(
            {
              [c.ids]: Ids(
                c.target === 'procore' ? 'ERP ids to create in Procore' : 'Procore ids to create in the ERP',
              ),
              force: Force,
              ...(c.target === 'erp' && { codes: Codes }),
            },
            { additionalProperties: false },
          ),
          response: { 202: Run, ...problems(400, 401, 403, 404, 409, 422) },
        },
      },
      async (request, reply) => {
        const { companyId, type } = request.params
        const body = request.body as Record<string, string[] | boolean | undefined>
        const run = await requestCreate(
          app.db,
          companyId,
          type,
          c.target,
          body[c.ids] as string[],
          body.force === true,
          apiActor(request.principal.keyId, request.id),
          (request.body as { codes?: Record<string, string> }).codes,
        )
        return reply.code(202).header('location', `/v1/companies/${companyId}/runs/${run.id}`).send(run)
      },
    )
  }
}

export default records
