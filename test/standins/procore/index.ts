// A Procore stand-in on loopback: REST API, OAuth server and webhook sender (src/procore/README.md), plus
// the handles tests use to seed data, change it "in Procore", script faults and inspect traffic.
import { definition } from './definitions.js'
import { JobCosts, type JobCostRow } from './job-costs.js'
import { str } from './http.js'
import { normalizeIds } from './json.js'
import { OAuthServer } from './oauth.js'
import { Resources } from './resources.js'
import { buildServer, type Call } from './server.js'
import { Store, type Kind, type Rec } from './store.js'
import { Faults, RateLimiter, type Fault } from './traffic.js'
import {
  Webhooks,
  type Actor,
  type Delivery,
  type EventType,
  type Hook,
  type RetryPolicy,
  type Trigger,
} from './webhooks.js'

export type { JobCostRow }
export type { Call, Delivery, EventType, Fault, Hook, Kind, Rec, RetryPolicy, Trigger }
export { KINDS } from './store.js'
export { WEBHOOK_RESOURCES } from './webhooks.js'

export interface ProcoreStandinOptions {
  clientId?: string
  clientSecret?: string
  /** Access token lifetime; Procore's is 5400 s. */
  tokenTtlSeconds?: number
  /** Per token × company bucket; headers are always sent. Default is effectively unlimited. */
  rateLimit?: { limit: number; windowMs: number }
  /** Procore: 1 s doubling to 1 h, discarded after 12 h of failure. */
  webhookRetry?: RetryPolicy
  /** Webhook request timeout; Procore's is 5 s. */
  webhookTimeoutMs?: number
  /** First id handed out; the default exceeds 32 bits so int32 assumptions fail fast. */
  firstId?: string
  logger?: false
}

export interface ProcoreStandin {
  /** `http://127.0.0.1:<port>`; serves `/rest/...` and `/oauth/...`. */
  url: string
  close(): Promise<void>
  addCompany(id: string, name: string): void
  /** Stores a record as-is (an explicit `id` is kept); emits no webhook. */
  seed(companyId: string, kind: Kind, fields: Record<string, unknown>, opts?: { projectId?: string }): Rec
  /** Someone edits the record in Procore: updated_at moves and an `update` webhook goes out. */
  change(
    companyId: string,
    kind: Kind,
    id: string,
    patch: Record<string, unknown>,
    opts?: { emit?: boolean; sourceApplicationId?: string },
  ): Rec
  remove(companyId: string, kind: Kind, id: string, opts?: { emit?: boolean }): void
  get(companyId: string, kind: Kind, id: string): Rec | undefined
  list(companyId: string, kind: Kind): Rec[]
  /** Every request received, in arrival order. */
  calls: Call[]
  faults: { push(fault: Fault): void; clear(): void }
  oauth: {
    revokeAll(): void
    expireAll(): void
    /** A valid client-credentials access token, without an HTTP round trip. */
    accessToken(): string
    readonly refreshCalls: number
    readonly tokenCalls: number
  }
  webhooks: {
    hooks(): Hook[]
    triggers(): Trigger[]
    deliveries(): Delivery[]
    /** Emits an event for any resource name; `duplicate` = extra copies of this event. */
    emit(
      companyId: string,
      resourceName: string,
      eventType: EventType,
      resourceId: string,
      opts?: { projectId?: string; duplicate?: number },
    ): void
    /** Resolves when no delivery is queued, in flight or waiting for a retry. */
    idle(): Promise<void>
    /** Average extra copies per event (1 → every event twice, 0.5 → every other event twice). */
    setDuplicateRate(rate: number): void
  }
  /** ERP job costs received (src/procore/job-costs.ts): what each project holds, per origin. */
  jobCosts: {
    of(projectId: string): JobCostRow[]
    /** Whether the project's ERP job-cost syncing setting is on. */
    enabled(projectId: string): boolean
    /** The next `times` sync calls store their updates, then answer `status` (the answer is lost). */
    failAfterApplying(status: number, times?: number): void
    /** Item writes applied in all: a resend counts again, the totals it replaced do not. */
    readonly applied: number
  }
}

