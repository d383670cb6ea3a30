import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Counter } from 'prom-client'
import { AppError } from '../errors.js'

const WINDOW_MS = 60_000

/**
 * Requests per API key per minute (a fixed window), answered 429 problem+json with Retry-After
 * and the draft-standard `RateLimit-Limit/Remaining/Reset` headers. Counted in this process: no
 * database round trip per request, and it keeps limiting while PostgreSQL is slow or away, which
 * is when it matters most. With N instances behind a balancer a key may reach N times the limit.
 */
export default fp(
  async function rateLimit(app: FastifyInstance, options: { perMinute: number }) {
    if (options.perMinute <= 0) return
    const windows = new Map<string, { start: number; count: number }>()
    const limited = new Counter({
      name: 'http_rate_limited_total',
      help: 'Requests refused with 429 because their API key was over its per-minute limit.',
      registers: [app.metrics],
    })
    const sweep = setInterval(() => {
      const now = Date.now()
      for (const [key, w] of windows) if (now - w.start >= WINDOW_MS) windows.delete(key)
    }, WINDOW_MS)
    sweep.unref()
    app.addHook('onClose', () => clearInterval(sweep))

    app.addHook('onRequest', async (request, reply) => {
      const now = Date.now()
      const key = request.principal.keyId
      let w = windows.get(key)
      if (!w || now - w.start >= WINDOW_MS) {
        w = { start: now, count: 0 }
        windows.set(key, w)
      }
      w.count++
      const reset = Math.max(1, Math.ceil((w.start + WINDOW_MS - now) / 1000))
      void reply.header('ratelimit-limit', String(options.perMinute))
      void reply.header('ratelimit-remaining', String(Math.max(0, options.perMinute - w.count)))
      void reply.header('ratelimit-reset', String(reset))
      if (w.count > options.perMinute) {
        limited.inc()
        throw new AppError(
          429,
          'rate_limited',
          'Too many requests',
          `This API key sent more than ${options.perMinute} requests in a minute. Retry after ${reset} s ` +
            '(Retry-After), and spread requests out.',
          { headers: { 'retry-after': String(reset) } },
        )
      }
    })
  },
  { name: 'rate-limit', dependencies: ['auth', 'metrics'] },
)
