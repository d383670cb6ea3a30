// Procore's Webhooks API (hooks, triggers, deliveries; src/procore/README.md §1.1, §1.6) and its sender
// (§1.2, §1.3, §1.5): one FIFO queue per hook that pauses on failure and retries the head
// with exponential backoff until it succeeds or the discard window closes.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Agent, request } from 'undici'
import {
  ApiError,
  badRequest,
  bodyOf,
  invalid,
  notFound,
  obj,
  paramsOf,
  queryOf,
  str,
  type FieldErrors,
} from './http.js'
import { RawJson, toJson } from './json.js'
import { resolveScope, type RouteContext, type Scope } from './resources.js'
import { ulid, type Store } from './store.js'

export interface Actor {
  userId: string | null
  /** OAuth client id of the app that made the change (`metadata.source_application_id`). */
  applicationId: string | null
}

export type EventType = 'create' | 'update' | 'delete'

/** A change that may be announced to hooks. */
export interface Change {
  companyId: string
  projectId: string | null
  resourceName: string
  eventType: EventType
  resourceId: string
  actor: Actor
}

export interface Hook {
  id: string
  api_version: string
  destination_url: string
  destination_headers: Record<string, string>
  namespace: string | null
  owned_by_company_id: string | null
  owned_by_project_id: string | null
  owned_by_user_id: string | null
}

export interface Trigger {
  id: string
  webhook_hook_id: string
  resource_name: string
  resource_id: null
  event_type: EventType
  company_id: string | null
  project_id: string | null
  user_id: string | null
  api_version: string
}

/** One event, independent of payload version; ids are decimal strings. */
export interface WebhookEvent {
  id: string
  ulid: string
  timestamp: string
  company_id: string
  project_id: string | null
  user_id: string | null
  event_type: EventType
  resource_name: string
  resource_id: string
  source_application_id: string | null
}

export type Outcome = 'ok' | 'retried' | 'failed' | 'discarded'

/** One delivery attempt (or, for `discarded`, one event dropped unsent). */
export interface Delivery {
  id: string
  webhook_hook_id: string
  event_id: string
  event: WebhookEvent
  /** The exact request body sent (the payload in the hook's api_version). */
  body: string
  outcome: Outcome
  started_at: string
  completed_at: string
  response_status: number | null
  response_headers: Record<string, string> | null
  response_error: string | null
  response_body: string | null
}

export interface RetryPolicy {
  initialDelayMs: number
  maxDelayMs: number
  discardAfterMs: number
}

interface EndpointQueue {
  items: WebhookEvent[]
  sending: boolean
  timer: NodeJS.Timeout | undefined
  failingSince: number | undefined
  retries: number
}

type ResourceLevel = 'company' | 'project'

/** Subscribable resources (§1.4): level and the event types that cannot be subscribed to. */
export const WEBHOOK_RESOURCES: ReadonlyArray<{ name: string; level: ResourceLevel; except: readonly EventType[] }> = [
  { name: 'Projects', level: 'company', except: ['delete'] },
  { name: 'Company Vendors', level: 'company', except: [] },
  { name: 'Company Users', level: 'company', except: [] },
  { name: 'Departments', level: 'company', except: [] },
  { name: 'Standard Cost Codes', level: 'company', except: [] },
  { name: 'Standard Cost Code Lists', level: 'company', except: ['update', 'delete'] },
  { name: 'Line Item Types', level: 'company', except: [] },
  { name: 'ERP Requests', level: 'company', except: [] },
  { name: 'Cost Codes', level: 'project', except: [] },
  { name: 'Sub Jobs', level: 'project', except: [] },
  { name: 'Timecard Entries', level: 'project', except: [] },
  { name: 'Project Users', level: 'project', except: [] },
  { name: 'Project Vendors', level: 'project', except: [] },
]

const EVENT_TYPES: readonly EventType[] = ['create', 'update', 'delete']
const API_VERSIONS: Record<string, 'v2.0' | 'v3.0' | 'v4.0'> = {
  v2: 'v2.0',
  'v2.0': 'v2.0',
  v3: 'v3.0',
  'v3.0': 'v3.0',
  v4: 'v4.0',
  'v4.0': 'v4.0',
}
const NAMESPACE = /^[a-z0-9-]+$/
export const MAX_BULK_TRIGGERS = 500

