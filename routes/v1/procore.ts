import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { emptyBodyIsObject } from '../../src/api/body.js'
import { expectedVersion } from '../../src/api/etag.js'
import { connect, deleteWebhook, disconnect, getConnection, putWebhook } from '../../src/procore/connect.js'
import { PayloadVersions } from '../../src/procore/webhooks.js'
import {
  CompanyParams,
  DateTime,
  IdempotencyHeaders,
  IfMatchHeaders,
  Nullable,
  problems,
} from '../../src/schemas/common.js'
import { ProcoreConnectBody, ProcoreConnection, ProcoreWebhook } from '../../src/schemas/procore.js'
import { Run } from '../../src/schemas/runs.js'
import { requestReconcile } from '../../src/sync/ingest.js'
import { consumedProcoreWebhookResources, RecordTypes } from '../../src/sync/registry.js'

const tags = ['procore']

const procore: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/companies/:companyId/procore',
    {
      schema: {
        tags,
        summary: 'Get the Procore connection',
        description:
          "The company's Procore connection and webhook installation: mode, state, token expiry. Never a secret.",
        params: CompanyParams,
        response: { 200: ProcoreConnection, ...problems(401, 404) },
      },
    },
    async (request, reply) => {
      const { connection, etag } = await getConnection(app.ctx, request.params.companyId)
      return reply.header('etag', etag).send(connection)
    },
  )

  app.post(
    '/companies/:companyId/procore/connect',
    {
      config: { permission: 'admin' },
      schema: {
        tags,
        summary: 'Connect the company to Procore',
        description:
          '`client_credentials`: checks the service account against Procore right away (a token, then access to this ' +
          'company) and stores it encrypted. `authorization_code`: returns `authorizeUrl`; open it as a Procore user ' +
          'who may authorize the app. Procore sends the browser back to `/oauth/procore/callback`, which completes ' +
          'the connection. The `state` in the URL is signed, single use, and expires after 10 minutes. Connecting ' +
          'again replaces the stored credentials (and clears `needs_reauth`).',
        params: CompanyParams,
        headers: IdempotencyHeaders,
        body: ProcoreConnectBody,
        response: {
          200: Type.Object({
            connection: ProcoreConnection,
            authorizeUrl: Nullable(Type.String({ description: 'authorization_code: where to send the person.' })),
            stateExpiresAt: Nullable(DateTime),
          }),
          ...problems(400, 401, 403, 404, 409, 422, 503),
        },
      },
    },
    async (request) => connect(app.ctx, request.params.companyId, request.body, request.principal.keyId),
  )

  app.delete(
    '/companies/:companyId/procore',
    {
      config: { permission: 'admin' },
      schema: {
        tags,
        summary: 'Disconnect from Procore',
        description:
          'Deletes our webhook in Procore, revokes the token (best effort) and forgets every stored secret. ' +
          'Send If-Match with the ETag of GET …/procore.',
        params: CompanyParams,
        headers: IfMatchHeaders,
        response: { 204: Type.Null({ description: 'Disconnected.' }), ...problems(401, 403, 404, 412, 428) },
      },
    },
    async (request, reply) => {
      await disconnect(app.ctx, request.params.companyId, expectedVersion(request))
      return reply.code(204).send(null)
    },
  )

  app.put(
    '/companies/:companyId/procore/webhook',
    {
      config: { permission: 'admin' },
      preValidation: emptyBodyIsObject,
      schema: {
        tags,
        summary: 'Install or update the Procore webhook',
        description:
          'Creates or updates our hook in Procore (namespace PROCORE_WEBHOOK_NAMESPACE, destination ' +
          'PUBLIC_URL/webhooks/procore, a generated secret as its Authorization header) and its triggers: create, ' +
          'update and delete of every resource this service consumes, through the bulk endpoint. Idempotent. ' +
          '`rotateSecret` issues a new secret; the previous one stays valid for WEBHOOK_SECRET_GRACE_HOURS. Triggers ' +
          'Procore does not offer (e.g. delete of Projects) are listed as unsupported.',
        params: CompanyParams,
        body: Type.Object(
          {
            rotateSecret: Type.Optional(Type.Boolean({ default: false })),
            payloadVersion: Type.Optional(
              Type.Enum([...PayloadVersions], {
                description:
                  "Default: v4.0 for a new hook (Procore's advice), else unchanged. v2.0/v3.0 carry " +
                  'metadata.source_application_id, which lets our own changes be skipped without a read.',
              }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: ProcoreWebhook, ...problems(400, 401, 403, 404, 409, 422, 502, 503) },
      },
    },
    async (request) =>
      putWebhook(app.ctx, request.params.companyId, {
        ...request.body,
        resourceNames: consumedProcoreWebhookResources(),
      }),
  )

  app.delete(
    '/companies/:companyId/procore/webhook',
    {
      config: { permission: 'admin' },
      schema: {
        tags,
        summary: 'Remove the Procore webhook',
        description:
          'Deletes our hook in Procore (best effort) and its secrets here: later deliveries are refused with 401.',
        params: CompanyParams,
        response: { 204: Type.Null({ description: 'Removed.' }), ...problems(401, 403, 404) },
      },
    },
    async (request, reply) => {
      await deleteWebhook(app.ctx, request.params.companyId)
      return reply.code(204).send(null)
    },
  )

  app.post(
    '/companies/:companyId/procore/reconcile',
    {
      config: { permission: 'sync' },
      preValidation: emptyBodyIsObject,
      schema: {
        tags,
        summary: 'Reconcile snapshots with Procore',
        description:
          'Queues a run that re-lists records from Procore and updates the snapshots, catching changes whose ' +
          'webhooks were lost. Vendors, users and projects are listed with filters[updated_at] since the ' +
          'last successful run (all of them with `full`); departments and cost codes have no such filter ' +
          'and are always listed in full, which also finds deletions. Answers 202 with the run; poll it ' +
          'at the Location. A run already queued for the company is returned (widened to this request) ' +
          'instead of a second one. Also runs hourly.',
        params: CompanyParams,
        headers: IdempotencyHeaders,
        body: Type.Object(
          {
            full: Type.Optional(Type.Boolean({ default: false })),
            types: Type.Optional(
              Type.Array(Type.Enum([...RecordTypes]), {
                uniqueItems: true,
                maxItems: RecordTypes.length,
                description: 'Default: every record type.',
              }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 202: Run, ...problems(400, 401, 403, 404, 409, 422) },
      },
    },
    async (request, reply) => {
      const run = await requestReconcile(app.ctx, request.params.companyId, request.body, request.principal.keyId)
      return reply.code(202).header('location', `/v1/companies/${request.params.companyId}/runs/${run.id}`).send(run)
    },
  )
}

export default procore
