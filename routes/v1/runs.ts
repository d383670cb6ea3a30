import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { CompanyIdString, CompanyParams, Page, PageQuery, problems } from '../../src/api/schemas.js'
import { RunStatuses } from '../../src/db/tables/records.js'
import { getRun, listRuns } from '../../src/sync/runs.js'

/** Background work a caller can poll: refreshes, reconciliations, bulk creates. */
export const Run = Type.Object({
  id: Type.String({ format: 'uuid' }),
  companyId: CompanyIdString,
  kind: Type.String({ description: 'What the run does, e.g. erp_refresh.' }),
  status: Type.String({ description: `One of ${RunStatuses.join(', ')}: queued → running → succeeded | failed. A running run that hit a transient failure says so in result.lastError and is retried.`, examples: ['succeeded'] }),
  params: Type.Record(Type.String(), Type.Unknown(), { description: 'What was asked for.' }),
  result: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()], { description: 'Progress while running, the outcome when finished (counts per record type).' }),
  error: Type.Union([Type.String(), Type.Null()], { description: 'Why the run failed.' }),
  requestedBy: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
  startedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  finishedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
})

const tags = ['runs']

const runs: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/companies/:companyId/runs', {
    schema: {
      tags, summary: 'List runs', description: "The company's runs, newest first; filter by `kind`.",
      params: CompanyParams,
      querystring: Type.Object({ ...PageQuery, kind: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })) }, { additionalProperties: false }),
      response: { 200: Page(Run), ...problems(400, 401, 404) },
    },
  }, async (request) => listRuns(app.db, request.params.companyId, { kind: request.query.kind }, { limit: request.query.limit ?? 50, cursor: request.query.cursor }))

  app.get('/companies/:companyId/runs/:runId', {
    schema: {
      tags, summary: 'Get a run', description: 'One run: poll it until status is succeeded or failed.',
      params: Type.Object({ companyId: CompanyIdString, runId: Type.String({ format: 'uuid' }) }),
      response: { 200: Run, ...problems(400, 401, 404) },
    },
  }, async (request) => getRun(app.db, request.params.companyId, request.params.runId))
}

export default runs
