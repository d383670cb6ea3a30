// What happens to a request before any route sees it: scripted faults and rate limiting (§3.4).
import type { FastifyReply, FastifyRequest } from 'fastify'

export interface Fault {
  match?: { method?: string; pathPrefix?: string }
  status?: number
  retryAfterSeconds?: number
  /** Sets X-Rate-Limit-Reset to now + this many seconds. */
  rateLimitResetInSeconds?: number
  delayMs?: number
  resetConnection?: boolean
  redirectTo?: string
  rawBody?: string
  /** How many matching requests this fault answers (default 1). */
  times?: number
}

export const RATE_LIMIT_MESSAGE =
  'You have surpassed the max number of requests for an hour. Please wait until your limit resets.'

/** Scripted faults, consumed in the order pushed by the requests they match. */
export class Faults {
  private readonly queue: Array<{ fault: Fault; remaining: number }> = []

  push(fault: Fault): void {
    this.queue.push({ fault, remaining: fault.times ?? 1 })
  }

  clear(): void {
    this.queue.length = 0
  }

  take(method: string, path: string): Fault | undefined {
    const index = this.queue.findIndex(({ fault: { match } }) => {
      const methodOk = match?.method === undefined || match.method.toUpperCase() === method.toUpperCase()
      return methodOk && (match?.pathPrefix === undefined || path.startsWith(match.pathPrefix))
    })
    const entry = this.queue[index]
    if (!entry) return undefined
    if (--entry.remaining <= 0) this.queue.splice(index, 1)
    return entry.fault
  }
}

/**
 * Plays a fault. Returns true when the fault answered the request (or killed its socket);
 * a delay-only fault returns false and the request then proceeds normally.
 */
export async function playFault(fault: Fault, request: FastifyRequest, reply: FastifyReply): Promise<boolean> {
  if (fault.delayMs) await new Promise((resolve) => setTimeout(resolve, fault.delayMs))
  if (fault.resetConnection) {
    reply.hijack()
    request.raw.socket.destroy()
    return true
  }
  if (fault.redirectTo !== undefined) {
    await reply.code(302).header('location', fault.redirectTo).send()
    return true
  }
  if (fault.status === undefined && fault.rawBody === undefined) return false
  const status = fault.status ?? 200
  if (fault.retryAfterSeconds !== undefined) reply.header('retry-after', String(fault.retryAfterSeconds))
  if (fault.rateLimitResetInSeconds !== undefined)
    reply.header('x-rate-limit-reset', String(Math.floor(Date.now() / 1000) + fault.rateLimitResetInSeconds))
  if (status === 429) reply.header('x-rate-limit-remaining', '0')
  if (fault.rawBody !== undefined) await reply.code(status).type('application/json; charset=utf-8').send(fault.rawBody)
  else if (status === 429) await reply.code(status).type('text/plain; charset=utf-8').send(RATE_LIMIT_MESSAGE)
  else await reply.code(status).send({ errors: `Scripted fault ${status}` })
  return true
}

export interface RateState {
  limit: number
  remaining: number
  /** Unix seconds at which the window resets. */
  reset: number
  allowed: boolean
}

/** Fixed-window limiter per bucket (token × company, as with DMSA + Procore-Company-Id). */
export class RateLimiter {
  private readonly windows = new Map<string, { start: number; used: number }>()

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}

  take(bucket: string, now = Date.now()): RateState {
    let window = this.windows.get(bucket)
    if (!window || now - window.start >= this.windowMs) {
      window = { start: now, used: 0 }
      this.windows.set(bucket, window)
    }
    const allowed = window.used < this.limit
    if (allowed) window.used++
    return {
      limit: this.limit,
      remaining: this.limit - window.used,
      reset: Math.ceil((window.start + this.windowMs) / 1000),
      allowed,
    }
  }
}
