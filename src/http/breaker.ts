// Circuit breakers per upstream, keyed 'procore:<companyId>' or 'erp:<companyId>': after a run of
// consecutive failures (no answer, a timeout, a 5xx) calls fail fast for an interval instead of
// each waiting for its own timeout; then one call is let through as a probe. A success closes the
// circuit, a failure opens it for another interval. Answers that are refusals (4xx, 429) are the
// upstream alive and talking, and never count as failures.
import { Counter, Gauge, type Registry } from 'prom-client'
import { component, type AppContext } from '../context.js'
import { UPSTREAM_SIDES } from './errors.js'

export interface CircuitBreakerOptions {
  /** Consecutive failures that open a circuit. Default 5. */
  failureThreshold?: number
  /** How long an open circuit refuses calls before letting one probe through. Default 30 000 ms. */
  openMs?: number
  /** epoch ms */
  now?: () => number
}

export const CIRCUIT_STATES = ['closed', 'half_open', 'open'] as const
export type CircuitState = (typeof CIRCUIT_STATES)[number]

/** What a call may do: go ahead (as the one probe of a half-open circuit, or not), or fail fast until retryAt. */
export type Admission = { allowed: true; probe: boolean } | { allowed: false; retryAt: number }

interface Circuit {
  state: CircuitState
  failures: number
  /** epoch ms: when an open circuit lets its probe through */
  openUntil: number
}

/** While a probe is out, other calls are told to come back this much later. */
const PROBE_PENDING_MS = 1000

/** The side of a key ('procore:42' → 'procore'); anything unexpected is 'other', so labels stay few. */
export function sideOfKey(key: string): string {
  const side = key.slice(0, key.indexOf(':'))
  return (UPSTREAM_SIDES as readonly string[]).includes(side) ? side : 'other'
}

export class CircuitBreakers {
  readonly failureThreshold: number
  readonly openMs: number
  readonly #now: () => number
  /** Only circuits that saw a failure since their last success; a healthy upstream leaves no entry. */
  readonly #byKey = new Map<string, Circuit>()
  readonly #onRejected: Array<(side: string) => void> = []

  constructor(opts: CircuitBreakerOptions = {}) {
    this.failureThreshold = opts.failureThreshold ?? 5
    this.openMs = opts.openMs ?? 30_000
    this.#now = opts.now ?? Date.now
    if (!Number.isInteger(this.failureThreshold) || this.failureThreshold < 1) {
      throw new RangeError('failureThreshold must be a positive integer')
    }
    if (!(this.openMs > 0)) throw new RangeError('openMs must be positive')
  }

  /** Asks before a call. An open circuit whose interval is over becomes half-open and admits this call as its probe. */
  admit(key: string): Admission {
    const circuit = this.#byKey.get(key)
    if (circuit === undefined || circuit.state === 'closed') return { allowed: true, probe: false }
    const now = this.#now()
    if (circuit.state === 'open') {
      if (now >= circuit.openUntil) {
        circuit.state = 'half_open'
        return { allowed: true, probe: true }
      }
      return this.#reject(key, circuit.openUntil)
    }
    return this.#reject(key, now + PROBE_PENDING_MS)
  }

  /** The upstream answered (any status that is not a failure): the circuit closes. */
  success(key: string): void {
    this.#byKey.delete(key)
  }

  /** The upstream failed (no answer, timeout, 5xx). Returns true when this failure opened the circuit. */
  failure(key: string): boolean {
    const now = this.#now()
    let circuit = this.#byKey.get(key)
    if (circuit === undefined) {
      circuit = { state: 'closed', failures: 0, openUntil: 0 }
      this.#byKey.set(key, circuit)
    }
    circuit.failures++
    // An open circuit stays open until its probe: late failures of calls sent before it opened do not extend it.
    if (circuit.state === 'open') return false
    if (circuit.state === 'half_open' || circuit.failures >= this.failureThreshold) {
      circuit.state = 'open'
      circuit.openUntil = now + this.openMs
      return true
    }
    return false
  }

  /** A probe ended without telling anything (aborted, refused before sending): the next call probes instead. */
  release(key: string): void {
    const circuit = this.#byKey.get(key)
    if (circuit?.state !== 'half_open') return
    circuit.state = 'open'
    circuit.openUntil = this.#now()
  }

  state(key: string): CircuitState {
    return this.#byKey.get(key)?.state ?? 'closed'
  }

  /** Circuits per side and state (closed: those with failures since their last success). */
  counts(): Map<string, Record<CircuitState, number>> {
    const counts = new Map<string, Record<CircuitState, number>>()
    for (const [key, circuit] of this.#byKey) {
      const side = sideOfKey(key)
      let bySide = counts.get(side)
      if (bySide === undefined) {
        bySide = { closed: 0, half_open: 0, open: 0 }
        counts.set(side, bySide)
      }
      bySide[circuit.state]++
    }
    return counts
  }

  onRejected(listener: (side: string) => void): void {
    this.#onRejected.push(listener)
  }

  #reject(key: string, retryAt: number): Admission {
    const side = sideOfKey(key)
    for (const listener of this.#onRejected) listener(side)
    return { allowed: false, retryAt }
  }
}

/** The app's breakers: one set shared by every Procore and ERP client, so a circuit outlives a rebuilt client. */
export function upstreamBreakers(ctx: AppContext): CircuitBreakers {
  return component(ctx, 'http.breakers', () => new CircuitBreakers(ctx.config.circuit))
}

/**
 * `upstream_circuit_state{side,state}`: how many circuits of a side are in each state;
 * `upstream_circuit_rejected_total{side}`: calls failed fast by an open circuit. Never a company id as a label.
 */
export function registerCircuitMetrics(registry: Registry, breakers: CircuitBreakers): void {
  new Gauge({
    name: 'upstream_circuit_state',
    help: 'Upstream circuits per side in each state (closed with recent failures, half_open, open).',
    labelNames: ['side', 'state'],
    registers: [registry],
    collect() {
      const counts = breakers.counts()
      for (const side of UPSTREAM_SIDES) {
        const bySide = counts.get(side)
        for (const state of CIRCUIT_STATES) this.set({ side, state }, bySide?.[state] ?? 0)
      }
    },
  })
  const rejected = new Counter({
    name: 'upstream_circuit_rejected_total',
    help: 'Upstream calls failed fast, without being sent, because the circuit of that upstream was open.',
    labelNames: ['side'],
    registers: [registry],
  })
  for (const side of UPSTREAM_SIDES) rejected.inc({ side }, 0)
  breakers.onRejected((side) => rejected.inc({ side }))
}
