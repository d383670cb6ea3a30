import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { randomUUID } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import FindMyWay, { type HTTPMethod } from 'find-my-way'
import { AppError, upstreamProblem, type FieldError } from '../errors.js'
import { UpstreamError } from '../http/errors.js'

const PROBLEM_TYPE_BASE = 'urn:procore-erp-sync:problem:'

/** The problem code a request was refused with (4xx), for its log line. */
export const refusals = new WeakMap<FastifyRequest, string>()
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const

/**
 * Renders every error as RFC 9457 application/problem+json: our AppErrors as they are, a failed
 * Procore or ERP call as 502/503 naming the side (translated here, once, wherever it was thrown),
 * Fastify's own errors mapped to stable codes, and anything unexpected as a generic 500 that
 * never echoes internal messages (Fastify's default copies error.message verbatim).
 */
export default fp(
  async function errors(app: FastifyInstance) {
    // A second router that only knows which methods exist per path, to answer 405 instead of 404. It is built when a
    // request first finds no route, not while the routes are registered at start.
    const routes: Array<[HTTPMethod, string]> = []
    let router: ReturnType<typeof FindMyWay> | undefined
    app.addHook('onRoute', (route) => {
      for (const method of [route.method].flat() as HTTPMethod[])
        if (method !== 'HEAD') routes.push([method, route.url])
      router = undefined
    })
    const known = () => {
      if (router) return router
      router = FindMyWay()
      for (const [method, url] of routes) if (!router.hasRoute(method, url)) router.on(method, url, () => {})
      return router
    }

    app.setNotFoundHandler((request, reply) => {
      const path = request.url.split('?')[0] ?? '/'
      const allowed = METHODS.filter((m) => m !== request.method && known().find(m, path) !== null)
      if (allowed.length > 0) {
        void reply.header('allow', allowed.join(', '))
        return sendProblem(
          request,
          reply,
          new AppError(
            405,
            'method_not_allowed',
            'Method not allowed',
            `${request.method} is not supported on ${path}. Allowed: ${allowed.join(', ')}.`,
          ),
        )
      }
      return sendProblem(
        request,
        reply,
        new AppError(
          404,
          'route_not_found',
          'Not found',
          `No route ${request.method} ${path}. The API is described at /openapi.json and browsable at /docs.`,
        ),
      )
    })

    app.setErrorHandler((error: FastifyError | AppError | UpstreamError, request, reply) => {
      if (error instanceof UpstreamError) {
        const problem = upstreamProblem(error)
        // Not our fault, and the log says which call failed; bodies and headers stay out of it.
        const { side, reason, status, method, url, attempts, requestId } = error
        const upstream = { side, reason, status, method, url, attempts, requestId }
        request.log.warn({ code: problem.code, status: problem.status, upstream }, 'upstream failed')
        return sendProblem(request, reply, problem)
      }
      const problem = toAppError(error)
      if (problem.status >= 500) {
        request.log.error({ err: error }, 'request failed')
      } else {
        // Said once, in the request's own log line (app.ts).
        refusals.set(request, problem.code)
      }
      return sendProblem(request, reply, problem)
    })
  },
  { name: 'errors' },
)

/**
 * Fastify's `frameworkErrors`: refusals by the router before any route or hook runs (a path
 * segment longer than 100 characters, a malformed percent-escape), rendered like every other error.
 */
export function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  void reply.header('x-request-id', request.id)
  void sendProblem(request, reply, toAppError(error))
}

/**
 * Node's HTTP parser refused the request before Fastify saw it (headers too large, malformed
 * HTTP, a client too slow to send its request). Answered with a problem body over the raw socket.
 */
