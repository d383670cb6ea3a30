import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import type pg from 'pg'
import { Counter } from 'prom-client'
import { AppError } from '../errors.js'

export interface PressureOptions {
  pool: pg.Pool
  /** Requests already queued for a database connection beyond which new ones are refused (0: no check). */
  maxPoolWaiting: number
  /** Event-loop delay (p99 over the last seconds, ms) beyond which new requests are refused (0: no check). */
  maxEventLoopDelayMs: number
}

/**
 * Back-pressure: while the pool's queue is long or the event loop lags, a new request is answered
 * 503 + Retry-After at once, before it adds to the queue, instead of every request slowing past
 * its callers' timeouts. Health and metrics are always answered.
 */
export default fp(
  async function pressure(app: FastifyInstance, options: PressureOptions) {
    const delay = monitorEventLoopDelay({ resolution: 20 })
    delay.enable()
    let lagMs = 0
    const sample = setInterval(() => {
      lagMs = delay.percentile(99) / 1e6
      delay.reset()
    }, 2000)
    sample.unref()
    // Start-up (loading modules, registering routes) is not request-time lag: measuring starts when the app is ready,
    // or the first requests after a slow start would be refused for it.
    app.addHook('onReady', async () => {
      delay.reset()
      lagMs = 0
    })
    app.addHook('onClose', () => {
      clearInterval(sample)
      delay.disable()
    })
    const refused = new Counter({
      name: 'http_pressure_refused_total',
      help: 'Requests answered 503 at once because the database pool queue or the event-loop delay was too high.',
      labelNames: ['reason'],
      registers: [app.metrics],
    })

    // Callback-style: every request runs it, and an async hook costs a promise and a microtask turn each.
    app.addHook('onRequest', (request, _reply, done) => {
      const url = request.url
      if (url.startsWith('/health/') || url === '/metrics') return done()
      const reason =
        options.maxPoolWaiting > 0 && options.pool.waitingCount > options.maxPoolWaiting
          ? 'pool'
          : options.maxEventLoopDelayMs > 0 && lagMs > options.maxEventLoopDelayMs
            ? 'event_loop'
            : undefined
      if (!reason) return done()
      refused.inc({ reason })
      done(
        new AppError(
          503,
          'overloaded',
          'Service overloaded',
          'The service is busy and refused this request before doing anything. Retry after the Retry-After delay.',
          { headers: { 'retry-after': '2' } },
        ),
      )
    })
  },
  { name: 'pressure', dependencies: ['metrics'] },
)
