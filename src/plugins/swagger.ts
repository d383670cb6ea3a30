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
    'missing ones on the other side, and resolves drift field by field, learning about changes from Procore ' +
    'webhooks and signed ERP notifications. Procore records are sent to the ERP through an accounting approver, ' +
    'and each sync type runs on its own schedule.\n\n' +
    'Work through the groups in order: register a company, connect Procore and the ERP, then records, links, ' +
    'discrepancies, exports and the sync schedule. Examples use the ids of `npm run demo` (company 5358233, ' +
    'the vendor "Acme Concrete": 4300000006 in Procore, V000001 in the ERP).\n\n' +
    'Authenticate with `Authorization: Bearer <API key>`. Errors are RFC 9457 `application/problem+json`. Lists are ' +
    'cursor-paginated (`limit`, `cursor` → `next`). POSTs accept `Idempotency-Key` (required where marked; Swagger ' +
    'UI sends a fresh one for the example value); changes to existing resources need `If-Match` with the ETag from ' +
    'your last GET.',
}

/** Groups in the order a person works through them. */
const tags = [
  { name: 'companies', description: 'Procore companies this service syncs, each with its ERP system.' },
  {
    name: 'procore',
    description:
      "Each company's Procore connection (service account or OAuth), webhook installation and reconciliation.",
  },
  {
    name: 'erp',
    description:
      "Each company's ERP agent (ERP Connector Protocol, openapi/erp-connector.json): connection, " +
      'notification secret and refresh.',
  },
  {
    name: 'records',
    description:
      'Records of each type from both sides with their sync status, match suggestions, ignore, ' +
      'and create-on-the-other-side.',
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
    name: 'onboarding',
    description:
      'The five-step set-up of a company: the Procore company and cost code list, users, projects, cost codes ' +
      '(each linked or created, auto or record by record), and the sync direction per type.',
  },
  {
    name: 'exports',
    description:
      'Send to ERP with accounting acceptance: eligibility, send, the approver queue, accept, reject, ' +
      'retrieve, re-send.',
  },
  {
    name: 'sync-schedule',
    description:
      'Per sync type: hourly, every 2 h, every 4 h, daily or never, the next due time and the last run; run on demand.',
  },
  {
    name: 'time entries',
    description:
      'Approved time from a time-keeping system, written to Procore timecard entries for linked users, projects ' +
      "and cost codes: submit (each entry accepted or refused), void, and each entry's state in Procore.",
  },
  {
    name: 'runs',
    description: 'Background work to poll and cancel: scheduled and on-demand syncs, creates, bulk links, exports.',
  },
  {
    name: 'audit',
    description:
      'Who linked, unlinked, created, applied, propagated or changed settings, with before and after values.',
  },
  {
    name: 'webhook-events',
    description: 'The inbox of Procore webhooks and ERP notifications, with processing state.',
  },
  {
    name: 'webhooks',
    description:
      'Deliveries to this service: Procore webhooks (authenticated by the Authorization header we installed) and ERP ' +
      'notifications (Standard Webhooks signatures).',
  },
  {
    name: 'subscriptions',
    description: 'Outbound webhooks to your own systems (Standard Webhooks signatures), with delivery logs.',
  },
  { name: 'api-keys', description: 'Keys for internal callers: a role and a company scope each.' },
  { name: 'operations', description: 'Health and metrics.' },
]

/**
 * Example values by property or parameter name, for ids whose pattern Swagger UI would otherwise fill with random
 * characters and for request bodies it cannot guess. They are the ids `npm run demo` prints, so "Try it out" works
 * against the demo as it is. A value is used only where the schema allows it (an enum must contain it); `name[]`
 * stands for the items of the array `name`.
 */
const examplesByName: Record<string, unknown> = {
  companyId: '5358233',
  procoreId: '4300000006',
  erpId: 'V000001',
  procoreIds: ['4300000007'],
  erpIds: ['V000002'],
  externalId: '4300000006',
  eventId: '1',
  type: 'vendor',
  side: 'procore',
  notificationSecret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
}
/** Only in request bodies: the shapes Swagger UI would fill with `additionalProp1` or every enum's first value. */
const requestExamplesByName: Record<string, unknown> = {
  // a discrepancy's fields: a side each, or a value of your own
  fields: { name: 'erp', email: 'erp', phone: { value: '555-0199' } },
  types: {
    vendor: {
      direction: 'both',
      fieldOwners: { name: 'erp', email: 'manual', phone: 'manual' },
      autoLink: false,
      autoCreate: false,
    },
  },
}

/** The Idempotency-Key example; Swagger UI replaces it with a fresh key on every "Execute" (see below). */
export const IDEMPOTENCY_KEY_EXAMPLE = '3f2b8c1e-7a4d-4e8f-9b1c-5d6e7f8a9b0c'

