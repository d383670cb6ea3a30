import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { pageOf } from '../../src/api/pagination.js'
import {
  CompanyIdString,
  CompanyParams,
  IdempotencyHeaders,
  Page,
  PageQuery,
  problems,
} from '../../src/schemas/common.js'
import {
  BatchResult,
  TimeEntry,
  TimeEntryBatch,
  TimeEntryExternalId,
  TimeEntryStatusParam,
} from '../../src/schemas/time-entries.js'
import { acceptTimeEntries, getTimeEntry, listTimeEntries, voidTimeEntry } from '../../src/timecards/entries.js'

const EntryParams = Type.Object({ companyId: CompanyIdString, externalId: TimeEntryExternalId })
const tags = ['time entries']
const base = '/companies/:companyId/time-entries'

const timeEntries: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    base,
    {
      config: { permission: 'sync', idempotency: 'optional' },
      schema: {
        tags,
        summary: 'Submit approved time entries',
        description:
          'Takes up to 1,000 approved entries from a time-keeping system and writes each to Procore as a timecard ' +
          'entry, through a background job per company. `user`, `project` and `costCode` name a record on either ' +
          'side: `erp:<ERP id>` or `procore:<Procore id>`; each must be linked, and the cost code must belong to ' +
          'the project. Give `hours`, or `timeIn` and `timeOut`. Each entry is accepted or refused on its own: 202 ' +
          'lists `accepted` (with `change`: created, updated, unchanged, voided) and `refused` (index, code, detail, ' +
          'fix); a batch with nothing accepted is a 422 whose `refused` lists them all. A shape error (a wrong ' +
          'type, both hours and timeIn, a bad date) is a 400 naming `/body/entries/<index>/<field>`, and nothing ' +
          'is stored. `externalId` is the key: resubmitting an entry updates its Procore twin (keyed by an integer ' +
          'origin_id allocated once per entry), an unchanged one sends nothing, and `voided: true` removes it from ' +
          'Procore. Follow the entries with GET …/time-entries.',
        params: CompanyParams,
        headers: IdempotencyHeaders,
        body: TimeEntryBatch,
        response: { 202: BatchResult, ...problems(400, 401, 403, 404, 409, 413, 422) },
      },
    },
    async (request, reply) => {
      const result = await acceptTimeEntries(app.db, request.params.companyId, request.body)
      return reply.code(202).send(result)
    },
  )

  app.get(
    base,
    {
      schema: {
        tags,
        summary: 'List time entries and their state in Procore',
        description:
          "In the order they were first accepted. Each entry: its status (pending, sent, failed with Procore's " +
          'message in `error`, voided), its Procore id and origin_id. `date` narrows to one working day.',
        params: CompanyParams,
        querystring: Type.Object(
          {
            ...PageQuery,
            status: Type.Optional(TimeEntryStatusParam),
            date: Type.Optional(Type.String({ format: 'date', description: 'A working day, YYYY-MM-DD.' })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Page(TimeEntry), ...problems(400, 401, 404) },
      },
    },
    async (request) =>
      listTimeEntries(
        app.db,
        request.params.companyId,
        { status: request.query.status, date: request.query.date },
        pageOf(request.query),
      ),
  )

  app.get(
    `${base}/:externalId`,
    {
      schema: {
        tags,
        summary: 'Get a time entry',
        description: 'One entry by its id in the time-keeping system (percent-encode it in the path).',
        params: EntryParams,
        response: { 200: TimeEntry, ...problems(400, 401, 404) },
      },
    },
    async (request) => getTimeEntry(app.db, request.params.companyId, request.params.externalId),
  )

  app.delete(
    `${base}/:externalId`,
    {
      config: { permission: 'sync' },
      schema: {
        tags,
        summary: 'Void a time entry',
        description:
          'Removes its Procore timecard entry (through the job; the entry reads `voided` once done). Safe to ' +
          'repeat. Resubmitting the entry later without `voided` sends it again.',
        params: EntryParams,
        response: { 202: TimeEntry, ...problems(400, 401, 403, 404) },
      },
    },
    async (request, reply) =>
      reply.code(202).send(await voidTimeEntry(app.db, request.params.companyId, request.params.externalId)),
  )
}

export default timeEntries
