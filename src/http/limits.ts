// Per-key bulkheads and rate-limit budgets (a key is usually a company id, so one company's
// load neither starves nor throttles another's).

import { wholeNumber } from './headers.js'

class Semaphore {
  #active = 0
  readonly #waiters: Array<() => void> = []
  readonly #limit: number

  constructor(limit: number) {
    this.#limit = limit
  }

  get idle(): boolean {
    return this.#active === 0 && this.#waiters.length === 0
  }

  async acquire(): Promise<void> {
    if (this.#active < this.#limit) {
      this.#active++
      return
    }
    await new Promise<void>((resolve) => this.#waiters.push(resolve))
  }

  release(): void {
    // Hand the slot straight to the next waiter, so a newcomer cannot overtake it.
    const next = this.#waiters.shift()
    if (next === undefined) this.#active--
    else next()
  }
}

export class ConcurrencyLimiter {
  readonly #byKey = new Map<string, Semaphore>()
  readonly #limit: number

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError('maxConcurrency must be a positive integer')
    this.#limit = limit
  }

  async run<R>(key: string, task: () => Promise<R>): Promise<R> {
    let semaphore = this.#byKey.get(key)
    if (semaphore === undefined) {
      semaphore = new Semaphore(this.#limit)
      this.#byKey.set(key, semaphore)
    }
    await semaphore.acquire()
    try {
      return await task()
    } finally {
      semaphore.release()
      if (semaphore.idle) this.#byKey.delete(key)
    }
  }
}

export interface Budget {
  remaining: number
  /** epoch ms */
  resetAt: number
}

/** Remembers X-Rate-Limit-Remaining / X-Rate-Limit-Reset so we stop sending before the upstream says 429. */
export class RateBudgets {
  readonly #byKey = new Map<string, Budget>()

  observe(key: string, status: number, headers: Readonly<Record<string, string>>, now: number): void {
    const reset = wholeNumber(headers['x-rate-limit-reset'])
    // A 429 means the budget is spent even if the upstream forgot the Remaining header.
    const remaining = status === 429 ? 0 : wholeNumber(headers['x-rate-limit-remaining'])
    if (reset === undefined || remaining === undefined) return
    const resetAt = reset * 1000
    if (resetAt <= now) return
    const known = this.#byKey.get(key)
    // Same window: concurrent responses arrive in any order, and the lowest count is the latest.
    // Another window (Procore reports the hourly or the 10-second one, whichever is closer): take it.
    if (known?.resetAt === resetAt) known.remaining = Math.min(known.remaining, remaining)
    else this.#byKey.set(key, { remaining, resetAt })
  }

  /** The budget last observed for this key, if its window has not reset yet. */
  peek(key: string, now: number): Readonly<Budget> | undefined {
    const budget = this.#byKey.get(key)
    return budget !== undefined && now < budget.resetAt ? { ...budget } : undefined
  }

  /** Takes one request from the budget, or returns how long (ms) to wait before trying again. */
  take(key: string, now: number): number {
    const budget = this.#byKey.get(key)
    if (budget === undefined) return 0
    if (now >= budget.resetAt) {
      this.#byKey.delete(key)
      return 0
    }
    if (budget.remaining > 0) {
      budget.remaining--
      return 0
    }
    return budget.resetAt - now
  }
}
