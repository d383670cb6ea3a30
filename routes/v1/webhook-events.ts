import { pageOf } from '../../src/api/pagination.js'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { InboxStatuses, Sides } from '../../src/db/tables/records.js'
import { listEvents, retryEvent } from '../../src/inbox/inbox.js'
import { CompanyParams, IdempotencyHeaders, Page, PageQuery, problems } from '../../src/schemas/common.js'
import { InboxEvent } from '../../src/schemas/webhook-events.js'

const tags = ['webhook-events']

const webhookEvents: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/companies/:companyId/webhook-events',
    {
      schema: {
        tags,
        summary: 'List received webhook events',
        description:
          'Every Procore webhook and ERP notification received for the company, newest first, with its processing ' +
          'state. Filter by `status` to find failures.',
        params: CompanyParams,
        querystring: Type.Object(
          {
            ...PageQuery,
            status: Type.Optional(Type.Enum([...InboxStatuses])),
            source: Type.Optional(Type.Enum([...Sides])),
          },
          { additionalProperties: false },
        ),
        response: { 200: Page(InboxEvent), ...problems(400, 401, 404) },
      },
    },
    async (request) => listEvents(app.db, request.params.companyId, request.query, pageOf(request.query)),
  )

  app.post(
    '/companies/:companyId/webhook-events/:eventId/retry',
    {
      config: { permission: 'sync' },
      schema: {
        tags,
        summary: 'Re-queue a webhook event',
        description:
          'Puts a failed event back in the queue; the record it names is re-read and its ' +
          'snapshot updated. Safe to repeat.',
        params: Type.Object({
          companyId: CompanyParams.properties.companyId,
          eventId: Type.String({ pattern: '^[0-9]{1,19}$' }),
        }),
        headers: IdempotencyHeaders,
        response: { 200: InboxEvent, ...problems(400, 401, 403, 404, 409, 422) },
      },
    },
    async (request) => retryEvent(app.db, request.params.companyId, request.params.eventId),
  )
}

export default webhookEvents