/** The POST body for one event in a hook's payload version (§1.3). */
export function payloadFor(event: WebhookEvent, apiVersion: string): string {
  const version = API_VERSIONS[apiVersion] ?? 'v2.0'
  if (version === 'v4.0') {
    // v4: all ids are strings, the event id is the ULID, event_type → reason, resource_name → resource_type.
    return JSON.stringify({
      id: event.ulid,
      timestamp: event.timestamp,
      reason: event.event_type,
      company_id: event.company_id,
      project_id: event.project_id,
      user_id: event.user_id,
      resource_type: event.resource_name,
      resource_id: event.resource_id,
    })
  }
  const v2 = {
    id: event.id,
    ulid: event.ulid,
    timestamp: event.timestamp,
    metadata: {
      source_user_id: event.user_id,
      source_project_id: event.project_id,
      source_operation_id: null,
      source_company_id: event.company_id,
      source_application_id: event.source_application_id,
    },
    user_id: event.user_id,
    company_id: event.company_id,
    project_id: event.project_id,
    api_version: version,
    event_type: event.event_type,
    resource_name: event.resource_name,
    resource_id: event.resource_id,
  }
  return toJson(version === 'v3.0' ? { ...v2, related_resources: [] } : v2)
}

export class Webhooks {
  private readonly hooksById = new Map<string, { hook: Hook; companyId: string }>()
  private readonly triggersById = new Map<string, Trigger>()
  private readonly log: Delivery[] = []
  private readonly queues = new Map<string, EndpointQueue>()
  private readonly idleWaiters: Array<() => void> = []
  private readonly agent: Agent
  private duplicateRate = 0
  private duplicateCredit = 0
  private closed = false

  constructor(
    private readonly store: Store,
    private readonly retry: RetryPolicy,
    private readonly timeoutMs: number,
  ) {
    this.agent = new Agent({ connect: { timeout: timeoutMs } })
  }

  hooks(): Hook[] {
    return [...this.hooksById.values()].map(({ hook }) => structuredClone(hook))
  }

  triggers(): Trigger[] {
    return [...this.triggersById.values()].map((t) => ({ ...t }))
  }

  deliveries(): Delivery[] {
    return this.log.map((d) => structuredClone(d))
  }

  /** Extra copies per event on average (0.5 → every other event twice); deterministic. */
  setDuplicateRate(rate: number): void {
    this.duplicateRate = Math.max(0, rate)
    this.duplicateCredit = 0
  }

  /** Announce a change to every hook in scope with a matching trigger. */
  publish(change: Change, duplicate?: number): void {
    const event: WebhookEvent = {
      id: this.store.nextId(),
      ulid: ulid(),
      timestamp: new Date().toISOString(),
      company_id: change.companyId,
      project_id: change.projectId,
      user_id: change.actor.userId,
      event_type: change.eventType,
      resource_name: change.resourceName,
      resource_id: change.resourceId,
      source_application_id: change.actor.applicationId,
    }
    let extra = duplicate
    if (extra === undefined) {
      this.duplicateCredit += this.duplicateRate
      extra = Math.floor(this.duplicateCredit)
      this.duplicateCredit -= extra
    }
    for (const { hook } of this.hooksById.values()) {
      if (!this.matches(hook, event)) continue
      const queue = this.queueOf(hook.id)
      for (let copy = 0; copy <= extra; copy++) queue.items.push(event)
      this.kick(hook.id)
    }
  }

