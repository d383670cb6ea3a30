import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { receiveNotification } from '../../src/inbox/receive.js'
import { CompanyParams, problems } from '../../src/schemas/common.js'

/** Notifications are thin (a resource and an id): 256 KiB is far more than any honest one needs. */
const BODY_LIMIT = 256 * 1024

/**
 * ERP change notifications, signed per Standard Webhooks. An encapsulated plugin outside /v1 (no
 * API key: the signature authenticates) whose only body parser keeps the raw bytes, so the HMAC
 * is checked over exactly what was sent, before anything is parsed or stored.
 */
const erpWebhooks: FastifyPluginAsyncTypebox = async (app) => {
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: BODY_LIMIT }, (_request, body, done) =>
    done(null, body),
  )

  app.post(
    '/webhooks/erp/:companyId',
    {
      bodyLimit: BODY_LIMIT,
      schema: {
        tags: ['erp'],
        summary: 'Receive an ERP change notification',
        description:
          'Where the ERP agent POSTs `recordChanged` notifications (see `webhooks` in openapi/erp-connector.json): ' +
          '`{"type": "record.updated", "resource": "vendors", "id": "V000123", "occurred_at": "…"}`, signed per ' +
          "Standard Webhooks 1.0 with the company's notification secret: `webhook-signature: v1,<base64 HMAC-SHA256 " +
          'of "{webhook-id}.{webhook-timestamp}.{raw body}">`, timestamps within 5 minutes, several space-separated ' +
          'signatures allowed while a secret is rotated. 204 once stored (a repeated webhook-id is stored once); ' +
          'the record is then re-read from the agent. An authentic body that is not a notification is kept as ' +
          'quarantined (see GET /v1/companies/{companyId}/webhook-events) and still answered 204. 401 when the ' +
          'signature or timestamp is wrong (nothing stored), 503 + Retry-After when storing failed.',
        params: CompanyParams,
        headers: Type.Object({
          'webhook-id': Type.Optional(
            Type.String({ description: 'Message id, the same on every retry of one notification.' }),
          ),
          'webhook-timestamp': Type.Optional(Type.String({ description: 'Unix seconds of this attempt.' })),
          'webhook-signature': Type.Optional(Type.String({ description: 'Space-separated `v1,<base64>` signatures.' })),
        }),
        response: {
          204: Type.Null({ description: 'Stored (or already stored).' }),
          ...problems(400, 401, 413, 415, 503),
        },
      },
    },
    async (request, reply) => {
      const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0)
      await receiveNotification(app.ctx, request.params.companyId, request.headers, body)
      return reply.code(204).send(null)
    },
  )
}

export default erpWebhooks
