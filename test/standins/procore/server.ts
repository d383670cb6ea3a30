// The stand-in's HTTP server: parsing and serialising as Procore does, the request gate
// (faults, rate limit, token, Procore-Company-Id; §3.2, §3.4), then the routes.
import { randomUUID } from 'node:crypto'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import { ApiError, parseQuery, str, type Query } from './http.js'
import { normalizeIds, parseJson, toJson } from './json.js'
import { jobCostRoutes, type JobCosts } from './job-costs.js'
import { bearerOf, oauthRoutes, type OAuthServer, type Principal } from './oauth.js'
import { accountRoutes, resourceRoutes, type Resources } from './resources.js'
import type { Store } from './store.js'
import { playFault, RATE_LIMIT_MESSAGE, type Faults, type RateLimiter } from './traffic.js'
import { webhookRoutes, type Actor, type Webhooks } from './webhooks.js'

export interface Call {
  method: string
  path: string
  query: Query
  companyHeader: string | undefined
  at: number
  /** Response status; 0 when the connection was reset instead. */
  status: number
  /** The X-Request-Id of the answer. */
  requestId: string
  /** The parsed request body, once read (writes: which records a call changed). */
  body?: unknown
}

export interface ServerDeps {
  store: Store
  resources: Resources
  webhooks: Webhooks
  oauth: OAuthServer
  faults: Faults
  rateLimiter: RateLimiter
  calls: Call[]
  baseUrl(): string
  jobCosts: JobCosts
}

/** Endpoints that work without Procore-Company-Id, except for DMSA (client credentials) tokens. */
const COMPANY_HEADER_OPTIONAL = new Set(['GET /rest/v1.0/me', 'GET /rest/v1.0/companies'])

export function buildServer(deps: ServerDeps): FastifyInstance {
  const { store, oauth, faults, rateLimiter, calls } = deps
  const app = Fastify({
    logger: false,
    genReqId: () => randomUUID(),
    routerOptions: { querystringParser: parseQuery },
  })
  const principals = new WeakMap<FastifyRequest, Principal>()
  const callOf = new WeakMap<FastifyRequest, Call>()

  // Ids beyond 2^53 must survive parsing, and id fields go back out as bare integers.
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, body === '' ? {} : normalizeIds(parseJson(String(body))))
    } catch {
      done(new ApiError(400, { errors: 'The request body is not valid JSON' }), undefined)
    }
  })
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(String(body))))
  })
  app.setReplySerializer((payload) => toJson(payload))

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id)
    const path = request.url.split('?', 1)[0] ?? ''
    const call: Call = {
      method: request.method,
      path,
      query: request.query as Query,
      companyHeader: str(request.headers['procore-company-id']),
      at: Date.now(),
      status: 0,
      requestId: request.id,
    }
    calls.push(call)
    callOf.set(request, call)

    const fault = faults.take(request.method, path)
    if (fault && (await playFault(fault, request, reply))) return reply
    if (!path.startsWith('/rest/')) return

    const token = bearerOf(request)
    const principal = oauth.verify(token)
    const bucket = `${typeof principal === 'string' ? (token ?? '') : principal.clientId}|${call.companyHeader ?? ''}`
    const rate = rateLimiter.take(bucket)
    reply
      .header('x-rate-limit-limit', String(rate.limit))
      .header('x-rate-limit-remaining', String(rate.remaining))
      .header('x-rate-limit-reset', String(rate.reset))
    if (!rate.allowed) {
      const retryAfter = Math.max(1, rate.reset - Math.floor(Date.now() / 1000))
      return reply
        .code(429)
        .header('retry-after', String(retryAfter))
        .type('text/plain; charset=utf-8')
        .send(RATE_LIMIT_MESSAGE)
    }
    if (typeof principal === 'string') {
      reply.header(
        'www-authenticate',
        `Bearer realm="Doorkeeper", error="invalid_token", ` +
          `error_description="The access token ${principal === 'expired' ? 'expired' : 'is invalid'}"`,
      )
      throw new ApiError(401, { errors: 'The access token is invalid' })
    }
    principals.set(request, principal)

    const headerOptional =
      COMPANY_HEADER_OPTIONAL.has(`${request.method} ${path}`) && principal.grant !== 'client_credentials'
    if (call.companyHeader === undefined) {
      if (!headerOptional) throw new ApiError(400, { errors: 'Missing Procore-Company-Id header!' })
    } else if (!store.companies.has(call.companyHeader)) {
      throw new ApiError(403, { errors: 'App is not connected to this company' })
    }
  })
  app.addHook('preHandler', async (request) => {
    const call = callOf.get(request)
    if (call && request.body !== undefined) call.body = request.body
  })
  app.addHook('onSend', async (request, reply) => {
    const call = callOf.get(request)
    if (call) call.status = reply.statusCode
  })

  app.setErrorHandler((error, _request, reply) => {
    if (error instanceof ApiError) return reply.code(error.statusCode).send(error.body)
    const status =
      typeof error === 'object' && error !== null && 'statusCode' in error && typeof error.statusCode === 'number'
        ? error.statusCode
        : 500
    if (status < 500) return reply.code(status).send({ errors: error instanceof Error ? error.message : 'Bad request' })
    return reply.code(500).send({ errors: 'Internal server error' })
  })
  app.setNotFoundHandler((_request, reply) => reply.code(404).send({ errors: 'Not Found' }))

  const actorOf = (request: FastifyRequest): Actor => {
    const principal = principals.get(request)
    return { userId: principal?.user.id ?? null, applicationId: principal?.clientId ?? null }
  }
  const ctx = { store, resources: deps.resources, baseUrl: () => deps.baseUrl(), actorOf }
  oauthRoutes(app, oauth)
  accountRoutes(app, { ...ctx, me: (request) => ({ ...(principals.get(request)?.user ?? {}) }) })
  resourceRoutes(app, ctx)
  webhookRoutes(app, { ...ctx, webhooks: deps.webhooks })
  jobCostRoutes(app, ctx, deps.jobCosts)
  return app
}