  /** Resolves once no delivery is queued, in flight or waiting to be retried. */
  idle(): Promise<void> {
    if (this.pending() === 0 || this.closed) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  async close(): Promise<void> {
    this.closed = true
    for (const queue of this.queues.values()) clearTimeout(queue.timer)
    this.queues.clear()
    this.settle()
    await this.agent.destroy()
  }

  private matches(hook: Hook, event: WebhookEvent): boolean {
    const inScope =
      hook.owned_by_project_id === null
        ? this.hooksById.get(hook.id)?.companyId === event.company_id
        : hook.owned_by_project_id === event.project_id
    if (!inScope) return false
    const version = API_VERSIONS[hook.api_version]
    return [...this.triggersById.values()].some(
      (t) =>
        t.webhook_hook_id === hook.id &&
        t.resource_name === event.resource_name &&
        t.event_type === event.event_type &&
        API_VERSIONS[t.api_version] === version,
    )
  }

  private queueOf(hookId: string): EndpointQueue {
    let queue = this.queues.get(hookId)
    if (!queue) {
      queue = { items: [], sending: false, timer: undefined, failingSince: undefined, retries: 0 }
      this.queues.set(hookId, queue)
    }
    return queue
  }

  private pending(): number {
    let n = 0
    for (const queue of this.queues.values()) n += queue.items.length
    return n
  }

  private settle(): void {
    if (this.pending() === 0 || this.closed) for (const resolve of this.idleWaiters.splice(0)) resolve()
  }

  private kick(hookId: string): void {
    const queue = this.queues.get(hookId)
    if (!queue || queue.sending || queue.timer || this.closed) return
    const event = queue.items[0]
    if (!event) {
      this.queues.delete(hookId)
      this.settle()
      return
    }
    const entry = this.hooksById.get(hookId)
    if (!entry) {
      this.flush(hookId, queue)
      return
    }
    queue.sending = true
    void this.deliver(entry.hook, queue, event)
  }

  private async deliver(hook: Hook, queue: EndpointQueue, event: WebhookEvent): Promise<void> {
    const attempt = await this.attempt(hook, event)
    queue.sending = false
    // The hook may have been deleted (its queue flushed) or the stand-in closed meanwhile.
    if (this.closed || this.queues.get(hook.id) !== queue) return
    if (attempt.ok) {
      this.record(hook, event, attempt.delivery, 'ok')
      queue.items.shift()
      queue.failingSince = undefined
      queue.retries = 0
      this.kick(hook.id)
      return
    }
    queue.failingSince ??= Date.parse(attempt.delivery.started_at)
    if (Date.now() - queue.failingSince >= this.retry.discardAfterMs) {
      this.record(hook, event, attempt.delivery, 'failed')
      queue.items.shift()
      this.flush(hook.id, queue)
      return
    }
    this.record(hook, event, attempt.delivery, 'retried')
    const delay = Math.min(this.retry.initialDelayMs * 2 ** queue.retries, this.retry.maxDelayMs)
    queue.retries++
    queue.timer = setTimeout(() => {
      queue.timer = undefined
      this.kick(hook.id)
    }, delay)
  }

  /** After the discard window the whole queue is dropped; a later event starts afresh. */
  private flush(hookId: string, queue: EndpointQueue): void {
    const hook = this.hooksById.get(hookId)?.hook
    for (const event of queue.items.splice(0)) {
      const now = new Date().toISOString()
      const delivery = {
        body: hook ? payloadFor(event, hook.api_version) : '',
        started_at: now,
        completed_at: now,
        response_status: null,
        response_headers: null,
        response_error: null,
        response_body: null,
      }
      this.log.push({
        id: this.store.nextId(),
        webhook_hook_id: hookId,
        event_id: event.id,
        event,
        outcome: 'discarded',
        ...delivery,
      })
    }
    this.queues.delete(hookId)
    this.settle()
  }

  private record(hook: Hook, event: WebhookEvent, attempt: AttemptRecord, outcome: Outcome): void {
    this.log.push({ id: this.store.nextId(), webhook_hook_id: hook.id, event_id: event.id, event, outcome, ...attempt })
  }

  private async attempt(hook: Hook, event: WebhookEvent): Promise<{ ok: boolean; delivery: AttemptRecord }> {
    const body = payloadFor(event, hook.api_version)
    const started_at = new Date().toISOString()
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    const authorization = Object.entries(hook.destination_headers).find(
      ([k]) => k.toLowerCase() === 'authorization',
    )?.[1]
    if (authorization !== undefined) headers.authorization = authorization
    try {
      const res = await request(hook.destination_url, {
        method: 'POST',
        headers,
        body,
        dispatcher: this.agent,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      })
      const text = await res.body.text()
      const responseHeaders = Object.fromEntries(
        Object.entries(res.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : String(v)]),
      )
      return {
        ok: res.statusCode >= 200 && res.statusCode < 300,
        delivery: {
          body,
          started_at,
          completed_at: new Date().toISOString(),
          response_status: res.statusCode,
          response_headers: responseHeaders,
          response_error: null,
          response_body: text.slice(0, 10_000),
        },
      }
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error)
      return {
        ok: false,
        delivery: {
          body,
          started_at,
          completed_at: new Date().toISOString(),
          response_status: null,
          response_headers: null,
          response_error: message,
          response_body: null,
        },
      }
    }
  }

  // ---- the Webhooks API -------------------------------------------------------------------

  listHooks(scope: Scope, namespace: string | undefined, apiVersion: string | undefined): Hook[] {
    return this.inScope(scope).filter(
      (h) =>
        (namespace === '*' || h.namespace === (namespace ?? null)) &&
        (apiVersion === undefined || API_VERSIONS[h.api_version] === API_VERSIONS[apiVersion]),
    )
  }

  hook(scope: Scope, id: string): Hook {
    const hook = this.inScope(scope).find((h) => h.id === id)
    if (!hook) throw notFound(`Webhooks hook ${id}`)
    return hook
  }

  createHook(scope: Scope, input: Record<string, unknown>, userId: string | null): Hook {
    const hook: Hook = {
      id: this.store.nextId(),
      api_version: 'v2',
      destination_url: '',
      destination_headers: {},
      namespace: null,
      owned_by_company_id: scope.projectId === undefined ? scope.companyId : null,
      owned_by_project_id: scope.projectId ?? null,
      owned_by_user_id: userId,
    }
    this.applyHookInput(hook, input)
    this.hooksById.set(hook.id, { hook, companyId: scope.companyId })
    return hook
  }

  updateHook(scope: Scope, id: string, input: Record<string, unknown>): Hook {
    const hook = this.hook(scope, id)
    const next = structuredClone(hook)
    this.applyHookInput(next, input)
    Object.assign(hook, next)
    return hook
  }

  deleteHook(scope: Scope, id: string): void {
    const hook = this.hook(scope, id)
    for (const t of this.triggersById.values()) if (t.webhook_hook_id === hook.id) this.triggersById.delete(t.id)
    const queue = this.queues.get(hook.id)
    if (queue) {
      clearTimeout(queue.timer)
      this.flush(hook.id, queue)
    }
    this.hooksById.delete(hook.id)
  }

  triggersOf(hook: Hook): Trigger[] {
    return [...this.triggersById.values()].filter((t) => t.webhook_hook_id === hook.id)
  }

  createTrigger(hook: Hook, input: Record<string, unknown>, apiVersion: unknown, userId: string | null): Trigger {
    const resourceName = str(input.resource_name) ?? ''
    const eventType = str(input.event_type) ?? ''
    const version = str(apiVersion) ?? hook.api_version
    const resource = WEBHOOK_RESOURCES.find((r) => r.name === resourceName)
    const errors: FieldErrors = {}
    if (!resource || (hook.owned_by_project_id !== null && resource.level === 'company'))
      errors.resource_name = ['is not a valid webhooks resource for this scope']
    if (!EVENT_TYPES.includes(eventType as EventType) || resource?.except.includes(eventType as EventType))
      errors.event_type = ['is not supported for this resource']
    if (API_VERSIONS[version] === undefined) errors.api_version = ['is not a valid api version']
    if (this.triggersOf(hook).some((t) => t.resource_name === resourceName && t.event_type === eventType))
      errors.event_type = ['has already been taken']
    if (Object.keys(errors).length > 0) throw invalid(errors)
    const trigger: Trigger = {
      id: this.store.nextId(),
      webhook_hook_id: hook.id,
      resource_name: resourceName,
      resource_id: null,
      event_type: eventType as EventType,
      company_id: hook.owned_by_company_id,
      project_id: hook.owned_by_project_id,
      user_id: userId,
      api_version: version,
    }
    this.triggersById.set(trigger.id, trigger)
    return trigger
  }

  deleteTrigger(hook: Hook, id: string): Trigger {
    const trigger = this.triggersById.get(id)
    if (!trigger || trigger.webhook_hook_id !== hook.id) throw notFound(`Webhooks trigger ${id}`)
    this.triggersById.delete(id)
    return trigger
  }

  /** Deliveries of one hook, oldest first, cursor-paged by id (§1.6). */
  deliveriesOf(hook: Hook, status: string | undefined, pageSize: number, pageStart: string | undefined): Delivery[] {
    const outcomes: Record<string, readonly Outcome[]> = {
      successful: ['ok'],
      failing: ['retried', 'failed'],
      discarded: ['discarded'],
    }
    const wanted = status === undefined || status === 'any' ? undefined : (outcomes[status] ?? [])
    const after = pageStart === undefined ? undefined : BigInt(pageStart)
    return this.log
      .filter(
        (d) =>
          d.webhook_hook_id === hook.id &&
          (wanted === undefined || wanted.includes(d.outcome)) &&
          (after === undefined || BigInt(d.id) > after),
      )
      .slice(0, pageSize)
  }

  private inScope(scope: Scope): Hook[] {
    return [...this.hooksById.values()]
      .filter(({ hook, companyId }) =>
        scope.projectId === undefined
          ? companyId === scope.companyId && hook.owned_by_project_id === null
          : hook.owned_by_project_id === scope.projectId,
      )
      .map(({ hook }) => hook)
  }

  private applyHookInput(hook: Hook, input: Record<string, unknown>): void {
    const errors: FieldErrors = {}
    if (input.api_version !== undefined) hook.api_version = str(input.api_version) ?? ''
    if (input.destination_url !== undefined) hook.destination_url = str(input.destination_url) ?? ''
    if (input.namespace !== undefined) hook.namespace = input.namespace === null ? null : (str(input.namespace) ?? '')
    if (input.destination_headers !== undefined) {
      const headers = obj(input.destination_headers) ?? {}
      hook.destination_headers = Object.fromEntries(
        Object.entries(headers).filter(([, v]) => typeof v === 'string'),
      ) as Record<string, string>
    }
    if (API_VERSIONS[hook.api_version] === undefined) errors.api_version = ['is not a valid api version']
    if (!isHttpUrl(hook.destination_url)) errors.destination_url = ['is invalid']
    if (hook.namespace !== null && !NAMESPACE.test(hook.namespace))
      errors.namespace = ['may only contain lowercase letters, digits and dashes']
    if (Object.keys(errors).length > 0) throw invalid(errors)
  }
}

