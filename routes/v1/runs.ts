import { pageOf } from '../../src/api/pagination.js'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { RunStatuses } from '../../src/db/tables/records.js'
import { cancelRun } from '../../src/jobs/runs.js'
import { CompanyIdString, CompanyParams, Page, PageQuery, problems } from '../../src/schemas/common.js'
import { Run } from '../../src/schemas/runs.js'
import { getRun, listRuns, toRun } from '../../src/sync/runs.js'

const tags = ['runs']
const Filter = (description: string) => Type.Optional(Type.String({ minLength: 1, maxLength: 64, description }))
const RunParams = Type.Object({ companyId: CompanyIdString, runId: Type.String({ format: 'uuid' }) })

const runs: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/companies/:companyId/runs',
    {
      schema: {
        tags,
        summary: 'List runs',
        description: "The company's runs, newest first; filter by `kind`, `syncType`, `status` and `trigger`.",
        params: CompanyParams,
        querystring: Type.Object(
          {
            ...PageQuery,
            kind: Filter('e.g. erp_refresh'),
            syncType: Filter('e.g. erp_vendor_list'),
            status: Type.Optional(Type.Enum([...RunStatuses])),
            trigger: Filter('schedule, manual, webhook, accept…'),
          },
          { additionalProperties: false },
        ),
        response: { 200: Page(Run), ...problems(400, 401, 404) },
      },
    },
    async (request) => {
      const { kind, syncType, status, trigger } = request.query
      return listRuns(app.db, request.params.companyId, { kind, syncType, status, trigger }, pageOf(request.query))
    },
  )

  app.get(
    '/companies/:companyId/runs/:runId',
    {
      schema: {
        tags,
        summary: 'Get a run',
        description: 'One run: poll it until status is succeeded, failed, cancelled or interrupted.',
        params: RunParams,
        response: { 200: Run, ...problems(400, 401, 404) },
      },
    },
    async (request) => getRun(app.db, request.params.companyId, request.params.runId),
  )

  app.post(
    '/companies/:companyId/runs/:runId/cancel',
    {
      config: { permission: 'sync' },
      schema: {
        tags,
        summary: 'Cancel a run',
        description:
          'A queued run ends `cancelled` at once; a running one stops at its next safe point (after the page it ' +
          'is storing) and ends `cancelled`, keeping what it stored. Answers 202 with the run. 409 `run_finished` ' +
          'when the run is already over. Safe to repeat.',
        params: RunParams,
        response: { 202: Run, ...problems(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const row = await cancelRun(app.db, request.params.companyId, request.params.runId)
      return reply.code(202).send(toRun(row))
    },
  )
}

export default runs
