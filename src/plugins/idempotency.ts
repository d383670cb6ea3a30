import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { claimKey, complete, fingerprint, release, type KeyRef } from '../api/idempotency.js'
import { AppError, badRequest } from '../errors.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** POST routes accept Idempotency-Key; `required` makes it mandatory. */
    idempotency?: 'optional' | 'required'
  }
  interface FastifyRequest {
    idempotency: (KeyRef & { done: boolean }) | null
  }
}

const KEY_SYNTAX = /^[\x20-\x7e]{1,255}$/
const storedBodyBinding = (ref: KeyRef) => `idempotency:${ref.apiKeyId}:${ref.key}`
const REPLAYED_HEADERS = ['content-type', 'etag', 'location'] as const

/**
 * Idempotency-Key for POST (RELIABILITY I1–I2): scope = (API key, key); the first response is
 * stored and replayed byte for byte; the same key with a different request → 422; while the
 * first is still running → 409. 5xx responses are not stored, so a retry runs again.
 */
/** Retries releasing a key with backoff for up to its lease (after which a retry takes it over anyway). */
function releaseLater(app: FastifyInstance, ref: KeyRef, attempt = 0) {
  if (attempt >= 12) return
  const timer = setTimeout(
    () =>
      void release(app.db, ref).then(
        () => app.log.info({ component: 'idempotency' }, 'released an idempotency key after a database failure'),
        () => releaseLater(app, ref, attempt + 1),
      ),
    Math.min(100 * 2 ** attempt, 30_000),
  )
  timer.unref()
}

export default fp(
  async function idempotency(app: FastifyInstance, options: { ttlHours: number }) {
    app.decorateRequest('idempotency', null)

    app.addHook('preHandler', async (request: FastifyRequest, reply) => {
      if (request.method !== 'POST') return
      const raw = request.headers['idempotency-key']
      const mode = request.routeOptions.config.idempotency ?? 'optional'
      if (raw === undefined) {
        if (mode === 'required') {
          throw badRequest(
            'idempotency_key_required',
            'This operation must be safe to retry: send an Idempotency-Key header (any unique string ' +
              'up to 255 characters, e.g. a UUID).',
            [{ pointer: '/headers/idempotency-key', message: 'is required' }],
          )
        }
        return
      }
      const key = [raw]
        .flat()
        .join(',')
        .replace(/^"(.*)"$/, '$1') // the draft standard sends it as a quoted sf-string
      if (!KEY_SYNTAX.test(key)) {
        throw badRequest('invalid_idempotency_key', 'Idempotency-Key must be 1–255 printable ASCII characters.', [
          { pointer: '/headers/idempotency-key', message: 'must be 1–255 printable ASCII characters' },
        ])
      }
      const ref = { apiKeyId: request.principal.keyId, key }
      const claim = await claimKey(
        app.db,
        ref,
        {
          method: request.method,
          route: request.routeOptions.url ?? request.url,
          fingerprint: fingerprint(request.method, request.url, request.body),
        },
        options.ttlHours,
      )
      switch (claim.kind) {
        case 'claimed':
          request.idempotency = { ...ref, done: false }
          return
        case 'mismatch':
          throw new AppError(
            422,
            'idempotency_key_reused',
            'Idempotency-Key reused',
            'This Idempotency-Key was already used for a different request. Use a new key for a new request; ' +
              'reuse a key only to retry the identical request.',
          )
        case 'in_flight':
          throw new AppError(
            409,
            'idempotency_key_in_flight',
            'Request in progress',
            'A request with this Idempotency-Key is still being processed. Retry shortly to receive its result.',
            { headers: { 'retry-after': '1' } },
          )
        case 'replay':
          for (const [name, value] of Object.entries(claim.headers)) void reply.header(name, value)
          return reply
            .code(claim.status)
            .header('idempotent-replayed', 'true')
            .serializer((p: unknown) => p as string)
            .send(app.ctx.secrets.open(claim.body, storedBodyBinding(ref)))
      }
    })

    app.addHook('onSend', async (request, reply, payload) => {
      const ref = request.idempotency
      if (!ref || ref.done) return payload
      ref.done = true
      try {
        if (reply.statusCode >= 500 || typeof payload !== 'string') {
          await release(app.db, ref)
          return payload
        }
        const headers: Record<string, string> = {}
        for (const name of REPLAYED_HEADERS) {
          const value = reply.getHeader(name)
          if (value !== undefined) headers[name] = String(value)
        }
        // Responses may carry secrets shown once (a new API key, a notification secret): stored sealed.
        await complete(app.db, ref, {
          status: reply.statusCode,
          headers,
          body: app.ctx.secrets.seal(payload, storedBodyBinding(ref)),
        })
      } catch (error) {
        // The database went away mid-request. The response is sent as it is (it tells the truth about the
        // work); the key is released once the database answers again, so a retry is not refused for a lease.
        request.log.warn({ err: { message: (error as Error).message } }, 'could not record the idempotency key')
        releaseLater(app, ref)
      }
      return payload
    })

    // A request that never reached onSend (client gone, crash in a hook) must not pin its key.
    app.addHook('onResponse', async (request) => {
      const ref = request.idempotency
      if (ref && !ref.done) {
        ref.done = true
        await release(app.db, ref).catch(() => releaseLater(app, ref))
      }
    })
  },
  { name: 'idempotency', dependencies: ['context', 'auth'] },
)
