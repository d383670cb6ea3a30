import { pageOf } from '../../src/api/pagination.js'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { CompanyIdString, CompanyParams, Page, PageQuery, problems } from '../../src/schemas/common.js'
import { Run } from '../../src/schemas/runs.js'
import { getRun, listRuns } from '../../src/sync/runs.js'

const tags = ['runs']

const runs: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/companies/:companyId/runs',
    {
      schema: {
        tags,
        summary: 'List runs',
        description: "The company's runs, newest first; filter by `kind`.",
        params: CompanyParams,
        querystring: Type.Object(
          { ...PageQuery, kind: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })) },
          { additionalProperties: false },
        ),
        response: { 200: Page(Run), ...problems(400, 401, 404) },
      },
    },
    async (request) => listRuns(app.db, request.params.companyId, { kind: request.query.kind }, pageOf(request.query)),
  )

  app.get(
    '/companies/:companyId/runs/:runId',
    {
      schema: {
        tags,
        summary: 'Get a run',
        description: 'One run: poll it until status is succeeded or failed.',
        params: Type.Object({ companyId: CompanyIdString, runId: Type.String({ format: 'uuid' }) }),
        response: { 200: Run, ...problems(400, 401, 404) },
      },
    },
    async (request) => getRun(app.db, request.params.companyId, request.params.runId),
  )
}

export default runs