/**
 * Runs in the browser (Swagger UI serialises it into its page): a "Try it out" that still carries the example
 * Idempotency-Key gets a fresh one, so each Execute is a new request rather than a replay (or a 422 for another
 * body). A key typed in by hand is sent as it is.
 */
export function freshIdempotencyKey(request: { headers: Record<string, string> }) {
  for (const name of Object.keys(request.headers)) {
    if (name.toLowerCase() === 'idempotency-key' && request.headers[name] === '3f2b8c1e-7a4d-4e8f-9b1c-5d6e7f8a9b0c') {
      request.headers[name] =
        globalThis.crypto?.randomUUID?.() ?? `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`
    }
  }
  return request
}

type JsonObject = Record<string, unknown>
const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v)

function exampleFor(name: string | undefined, inRequest: boolean): unknown {
  if (!name) return undefined
  if (name.endsWith('[]')) {
    const list = examplesByName[name.slice(0, -2)]
    return Array.isArray(list) ? list[0] : undefined
  }
  return examplesByName[name] ?? (inRequest ? requestExamplesByName[name] : undefined)
}

/** Whether `value` fits the schema's type and enum (enough to keep an example honest). */
function allows(schema: JsonObject, value: unknown): boolean {
  if (Array.isArray(schema.anyOf)) return schema.anyOf.some((s) => isObject(s) && allows(s, value))
  if (Array.isArray(schema.enum)) return schema.enum.includes(value)
  switch (schema.type) {
    case 'string':
      return typeof value === 'string'
    case 'array':
      return Array.isArray(value)
    case 'object':
      return isObject(value)
    default:
      return schema.type === undefined
  }
}

/** Gives every schema and parameter that has no example, and whose name has one that fits, that example, in place. */
function addExamples(node: unknown, name?: string, inRequest = false): void {
  if (Array.isArray(node)) return node.forEach((n) => addExamples(n, name, inRequest))
  if (!isObject(node)) return
  if (typeof node.in === 'string' && typeof node.name === 'string' && isObject(node.schema)) {
    const value = exampleFor(node.name, true)
    if (node.example === undefined && node.examples === undefined && value !== undefined && allows(node.schema, value))
      node.example = value
    return addExamples(node.schema, node.name, inRequest)
  }
  const value = exampleFor(name, inRequest)
  if (value !== undefined && node.example === undefined && node.examples === undefined && allows(node, value))
    node.examples = [value]
  for (const [key, child] of Object.entries(node)) {
    if (key === 'properties' && isObject(child))
      for (const [prop, schema] of Object.entries(child)) addExamples(schema, prop, inRequest)
    else if (key === 'items') addExamples(child, name === undefined ? undefined : `${name}[]`, inRequest)
    else if (key === 'requestBody') addExamples(child, undefined, true)
    else if (key !== 'example' && key !== 'examples') addExamples(child, undefined, inRequest)
  }
}

/** The documented headers schema with `idempotency-key` required, when the route refuses requests without it. */
function requireIdempotencyKey(headers: unknown): unknown {
  if (!isObject(headers) || !isObject(headers.properties) || !('idempotency-key' in headers.properties)) return headers
  const required: unknown[] = Array.isArray(headers.required) ? headers.required : []
  return {
    ...headers,
    required: [...new Set([...required, 'idempotency-key'])],
    properties: {
      ...headers.properties,
      'idempotency-key': {
        ...(headers.properties['idempotency-key'] as JsonObject),
        description:
          'Required: makes the request safe to retry; the same key and body replay the first response (kept ≥ 24 h). ' +
          'Any unique string up to 255 characters, e.g. a UUID.',
      },
    },
  }
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
        tags,
      },
      transform: ({ schema, url, route }) => {
        const documented: JsonObject = { ...(schema as JsonObject) }
        // Both sides' deliveries to us are one group, whichever connector a route file belongs to.
        if (url.startsWith('/webhooks/')) documented.tags = ['webhooks']
        if (route.config?.idempotency === 'required') documented.headers = requireIdempotencyKey(documented.headers)
        const headers = documented.headers
        if (isObject(headers) && isObject(headers.properties) && isObject(headers.properties['idempotency-key']))
          headers.properties['idempotency-key'] = {
            ...headers.properties['idempotency-key'],
            examples: [IDEMPOTENCY_KEY_EXAMPLE],
          }
        return { schema: documented, url }
      },
      transformObject: (document) => {
        if (!('openapiObject' in document)) return document.swaggerObject
        addExamples(document.openapiObject.paths)
        return document.openapiObject
      },
      refResolver: {
        buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`),
      },
    })
    await app.register(swaggerUi, {
      routePrefix: '/docs',
      uiConfig: { persistAuthorization: true, requestInterceptor: freshIdempotencyKey } as Record<string, unknown>,
    })
    app.get('/openapi.json', { schema: { hide: true } }, () => app.swagger())
  },
  { name: 'openapi' },
)
