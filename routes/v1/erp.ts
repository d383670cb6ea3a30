import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { expectedVersion } from '../../src/api/etag.js'
import { emptyBodyIsObject } from '../../src/api/body.js'
import { getConnection, putConnection, rotateNotificationSecret, testConnection } from '../../src/erp/connections.js'
import { CompanyParams, IdempotencyHeaders, IfMatchHeaders, problems } from '../../src/schemas/common.js'
import { ErpCheckReport, ErpConnection, ErpConnectionInput, NotificationSecret } from '../../src/schemas/erp.js'
import { Run } from '../../src/schemas/runs.js'
import { requestRefresh } from '../../src/sync/ingest.js'
import { RecordTypes } from '../../src/sync/registry.js'

const tags = ['erp']

const erp: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/companies/:companyId/erp/connection',
    {
      schema: {
        tags,
        summary: "Get the company's ERP connection",
        description:
          "The agent's URL, what it said about itself at the last test, where it must send notifications, and the " +
          "last test's outcome. Never the token or secrets.",
        params: CompanyParams,
        response: { 200: ErpConnection, ...problems(401, 404) },
      },
    },
    async (request, reply) => {
      const { connection, etag } = await getConnection(app.ctx, request.params.companyId)
      return reply.header('etag', etag).send(connection)
    },
  )

  app.put(
    '/companies/:companyId/erp/connection',
    {
      config: { permission: 'admin' },
      schema: {
        tags,
        summary: 'Connect the company to its ERP agent',
        description:
          'Creates or replaces the connection to the agent that speaks the ERP Connector Protocol for this company ' +
          '(see openapi/erp-connector.json). The agent is tested first (GET /v1/info): it must be reachable, accept ' +
          "the token, speak protocol 1.x and serve the company's erpSystem; otherwise 422 with `check` saying what " +
          'failed, and nothing is saved. A new connection answers 201 with `notificationSecret`, shown only then: ' +
          'enter it and `notifications.url` in the agent. Replacing an existing connection needs If-Match with its ' +
          'ETag and keeps the notification secret. The token is stored encrypted and never shown.',
        params: CompanyParams,
        headers: IfMatchHeaders,
        body: ErpConnectionInput,
        response: {
          200: Type.Object({ ...ErpConnection.properties, check: ErpCheckReport }),
          201: Type.Object({
            ...ErpConnection.properties,
            check: ErpCheckReport,
            notificationSecret: NotificationSecret,
          }),
          ...problems(400, 401, 403, 404, 412, 422, 428),
        },
      },
    },
    async (request, reply) => {
      const ifMatch = request.headers['if-match'] === undefined ? undefined : expectedVersion(request)
      const result = await putConnection(app.ctx, request.params.companyId, request.body, ifMatch)
      void reply.header('etag', result.etag).header('cache-control', 'no-store')
      if (result.created) {
        return reply
          .code(201)
          .header('location', `/v1/companies/${request.params.companyId}/erp/connection`)
          .send({ ...result.connection, check: result.check, notificationSecret: result.notificationSecret ?? '' })
      }
      return reply.send({ ...result.connection, check: result.check })
    },
  )

  app.post(
    '/companies/:companyId/erp/connection/test',
    {
      config: { permission: 'sync' },
      schema: {
        tags,
        summary: 'Test the ERP connection',
        description:
          "Calls the agent's GET /v1/info with the stored token and reports what works and what failed; the outcome " +
          'is also kept as `lastCheck`. Always 200 when a connection exists: read `ok`.',
        params: CompanyParams,
        headers: IdempotencyHeaders,
        response: { 200: ErpCheckReport, ...problems(400, 401, 403, 404, 409, 422) },
      },
    },
    async (request) => testConnection(app.ctx, request.params.companyId),
  )

  app.post(
    '/companies/:companyId/erp/notification-secret',
    {
      config: { permission: 'admin', idempotency: 'required' },
      schema: {
        tags,
        summary: 'Rotate the ERP notification secret',
        description:
          'Creates a new secret for signing ERP change notifications and returns it (only here). The previous ' +
          'secret stays valid for WEBHOOK_SECRET_GRACE_HOURS (see `previousSecretValidUntil`), so the agent can ' +
          'switch without losing notifications. Requires an Idempotency-Key: a retry with the same key returns ' +
          'the same secret instead of rotating twice.',
        params: CompanyParams,
        headers: IdempotencyHeaders,
        response: {
          200: Type.Object({
            notificationSecret: NotificationSecret,
            notificationUrl: Type.String(),
            previousSecretValidUntil: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
          }),
          ...problems(400, 401, 403, 404, 409, 422),
        },
      },
    },
    async (request, reply) => {
      const { etag, ...rotated } = await rotateNotificationSecret(app.ctx, request.params.companyId)
      return reply.header('etag', etag).header('cache-control', 'no-store').send(rotated)
    },
  )

  app.post(
    '/companies/:companyId/erp/refresh',
    {
      config: { permission: 'sync' },
      schema: {
        tags,
        summary: 'Refresh ERP-side records',
        description:
          "Starts a run that pages through the agent's lists (every record type, or `type`) into ERP-side snapshots " +
          'and marks deleted a record it no longer lists once a re-read answers 404. Job cost codes are read for ' +
          'every ERP job. Answers 202 with the run; poll it at the Location (GET /v1/companies/{companyId}/runs/' +
          '{runId}). A run already queued for the company is returned (widened to this request) instead of a ' +
          'second one; runs of one company execute one after another. 409 when the company has no ERP connection.',
        params: CompanyParams,
        headers: IdempotencyHeaders,
        body: Type.Object(
          {
            type: Type.Optional(
              Type.Enum([...RecordTypes], { description: 'Only this record type; all when absent.' }),
            ),
          },
          { additionalProperties: false, description: 'Optional: no body refreshes every type.' },
        ),
        response: { 202: Run, ...problems(400, 401, 403, 404, 409, 422) },
      },
      // A bare POST (no body) is a refresh of everything.
      preValidation: emptyBodyIsObject,
    },
    async (request, reply) => {
      const run = await requestRefresh(
        app.ctx,
        request.params.companyId,
        request.body.type,
        `api-key:${request.principal.keyId}`,
      )
      return reply.code(202).header('location', `/v1/companies/${request.params.companyId}/runs/${run.id}`).send(run)
    },
  )
}

export default erp
