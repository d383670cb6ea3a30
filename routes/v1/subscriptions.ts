import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { pageOf } from '../../src/api/pagination.js'
import {
  createSubscription,
  deleteSubscription,
  getSubscription,
  listDeliveries,
  listSubscriptions,
  testSend,
} from '../../src/notify/webhooks.js'
import { CompanyIdString, CompanyParams, Page, PageQuery, problems } from '../../src/schemas/common.js'
import { CreatedSubscription, Delivery, NewSubscription, Subscription } from '../../src/schemas/notify.js'

const SubscriptionParams = Type.Object({ companyId: CompanyIdString, subscriptionId: Type.String({ format: 'uuid' }) })
const tags = ['subscriptions']
const base = '/companies/:companyId/subscriptions'

const subscriptions: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    base,
    {
      config: { permission: 'admin' },
      schema: {
        tags,
        summary: 'Subscribe a URL to events',
        description:
          'Events are POSTed as JSON `{type, timestamp, data}`, signed per Standard Webhooks 1.0 (webhook-id, ' +
          'webhook-timestamp, webhook-signature `v1,` HMAC-SHA256 of "{id}.{timestamp}.{body}" with the secret in ' +
          'this answer, shown once). A delivery not answered 2xx is retried with backoff for 24 hours. Admin.',
        params: CompanyParams,
        body: NewSubscription,
        response: { 201: CreatedSubscription, ...problems(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const created = await createSubscription(
        app.ctx,
        request.params.companyId,
        request.body,
        `api-key:${request.principal.keyId}`,
      )
      return reply
        .code(201)
        .header('location', `/v1/companies/${request.params.companyId}/subscriptions/${created.id}`)
        .send(created)
    },
  )

  app.get(
    base,
    {
      config: { permission: 'admin' },
      schema: {
        tags,
        summary: 'List subscriptions',
        description: 'Newest first; secrets are never shown again. Admin.',
        params: CompanyParams,
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: { 200: Page(Subscription), ...problems(400, 401, 403, 404) },
      },
    },
    async (request) => listSubscriptions(app.db, request.params.companyId, pageOf(request.query)),
  )

  app.get(
    `${base}/:subscriptionId`,
    {
      config: { permission: 'admin' },
      schema: {
        tags,
        summary: 'Get a subscription',
        description: 'Its URL and events (not its secret). Admin.',
        params: SubscriptionParams,
        response: { 200: Subscription, ...problems(400, 401, 403, 404) },
      },
    },
    async (request) => getSubscription(app.db, request.params.companyId, request.params.subscriptionId),
  )

  app.delete(
    `${base}/:subscriptionId`,
    {
      config: { permission: 'admin' },
      schema: {
        tags,
        summary: 'Delete a subscription',
        description: 'Nothing more is sent to it, pending retries included.',
        params: SubscriptionParams,
        response: { 204: Type.Null(), ...problems(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      await deleteSubscription(app.db, request.params.companyId, request.params.subscriptionId)
      return reply.code(204).send(null)
    },
  )

  app.get(
    `${base}/:subscriptionId/deliveries`,
    {
      config: { permission: 'admin' },
      schema: {
        tags,
        summary: 'Delivery log of a subscription',
        description: 'Newest first: each message as sent, its status, attempts and the last answer or error.',
        params: SubscriptionParams,
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: { 200: Page(Delivery), ...problems(400, 401, 403, 404) },
      },
    },
    async (request) =>
      listDeliveries(app.db, request.params.companyId, request.params.subscriptionId, pageOf(request.query)),
  )

  app.post(
    `${base}/:subscriptionId/test`,
    {
      config: { permission: 'admin' },
      schema: {
        tags,
        summary: 'Send a test message',
        description: 'Queues a signed `webhook.test` message to this subscription; see its delivery log.',
        params: SubscriptionParams,
        response: { 202: Type.Object({ queued: Type.Boolean() }), ...problems(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      await testSend(app.ctx, request.params.companyId, request.params.subscriptionId)
      return reply.code(202).send({ queued: true })
    },
  )
}

export default subscriptions
