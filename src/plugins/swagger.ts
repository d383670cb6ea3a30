import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { ProblemSchema } from '../schemas/common.js'

export const openApiInfo = {
  title: 'Procore ⇄ ERP sync',
  version: '0.1.0',
  description:
    'Keeps Procore and an accounting ERP in step for many companies: links records that exist in both, creates ' +
    'missing ones, resolves drift field by field, runs send-to-ERP approvals and sync schedules.\n\n' +
    'Authenticate with `Authorization: Bearer <API key>`. Errors are RFC 9457 `application/problem+json`. Lists are ' +
    'cursor-paginated (`limit`, `cursor` → `next`). POSTs accept `Idempotency-Key`; changes to existing resources ' +
    'need `If-Match` with the ETag from your last GET.',
}

/** OpenAPI 3.1 generated from the route schemas; Swagger UI at /docs, the document at /openapi.json. */
export default fp(
  async function openapi(app: FastifyInstance) {
    app.addSchema(ProblemSchema)
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: openApiInfo,
        components: {
          securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'An API key: `esk_…`.' } },
        },
        tags: [
          { name: 'companies', description: 'Procore companies this service syncs, each with its ERP system.' },
          { name: 'api-keys', description: 'Keys for internal callers: a role and a company scope each.' },
          {
            name: 'webhook-events',
            description: 'The inbox of Procore webhooks and ERP notifications, with processing state.',
          },
          {
            name: 'erp',
            description:
              "Each company's ERP agent (ERP Connector Protocol, openapi/erp-connector.json): connection, " +
              'notification secret, refresh, and the notification endpoint.',
          },
          { name: 'runs', description: 'Background work to poll: refreshes and other long-running sync actions.' },
          {
            name: 'procore',
            description:
              "Each company's Procore connection (service account or OAuth), webhook installation and reconciliation.",
          },
          {
            name: 'webhooks',
            description: 'Deliveries from Procore (authenticated by the Authorization header we installed).',
          },
          {
            name: 'records',
            description:
              'Records of each type from both sides with their sync status, match suggestions, ignore, ' +
              'and create-on-the-other-side.',
          },
          {
            name: 'exports',
            description:
              'Send to ERP with accounting acceptance: eligibility, send, the approver queue, accept, reject, ' +
              'retrieve, re-send.',
          },
          {
            name: 'subscriptions',
            description: 'Outbound webhooks to your own systems (Standard Webhooks signatures), with delivery logs.',
          },
          { name: 'links', description: 'Pairs of a Procore record and its ERP twin: link, bulk link, unlink.' },
          {
            name: 'discrepancies',
            description: 'Linked pairs whose fields differ, resolved field by field and applied to both systems.',
          },
          {
            name: 'sync-settings',
            description: 'Per record type: direction, the owner of each field, auto-link and auto-create.',
          },
          {
            name: 'audit',
            description:
              'Who linked, unlinked, created, applied, propagated or changed settings, with before and after values.',
          },
          { name: 'operations', description: 'Health and metrics.' },
        ],
      },
      refResolver: {
        buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`),
      },
    })
    await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { persistAuthorization: true } })
    app.get('/openapi.json', { schema: { hide: true } }, () => app.swagger())
  },
  { name: 'openapi' },
)
