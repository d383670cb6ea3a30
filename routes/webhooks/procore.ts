import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { receiveWebhook } from '../../src/inbox/receive.js'
import { authenticateWebhook } from '../../src/procore/intake.js'
import { problems } from '../../src/schemas/common.js'
import { ReceivedWebhook } from '../../src/schemas/webhook-events.js'

/** Procore's events are thin (a resource name and an id): 256 KiB is far more than an honest one needs. */
const BODY_LIMIT = 256 * 1024

/**
 * Procore webhook deliveries. An encapsulated plugin outside /v1 (no API key: Procore's
 * Authorization header is the credential). The header is checked in onRequest, before the body
 * is even read; the only body parser keeps the raw text, which is parsed after authentication.
 */
const procoreWebhooks: FastifyPluginAsyncTypebox = async (app) => {
  app.removeAllContentTypeParsers()
  // Any content type: an authenticated delivery is stored even when it is not what we expect.
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: BODY_LIMIT }, (_request, body, done) =>
    done(null, body),
  )
  const companies = new WeakMap<FastifyRequest, string>()

  app.post(
    '/webhooks/procore',
    {
      bodyLimit: BODY_LIMIT,
      // Callback-style: an authentic delivery is known from memory at once, no promise (see authenticateWebhook).
      onRequest: (request, reply, done) => {
        const startedAt = Date.now() - reply.elapsedTime
        const company = authenticateWebhook(app.ctx, request.headers.authorization, startedAt)
        if (typeof company === 'string') {
          companies.set(request, company)
          return done()
        }
        company.then((id) => {
          companies.set(request, id)
          done()
        }, done)
      },
      schema: {
        tags: ['webhooks'],
        summary: 'Receive a Procore webhook',
        description:
          'The destination of the hook installed by PUT /v1/companies/{companyId}/procore/webhook. Procore sends ' +
          'one event per request (payload v2.0, v3.0 or v4.0, e.g. `{"id": "01J…", "reason": "update", "company_id": ' +
          '"8", "resource_type": "Company Vendors", "resource_id": "379913", …}`) with the Authorization header ' +
          'we gave it. 200 once the event and its processing job are committed (a repeated event is stored once); ' +
          'the record is then re-read from Procore. An authenticated event that is malformed or names a resource ' +
          'this service does not consume is kept as quarantined and still answered 200, so it never blocks ' +
          "Procore's delivery queue. 401 when the Authorization header is not a current secret (nothing is read " +
          'or stored), 503 + Retry-After when storing failed.',
        headers: Type.Object({
          authorization: Type.Optional(Type.String({ description: '`Bearer <company id>.<secret>`, as installed.' })),
        }),
        response: { 200: ReceivedWebhook, ...problems(401, 413, 503) },
      },
    },
    async (request, reply) => {
      const body = typeof request.body === 'string' ? request.body : ''
      const startedAt = Date.now() - reply.elapsedTime
      return receiveWebhook(app.ctx, companies.get(request)!, body, request.headers, startedAt)
    },
  )
}

export default procoreWebhooks
