import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { emptyBodyIsObject } from '../../src/api/body.js'
import { expectedVersion } from '../../src/api/etag.js'
import {
  CompanyIdString,
  CompanyParams,
  IdempotencyHeaders,
  IfMatchHeaders,
  problems,
} from '../../src/schemas/common.js'
import { Run } from '../../src/schemas/runs.js'
import { RunNowInput, SyncSchedule, SyncScheduleInput } from '../../src/schemas/sync-schedule.js'
import { apiActor } from '../../src/sync/audit.js'
import { getSchedule, putSchedule, runNow, SyncTypeNames } from '../../src/schedules/schedule.js'

const tags = ['sync-schedule']

const syncSchedule: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/companies/:companyId/sync-schedule',
    {
      schema: {
        tags,
        summary: 'Get the sync schedule',
        description:
          'One entry per sync type: its interval (hourly, every_2_hours, every_4_hours, daily with an optional time ' +
          "of day in the schedule's time zone, never), whether it is available for this company's connections and " +
          'ERP agent (and why not), the next due time and the last run. Defaults: hourly for company-level syncs, ' +
          'every two hours for project-level ones. Send the ETag back as If-Match to change it.',
        params: CompanyParams,
        response: { 200: SyncSchedule, ...problems(401, 404) },
      },
    },
    async (request, reply) => {
      const { schedule, etag } = await getSchedule(app.db, request.params.companyId)
      return reply.header('etag', etag).send(schedule)
    },
  )

  app.put(
    '/companies/:companyId/sync-schedule',
    {
      config: { permission: 'admin' },
      schema: {
        tags,
        summary: 'Change the sync schedule',
        description:
          'Changes the interval of each entry given (sync types left out keep theirs) and, optionally, the time ' +
          'zone of daily times. A changed entry is rescheduled at once: its next due time is computed from now. ' +
          'Each invalid field is named with its allowed values. Send If-Match with the ETag of your GET.',
        params: CompanyParams,
        headers: IfMatchHeaders,
        body: SyncScheduleInput,
        response: { 200: SyncSchedule, ...problems(400, 401, 403, 404, 412, 428) },
      },
    },
    async (request, reply) => {
      const { schedule, etag } = await putSchedule(
        app.db,
        request.params.companyId,
        expectedVersion(request),
        request.body,
        apiActor(request.principal.keyId, request.id),
      )
      return reply.header('etag', etag).send(schedule)
    },
  )

  app.post(
    '/companies/:companyId/sync-schedule/:syncType/run',
    {
      config: { permission: 'sync' },
      schema: {
        tags,
        summary: 'Run a sync type now',
        description:
          'Starts a run of this sync type now, outside its schedule (trigger `manual`); its schedule is unchanged. ' +
          'Answers 202 with the run; poll it at the Location. 409 `run_in_progress` with `runId` while a run of ' +
          'this sync type is queued or running; 409 `sync_type_unavailable` when it cannot run for this company. ' +
          '`project_job_costs` sends the cost totals of every linked job to its Procore project (only those ' +
          'changed since the last send); its run reports `result.counts` (sent, unchanged, refused), the refused ' +
          'rows with reason and fix in `result.items`, and the requests spent in `result.apiCalls`.',
        params: Type.Object({
          companyId: CompanyIdString,
          syncType: Type.String({ minLength: 1, maxLength: 64, examples: [SyncTypeNames[0]] }),
        }),
        headers: IdempotencyHeaders,
        body: RunNowInput,
        response: { 202: Run, ...problems(400, 401, 403, 404, 409) },
      },
      preValidation: emptyBodyIsObject,
    },
    async (request, reply) => {
      const { companyId, syncType } = request.params
      const run = await runNow(app.db, companyId, syncType, { full: request.body.full })
      return reply.code(202).header('location', `/v1/companies/${companyId}/runs/${run.id}`).send(run)
    },
  )
}

export default syncSchedule