export async function startProcoreStandin(opts: ProcoreStandinOptions = {}): Promise<ProcoreStandin> {
  const store = new Store(BigInt(opts.firstId ?? '4300000001'))
  const service = { id: store.nextId(), login: 'dmsa@standin.procore.test', name: 'Stand-in Service Account' }
  const person = { id: store.nextId(), login: 'erp.admin@standin.procore.test', name: 'Erin Admin' }
  // Edits made "in the Procore web UI" by a person, not through anyone's API client.
  const webActor = (applicationId: string | null = null): Actor => ({ userId: person.id, applicationId })

  const oauth = new OAuthServer(
    { id: opts.clientId ?? 'standin-client', secret: opts.clientSecret ?? 'standin-secret' },
    opts.tokenTtlSeconds ?? 5400,
    { service, person },
  )
  const webhooks = new Webhooks(
    store,
    opts.webhookRetry ?? { initialDelayMs: 1000, maxDelayMs: 3_600_000, discardAfterMs: 12 * 3_600_000 },
    opts.webhookTimeoutMs ?? 5000,
  )
  const resources = new Resources(store, (change) => webhooks.publish(change))
  const faults = new Faults()
  const calls: Call[] = []
  const jobCosts = new JobCosts()
  const rate = opts.rateLimit ?? { limit: 100_000, windowMs: 3_600_000 }
  let url = ''
  const app = buildServer({
    store,
    resources,
    webhooks,
    oauth,
    faults,
    rateLimiter: new RateLimiter(rate.limit, rate.windowMs),
    calls,
    baseUrl: () => url,
    jobCosts,
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('stand-in is not listening on TCP')
  url = `http://127.0.0.1:${address.port}`

  const existing = (companyId: string, kind: Kind, id: string): Rec => {
    const rec = resources.find(definition(kind), { companyId }, id)
    if (!rec) throw new Error(`no ${kind} ${id} in company ${companyId}`)
    return rec
  }

  return {
    url,
    close: async () => {
      await webhooks.close()
      await app.close()
    },
    addCompany: (id, name) => {
      store.companies.set(id, { id, name })
    },
    seed: (companyId, kind, fields, seedOpts = {}) => {
      if (!store.companies.has(companyId)) throw new Error(`unknown company ${companyId}; call addCompany first`)
      const def = definition(kind)
      const input = normalizeIds(fields) as Record<string, unknown>
      const projectId = seedOpts.projectId ?? str(input.project_id)
      if (def.scope === 'project' && projectId === undefined) throw new Error(`${kind} need opts.projectId`)
      if (projectId !== undefined && store.get('projects', projectId)?.company_id !== companyId)
        throw new Error(`no project ${projectId} in company ${companyId}`)
      const id = str(input.id)
      const scope = projectId === undefined ? { companyId } : { companyId, projectId }
      return {
        ...resources.create(def, scope, input, { actor: null, direct: false, ...(id === undefined ? {} : { id }) }),
      }
    },
    change: (companyId, kind, id, patch, changeOpts = {}) => {
      const actor = changeOpts.emit === false ? null : webActor(changeOpts.sourceApplicationId)
      const rec = resources.update(
        definition(kind),
        existing(companyId, kind, id),
        normalizeIds(patch) as Record<string, unknown>,
        { actor, direct: false, touch: true },
      )
      return { ...rec }
    },
    remove: (companyId, kind, id, removeOpts = {}) => {
      resources.remove(definition(kind), existing(companyId, kind, id), removeOpts.emit === false ? null : webActor())
    },
    get: (companyId, kind, id) => {
      const rec = resources.find(definition(kind), { companyId }, id)
      return rec && { ...rec }
    },
    list: (companyId, kind) => store.all(kind, companyId).map((r) => ({ ...r })),
    calls,
    faults,
    oauth,
    webhooks: {
      hooks: () => webhooks.hooks(),
      triggers: () => webhooks.triggers(),
      deliveries: () => webhooks.deliveries(),
      emit: (companyId, resourceName, eventType, resourceId, emitOpts = {}) => {
        const change = {
          companyId,
          projectId: emitOpts.projectId ?? null,
          resourceName,
          eventType,
          resourceId,
          actor: webActor(),
        }
        webhooks.publish(change, emitOpts.duplicate)
      },
      idle: () => webhooks.idle(),
      setDuplicateRate: (rate) => webhooks.setDuplicateRate(rate),
    },
    jobCosts: {
      of: (projectId) => jobCosts.of(projectId),
      enabled: (projectId) => jobCosts.enabled.has(projectId),
      failAfterApplying: (status, times) => jobCosts.failAfterApplying(status, times),
      get applied() {
        return jobCosts.applied
      },
    },
  }
}