export function clientErrorHandler(error: Error & { code?: string }, socket: Duplex) {
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const [status, code, title, detail] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'headers_too_large', 'Request header fields too large', 'Send fewer or shorter headers (16 KiB in all).']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'request_timeout', 'Request timeout', 'The request was not received in time. Send it again.']
        : [400, 'bad_request', 'Bad request', 'The request is not well-formed HTTP/1.1.']
  const requestId = randomUUID()
  const body = JSON.stringify({
    type: `${PROBLEM_TYPE_BASE}${code}`,
    title,
    status,
    detail,
    instance: '/',
    code,
    requestId,
  })
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/problem+json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\n\r\n${body}`,
    )
  }
  socket.destroy(error)
}

export function sendProblem(request: FastifyRequest, reply: FastifyReply, error: AppError) {
  const { headers, errors, ...extras } = error.extras
  for (const [name, value] of Object.entries(headers ?? {})) void reply.header(name, value)
  const body = {
    type: `${PROBLEM_TYPE_BASE}${error.code}`,
    title: error.title,
    status: error.status,
    detail: error.detail,
    instance: request.url.split('?')[0] ?? '/',
    code: error.code,
    requestId: String(request.id),
    ...(errors && { errors }),
    ...extras,
  }
  // Our own serializer: route response schemas must not strip problem members.
  return reply.code(error.status).type('application/problem+json').serializer(JSON.stringify).send(body)
}

function toAppError(error: FastifyError | AppError): AppError {
  if (error instanceof AppError) return error
  if (error.validation) {
    const where = error.validationContext === 'querystring' ? 'query' : (error.validationContext ?? 'body')
    const errors: FieldError[] = error.validation.map((v) => {
      const params = v.params
      let pointer = `/${where}${v.instancePath}`
      let message = v.message ?? 'is invalid'
      if (v.keyword === 'required') {
        pointer += `/${String(params.missingProperty)}`
        message = 'is required'
      } else if (v.keyword === 'additionalProperties') {
        pointer += `/${String(params.additionalProperty)}`
        message = 'is not a known property; remove it (see the schema at /openapi.json)'
      } else if (v.keyword === 'enum') {
        message = `must be one of: ${(params.allowedValues as unknown[]).join(', ')}`
      }
      return { pointer, message }
    })
    const summary = errors.map((e) => `${e.pointer} ${e.message}`).join('; ')
    return new AppError(400, 'validation_failed', 'Invalid request', `Fix these fields and retry: ${summary}.`, {
      errors,
    })
  }
  switch (error.code) {
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new AppError(
        414,
        'uri_too_long',
        'URI too long',
        'A path segment is longer than 100 characters; no id this API issues is that long. Check the URL.',
      )
    case 'FST_ERR_BAD_URL':
      return new AppError(
        400,
        'bad_url',
        'Bad request',
        'The URL has a malformed percent-escape (like %zz). Percent-encode path segments with encodeURIComponent.',
      )
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError(
        413,
        'body_too_large',
        'Payload too large',
        'The request body is larger than this endpoint accepts. Send less data per request (split batches).',
      )
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new AppError(415, 'unsupported_media_type', 'Unsupported media type', 'Send the body as application/json.')
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new AppError(
        400,
        'empty_body',
        'Bad request',
        'Content-Type is application/json but the body is empty. Send a JSON body, or drop the Content-Type header.',
      )
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new AppError(
        400,
        'invalid_json',
        'Bad request',
        'The body is not valid JSON. Check quoting and commas, and that Content-Length matches the body.',
      )
  }
  if (error instanceof SyntaxError || error.statusCode === 400) {
    return new AppError(
      400,
      'bad_request',
      'Bad request',
      'The request could not be read. Check the body is valid JSON and the headers are well formed.',
    )
  }
  // PostgreSQL broke a deadlock or a serialization conflict by rolling this request's transaction back: nothing of
  // it was written, and the same request succeeds when sent again.
  if (error.code === '40P01' || error.code === '40001') {
    return new AppError(
      503,
      'write_conflict',
      'Service unavailable',
      'Another change to the same records was being written at the same moment, and nothing of this request was ' +
        'written. Send it again after the Retry-After delay.',
      { headers: { 'retry-after': '1' } },
    )
  }
  if (error.statusCode === 503) {
    return new AppError(
      503,
      'unavailable',
      'Service unavailable',
      'The service is temporarily unavailable. Retry after the Retry-After delay.',
      { headers: { 'retry-after': '5' } },
    )
  }
  return new AppError(
    500,
    'internal_error',
    'Internal server error',
    'Something went wrong on our side. Nothing was changed unless the response said so; retry, and ' +
      'quote the requestId if it persists.',
  )
}