type AttemptRecord = Pick<
  Delivery,
  'body' | 'started_at' | 'completed_at' | 'response_status' | 'response_headers' | 'response_error' | 'response_body'
>

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value)
    return url.protocol === 'https:' || url.protocol === 'http:' // real Procore wants https; loopback tests need http
  } catch {
    return false
  }
}

export function webhookRoutes(app: FastifyInstance, ctx: RouteContext & { webhooks: Webhooks }): void {
  const { webhooks } = ctx
  const base = '/rest/v1.0/webhooks'
  // Hooks and triggers live in a company or a project scope, named by company_id or project_id.
  const scopeOf = (request: FastifyRequest): Scope => {
    const given = paramsOf(request).project_id ?? str(queryOf(request).project_id) ?? str(bodyOf(request).project_id)
    return resolveScope(ctx.store, request, given !== undefined)
  }
  const hookOf = (request: FastifyRequest): Hook =>
    webhooks.hook(scopeOf(request), paramsOf(request).hook_id ?? paramsOf(request).id ?? '')
  const userOf = (request: FastifyRequest): string | null => ctx.actorOf(request).userId
  const section = (request: FastifyRequest, key: string): Record<string, unknown> => {
    const value = obj(bodyOf(request)[key])
    if (!value) throw badRequest(`param is missing or the value is empty: ${key}`)
    return value
  }

  app.get(`${base}/hooks`, (request) => {
    const query = queryOf(request)
    return webhooks.listHooks(scopeOf(request), str(query.namespace), str(query.api_version))
  })
  app.post(`${base}/hooks`, (request, reply) =>
    reply.code(201).send(webhooks.createHook(scopeOf(request), section(request, 'hook'), userOf(request))),
  )
  app.get(`${base}/hooks/:id`, (request) => hookOf(request))
  app.patch(`${base}/hooks/:id`, (request) =>
    webhooks.updateHook(scopeOf(request), paramsOf(request).id ?? '', section(request, 'hook')),
  )
  app.delete(`${base}/hooks/:id`, (request, reply) => {
    webhooks.deleteHook(scopeOf(request), paramsOf(request).id ?? '')
    return reply.code(204).send()
  })

  app.get(`${base}/hooks/:hook_id/triggers`, (request) => webhooks.triggersOf(hookOf(request)))
  app.post(`${base}/hooks/:hook_id/triggers`, (request, reply) => {
    const trigger = webhooks.createTrigger(
      hookOf(request),
      section(request, 'trigger'),
      bodyOf(request).api_version,
      userOf(request),
    )
    return reply.code(201).send(trigger)
  })
  app.delete(`${base}/hooks/:hook_id/triggers/:id`, (request, reply) => {
    webhooks.deleteTrigger(hookOf(request), paramsOf(request).id ?? '')
    return reply.code(204).send()
  })
  // Bulk create/delete: at most 500, 200 when all succeed, 207 with `failed[]` otherwise.
  const bulk = (request: FastifyRequest): unknown[] => {
    const items = bodyOf(request).triggers
    if (!Array.isArray(items)) throw badRequest('triggers must be an array')
    if (items.length > MAX_BULK_TRIGGERS)
      throw new ApiError(413, { errors: `triggers is limited to ${MAX_BULK_TRIGGERS} per request` })
    return items
  }
  const outcome = (success: unknown[], failed: unknown[]) => ({
    status: failed.length > 0 ? 207 : 200,
    body: { success, failed },
  })
  app.post(`${base}/hooks/:hook_id/triggers/bulk`, (request, reply) => {
    const hook = hookOf(request)
    const success: Trigger[] = []
    const failed: unknown[] = []
    for (const item of bulk(request)) {
      const input = obj(item) ?? {}
      try {
        success.push(webhooks.createTrigger(hook, input, bodyOf(request).api_version, userOf(request)))
      } catch (error) {
        if (!(error instanceof ApiError)) throw error
        failed.push({
          code: error.statusCode,
          message: 'Trigger could not be created',
          trigger: input,
          errors: error.body.errors,
        })
      }
    }
    const { status, body } = outcome(success, failed)
    return reply.code(status).send(body)
  })
  app.delete(`${base}/hooks/:hook_id/triggers/bulk`, (request, reply) => {
    const hook = hookOf(request)
    const success: Trigger[] = []
    const failed: unknown[] = []
    for (const item of bulk(request)) {
      // The spec sends trigger ids; resource_name + event_type pairs are accepted too.
      const input = obj(item)
      const id =
        str(item) ??
        str(input?.id) ??
        webhooks
          .triggersOf(hook)
          .find((t) => t.resource_name === input?.resource_name && t.event_type === input.event_type)?.id
      try {
        success.push(webhooks.deleteTrigger(hook, id ?? ''))
      } catch (error) {
        if (!(error instanceof ApiError)) throw error
        failed.push({
          code: error.statusCode,
          message: 'Trigger could not be deleted',
          trigger: item,
          errors: error.body.errors,
        })
      }
    }
    const { status, body } = outcome(success, failed)
    return reply.code(status).send(body)
  })

  app.get(`${base}/hooks/:hook_id/deliveries`, (request) => {
    const query = queryOf(request)
    const status = str(obj(query.filters)?.status) ?? str(obj(query.filter)?.status)
    const pageSize = Math.min(Math.max(Number(str(query.page_size) ?? 100) || 100, 1), 1000)
    const pageStart = str(query.page_start)
    if (pageStart !== undefined && !/^\d+$/.test(pageStart)) throw badRequest('page_start must be a delivery id')
    return webhooks
      .deliveriesOf(hookOf(request), status, pageSize, pageStart)
      .map(({ body, webhook_hook_id: _hook, event: _event, ...rest }) => ({
        ...rest,
        event: new RawJson(body || 'null'),
      }))
  })

  app.get(`${base}/resources`, (request) => {
    const level: ResourceLevel = scopeOf(request).projectId === undefined ? 'company' : 'project'
    return WEBHOOK_RESOURCES.filter((r) => r.level === level).map((r) => ({
      resource_name: r.name,
      api_version: 'v2.0',
      product_category: level === 'company' ? 'Company' : 'Project',
      tools: r.name,
      except: r.except,
      create: 'create',
      update: 'update',
      delete: 'delete',
    }))
  })
  app.get(`${base}/resources/api_versions`, () => ['v2.0', 'v3.0', 'v4.0'].map((v) => ({ api_version: v })))
}
