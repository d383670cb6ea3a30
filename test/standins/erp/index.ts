// An ERP agent on loopback, speaking openapi/erp-connector.json, for tests and the demo.
// See README.md in this folder for the id/code formats and per-system rules it follows.
import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto'
import { STATUS_CODES, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import { request as undiciRequest } from 'undici'
import { ERP_RESOURCES, NOUN, SYSTEM_LABEL, inactiveField, type ErpResource, type ErpSystem } from './rules.js'
import type { CodeFormats } from '../../../src/erp/formats.js'
import { signStandardWebhook } from './signing.js'
import {
  ErpStore,
  ProblemError,
  notFound,
  type ChangeType,
  type ErpCostTotal,
  type ErpPayment,
  type ErpRecord,
  type PageQuery,
} from './store.js'

export { signStandardWebhook } from './signing.js'
export { ERP_RESOURCES, ERP_SYSTEMS, MAX_LENGTHS, type ErpResource, type ErpSystem } from './rules.js'
export type { ErpCostTotal, ErpPayment, ErpRecord } from './store.js'

export interface ErpStandinOptions {
  system?: ErpSystem
  token?: string
  companyName?: string
  logger?: false
  /** Code formats (protocol 1.1 `limits.formats`), reported in /v1/info and enforced on create and update. */
  formats?: CodeFormats
  /** Ways to break the protocol on purpose, for tests of clients and of the conformance kit. */
  quirks?: ErpQuirks
}

/** Each one breaks a rule of the protocol; none is on by default. */
export interface ErpQuirks {
  /** Idempotency keys remembered per token instead of per connection (a retry after a rotation creates again). */
  tokenScopedKeys?: boolean
  /** PATCH ignores If-Match (no 428, no 412). */
  ignoreIfMatch?: boolean
  /** Lists come newest first. */
  newestFirst?: boolean
  /** /v1/info reports this protocol version instead of 1.1. */
  protocolVersion?: string
}

export interface ErpFault {
  /** Which requests the fault hits; both optional, both must match. */
  match?: { method?: string; pathPrefix?: string }
  /** Answer with this status as problem+json instead of handling the request. */
  status?: number
  /** Sent as Retry-After with `status`. */
  retryAfterSeconds?: number
  /** Wait this long before handling (or failing) the request. */
  delayMs?: number
  /** Destroy the socket without answering; the request is not handled. */
  resetConnection?: boolean
  /** Handle the request (commit the write), then destroy the socket: a lost response. */
  dropResponseAfterCommit?: boolean
  /** Answer 200 with this body as JSON, unhandled: an agent that breaks the protocol. */
  rawBody?: string
  /** How many matching requests the fault hits; default 1, Infinity for all. */
  times?: number
}

export interface ErpCall {
  method: string
  /** Path without the query string. */
  path: string
  /** The query string as sent (without `?`), empty when none. */
  query: string
  idempotencyKey?: string
  /** Status decided by the stand-in; for a dropped response, the one that was lost; 0 for a reset. */
  status: number
  /** The X-Request-Id of the answer. */
  requestId: string
  /** Which of the agent's tokens authenticated the call (rotation tests); absent when none did. */
  token?: string
}

export interface SentNotification {
  /** webhook-id (the same for a redelivery). */
  id: string
  status: number | 'error'
  /** The exact bytes signed and sent. */
  body: string
  timestamp: number
  signature: string
}

export interface ErpStandin {
  url: string
  token: string
  system: ErpSystem
  /**
   * Rotation: accept `next` beside the current token (both work, as the protocol asks of agents
   * while a token is rotated); `retire` then drops the old one. Idempotency keys stay bound to the
   * connection, so a retry sent with the next token replays.
   */
  tokens: { accept(next: string): void; retire(old: string): void }
  close(): Promise<void>
  /** Adds a record as if it had always been there: defaults filled in, no rules, no notification. */
  seed(resource: ErpResource, fields: Record<string, unknown>): ErpRecord
  /** Edits a record "in the ERP": bumps version and updated_at, notifies unless notify is false. */
  change(resource: ErpResource, id: string, patch: Record<string, unknown>, opts?: { notify?: boolean }): ErpRecord
  deactivate(resource: ErpResource, id: string, opts?: { notify?: boolean }): ErpRecord
  get(resource: ErpResource, id: string): ErpRecord | undefined
  /** Deletes a record "in the ERP" without a notification (a job takes its cost codes with it). */
  remove(resource: ErpResource, id: string): void
  /** In (updated_at, id) order. Cost codes: the standard list, or the codes of `jobId`. */
  list(resource: ErpResource, opts?: { jobId?: string }): ErpRecord[]
  seedPayment(fields: Partial<ErpPayment> & { vendor_id: string }): ErpPayment
  /** Changes a payment "in the ERP" (voided, corrected): payments are never notified. */
  changePayment(id: string, patch: Partial<Omit<ErpPayment, 'id' | 'updated_at'>>): ErpPayment
  setCostTotals(jobId: string, rows: ErpCostTotal[]): void
  /** Edits one cost total of a job (adds it when missing); amounts are decimal strings. */
  changeCostTotal(jobId: string, costCode: string, costType: string, patch: Partial<ErpCostTotal>): ErpCostTotal
  notifications: {
    configure(url: string, secret: string): void
    sent(): SentNotification[]
    /** Resolves once every notification started so far has been answered or failed. */
    idle(): Promise<void>
    /** Sends an earlier notification again with the same webhook-id, freshly signed. */
    redeliver(id: string): void
  }
  faults: { push(f: ErpFault): void; clear(): void }
  calls: ErpCall[]
  stats(): { creates: number; distinctCreateKeys: number; records: Record<ErpResource, number> }
}

const PROBLEM_TITLES: Record<string, string> = {
  bad_request: 'The request is malformed',
  invalid_cursor: 'The cursor is not valid',
  idempotency_key_missing: 'Idempotency-Key is required',
  idempotency_key_invalid: 'Idempotency-Key is not valid',
  unauthorized: 'Authentication required',
  not_found: 'Not found',
  already_exists: 'A record with this code already exists',
  idempotency_key_in_use: 'A request with this Idempotency-Key is in progress',
  version_mismatch: 'The record changed since that version',
  unsupported_media_type: 'The body must be JSON',
  validation_failed: 'Some fields are not valid for this ERP',
  idempotency_key_reused: 'Idempotency-Key was used for a different request',
  if_match_required: 'If-Match is required',
  rate_limited: 'Too many requests',
  internal: 'Internal error',
  unavailable: 'The ERP is unavailable',
}

const FAULT_CODES: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  404: 'not_found',
  409: 'idempotency_key_in_use',
  429: 'rate_limited',
  500: 'internal',
  503: 'unavailable',
}
const IDEMPOTENCY_KEY = /^[\x20-\x7E]{1,255}$/

function sendProblem(reply: FastifyReply, err: ProblemError): FastifyReply {
  return reply
    .code(err.status)
    .type('application/problem+json')
    .send({
      type: `urn:erp-connector:problem:${err.code}`,
      title: PROBLEM_TITLES[err.code] ?? STATUS_CODES[err.status] ?? 'Error',
      status: err.status,
      detail: err.detail,
      code: err.code,
      ...err.extra,
    })
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name]
  return Array.isArray(value) ? value.join(', ') : value
}

export async function startErpStandin(opts: ErpStandinOptions = {}): Promise<ErpStandin> {
  const system = opts.system ?? 'generic'
  const token = opts.token ?? `erp_test_${randomBytes(16).toString('hex')}`
  const tokens = new Set([token])
  const quirks = opts.quirks ?? {}
  const companyName = opts.companyName ?? `Stand-in Builders (${SYSTEM_LABEL[system]})`
  const store = new ErpStore(system, opts.formats ?? {}, { newestFirst: quirks.newestFirst === true })
  const calls: ErpCall[] = []
  const faults: Array<ErpFault & { left: number }> = []
  const perRequest = new WeakMap<IncomingMessage, { call: ErpCall; drop: boolean }>()
  const notifier = new Notifier()

  const app = Fastify({ logger: opts.logger ?? false, forceCloseConnections: true, genReqId: () => randomUUID() })

  app.removeAllContentTypeParsers()
  app.addContentTypeParser(
    ['application/json', 'application/merge-patch+json'],
    { parseAs: 'string' },
    (_request, body, done) => {
      if (body === '') {
        done(null, undefined)
        return
      }
      try {
        done(null, JSON.parse(body as string))
      } catch {
        done(new ProblemError(400, 'bad_request', 'The body is not valid JSON.'), undefined)
      }
    },
  )

  app.setErrorHandler((err, _request, reply) => {
    if (err instanceof ProblemError) return sendProblem(reply, err)
    const status =
      typeof (err as { statusCode?: unknown }).statusCode === 'number'
        ? (err as { statusCode: number }).statusCode
        : 500
    if (status === 415)
      return sendProblem(reply, new ProblemError(415, 'unsupported_media_type', 'Send the body as application/json.'))
    if (status >= 400 && status < 500)
      return sendProblem(
        reply,
        new ProblemError(status, 'bad_request', err instanceof Error ? err.message : 'Bad request.'),
      )
    return sendProblem(reply, new ProblemError(500, 'internal', 'The agent failed; retry later.'))
  })

  app.setNotFoundHandler((request, reply) =>
    sendProblem(
      reply,
      new ProblemError(
        404,
        'not_found',
        `There is no ${request.method} ${request.url.split('?')[0] ?? ''} in ERP Connector Protocol 1.1.`,
      ),
    ),
  )

  app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?')[0] ?? request.url
    const key = header(request, 'idempotency-key')
    const call: ErpCall = {
      method: request.method,
      path,
      query: request.url.includes('?') ? request.url.slice(request.url.indexOf('?') + 1) : '',
      status: 0,
      requestId: request.id,
      ...(key !== undefined ? { idempotencyKey: key } : {}),
    }
    const used = [...tokens].find((t) => tokenMatches(header(request, 'authorization'), t))
    if (used !== undefined) call.token = used
    calls.push(call)
    const state = { call, drop: false }
    perRequest.set(request.raw, state)

    const fault = takeFault(faults, request.method, path)
    if (fault) {
      if (fault.delayMs !== undefined) await sleep(fault.delayMs)
      if (fault.resetConnection === true) {
        reply.hijack()
        request.raw.socket.destroy()
        return reply
      }
      if (fault.status !== undefined) {
        if (fault.retryAfterSeconds !== undefined) void reply.header('retry-after', String(fault.retryAfterSeconds))
        const code = FAULT_CODES[fault.status] ?? (fault.status >= 500 ? 'internal' : 'bad_request')
        return sendProblem(reply, new ProblemError(fault.status, code, `Injected fault: ${fault.status}.`))
      }
      if (fault.rawBody !== undefined) return reply.code(200).type('application/json').send(fault.rawBody)
      if (fault.dropResponseAfterCommit === true) state.drop = true
    }

    if (used === undefined) {
      void reply.header('www-authenticate', 'Bearer')
      return sendProblem(
        reply,
        new ProblemError(
          401,
          'unauthorized',
          'Send Authorization: Bearer <token> with the token from the agent settings.',
        ),
      )
    }
    return undefined
  })

  app.addHook('onSend', async (request, reply, payload) => {
    void reply.header('x-request-id', request.id)
    const state = perRequest.get(request.raw)
    if (state) {
      state.call.status = reply.statusCode
      // The write is committed; the caller never hears about it.
      if (state.drop) request.raw.socket.destroy()
    }
    return payload
  })

  const notify = (type: ChangeType, resource: ErpResource, record: ErpRecord): void => {
    const jobId = record['job_id']
    notifier.emit({
      type,
      resource,
      id: record.id,
      ...(resource === 'cost-codes' && typeof jobId === 'string' ? { job_id: jobId } : {}),
      occurred_at: record.updated_at,
    })
  }

  const requireJob = (jobId: string): void => {
    if (store.get('jobs', jobId) === undefined) throw notFound('jobs', jobId)
  }

  const create = (
    resource: ErpResource,
    jobId: string | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): ErpRecord => {
    const key = header(request, 'idempotency-key')
    if (key === undefined || key === '') {
      throw new ProblemError(
        400,
        'idempotency_key_missing',
        `Send an Idempotency-Key header (e.g. a UUID) so a retry cannot create a second ${NOUN[resource]}.`,
        {
          errors: [{ field: 'Idempotency-Key', message: 'Idempotency-Key is required' }],
        },
      )
    }
    if (!IDEMPOTENCY_KEY.test(key)) {
      throw new ProblemError(
        400,
        'idempotency_key_invalid',
        'The Idempotency-Key must be 1 to 255 printable ASCII characters.',
        {
          errors: [
            { field: 'Idempotency-Key', message: 'Idempotency-Key must be 1 to 255 printable ASCII characters' },
          ],
        },
      )
    }
    const path = request.url.split('?')[0] ?? request.url
    // Keys belong to the connection (every token of it); the quirk binds them to the token sent.
    const scoped = quirks.tokenScopedKeys === true ? `${header(request, 'authorization') ?? ''}\n${key}` : key
    const { record, replayed } = store.create(resource, jobId, path, scoped, request.body)
    if (!replayed) notify('record.created', resource, record)
    void reply
      .code(replayed ? 200 : 201)
      .header('etag', `"${record.version}"`)
      .header('location', `/v1/${resource}/${encodeURIComponent(record.id)}`)
    if (replayed) void reply.header('idempotent-replayed', 'true')
    return record
  }

  app.get('/v1/info', () => ({
    protocol_version: quirks.protocolVersion ?? '1.2',
    system,
    company_name: companyName,
    capabilities: {
      resources: [
        'departments',
        'employees',
        'jobs',
        'cost-codes',
        'job-cost-codes',
        'vendors',
        'cost-totals',
        'payments',
        'ap-invoices',
      ],
      writable: ['departments', 'employees', 'jobs', 'cost-codes', 'job-cost-codes', 'vendors', 'ap-invoices'],
      notifications: true,
    },
    limits: {
      max_page_size: 500,
      idempotency_key_ttl_seconds: 86_400,
      max_lengths: store.maxLengths(),
      ...(opts.formats !== undefined && { formats: structuredClone(opts.formats) }),
    },
  }))

  for (const resource of ERP_RESOURCES) {
    app.get(`/v1/${resource}`, (request) =>
      store.page(resource, resource === 'cost-codes' ? null : undefined, request.query as PageQuery),
    )
    app.post(`/v1/${resource}`, (request, reply) => create(resource, undefined, request, reply))
    app.get<{ Params: { id: string } }>(`/v1/${resource}/:id`, (request, reply) => {
      const record = store.get(resource, request.params.id)
      if (!record) throw notFound(resource, request.params.id)
      void reply.header('etag', `"${record.version}"`)
      return record
    })
    app.patch<{ Params: { id: string } }>(`/v1/${resource}/:id`, (request, reply) => {
      const ifMatch =
        quirks.ignoreIfMatch === true
          ? `"${store.get(resource, request.params.id)?.version ?? 0}"`
          : header(request, 'if-match')
      const { record, type } = store.update(resource, request.params.id, ifMatch, request.body)
      if (type) notify(type, resource, record)
      void reply.header('etag', `"${record.version}"`)
      return record
    })
  }
  // One param name per position: find-my-way wants /v1/jobs/:id and /v1/jobs/:id/... to agree.
  app.get<{ Params: { id: string } }>('/v1/jobs/:id/cost-codes', (request) => {
    requireJob(request.params.id)
    return store.page('cost-codes', request.params.id, request.query as PageQuery)
  })
  app.post<{ Params: { id: string } }>('/v1/jobs/:id/cost-codes', (request, reply) => {
    requireJob(request.params.id)
    return create('cost-codes', request.params.id, request, reply)
  })
  app.get<{ Params: { id: string } }>('/v1/jobs/:id/cost-totals', (request) => {
    requireJob(request.params.id)
    return { data: store.costTotalsOf(request.params.id) }
  })
  app.get('/v1/payments', (request) => store.paymentsPage(request.query as PageQuery))

  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo

  const changeAndNotify = (
    resource: ErpResource,
    id: string,
    patch: Record<string, unknown>,
    notifyOpt: boolean | undefined,
  ): ErpRecord => {
    const { record, type } = store.change(resource, id, patch)
    if (notifyOpt !== false) notify(type, resource, record)
    return record
  }

  return {
    url: `http://127.0.0.1:${port}`,
    token,
    system,
    tokens: {
      accept: (next) => {
        tokens.add(next)
      },
      retire: (old) => {
        tokens.delete(old)
      },
    },
    async close() {
      await notifier.idle()
      await app.close()
    },
    seed: (resource, fields) => store.seed(resource, fields),
    change: (resource, id, patch, o) => changeAndNotify(resource, id, patch, o?.notify),
    deactivate: (resource, id, o) => {
      const { field, value } = inactiveField(resource)
      return changeAndNotify(resource, id, { [field]: value }, o?.notify)
    },
    get: (resource, id) => store.get(resource, id),
    remove: (resource, id) => store.remove(resource, id),
    list: (resource, o) => store.list(resource, resource === 'cost-codes' ? (o?.jobId ?? null) : undefined),
    seedPayment: (fields) => store.seedPayment(fields),
    changePayment: (id, patch) => store.changePayment(id, patch),
    setCostTotals: (jobId, rows) => store.setCostTotals(jobId, rows),
    changeCostTotal: (jobId, costCode, costType, patch) => store.changeCostTotal(jobId, costCode, costType, patch),
    notifications: {
      configure: (url, secret) => notifier.configure(url, secret),
      sent: () => notifier.sent.map((s) => ({ ...s })),
      idle: () => notifier.idle(),
      redeliver: (id) => notifier.redeliver(id),
    },
    faults: {
      push: (f) => {
        faults.push({ ...f, left: f.times ?? 1 })
      },
      clear: () => {
        faults.length = 0
      },
    },
    calls,
    stats: () => ({
      creates: store.creates,
      distinctCreateKeys: store.distinctCreateKeys(),
      records: Object.fromEntries(ERP_RESOURCES.map((r) => [r, store.count(r)])) as Record<ErpResource, number>,
    }),
  }
}

function takeFault(faults: Array<ErpFault & { left: number }>, method: string, path: string): ErpFault | undefined {
  const index = faults.findIndex(
    (f) =>
      f.left > 0 &&
      (f.match?.method === undefined || f.match.method.toUpperCase() === method.toUpperCase()) &&
      (f.match?.pathPrefix === undefined || path.startsWith(f.match.pathPrefix)),
  )
  const fault = faults[index]
  if (!fault) return undefined
  fault.left -= 1
  if (fault.left <= 0) faults.splice(index, 1)
  return fault
}

function tokenMatches(authorization: string | undefined, token: string): boolean {
  const m = authorization === undefined ? null : /^Bearer +(.+)$/i.exec(authorization.trim())
  if (!m?.[1]) return false
  const given = Buffer.from(m[1])
  const expected = Buffer.from(token)
  return given.length === expected.length && timingSafeEqual(given, expected)
}

/** Sends signed Standard Webhooks notifications, one attempt each (no automatic retries). */
class Notifier {
  readonly sent: SentNotification[] = []
  private target: { url: string; secret: string } | undefined
  private readonly pending = new Set<Promise<void>>()
  private readonly bodies = new Map<string, string>()

  configure(url: string, secret: string): void {
    const raw = secret.startsWith('whsec_') ? Buffer.from(secret.slice('whsec_'.length), 'base64') : Buffer.alloc(0)
    if (raw.length < 24 || raw.length > 64)
      throw new Error('notifications.configure: the secret must be whsec_ followed by base64 of 24 to 64 bytes')
    this.target = { url, secret }
  }

  emit(event: Record<string, unknown>): void {
    if (!this.target) return
    const id = `msg_${randomBytes(12).toString('base64url')}`
    const body = JSON.stringify(event)
    this.bodies.set(id, body)
    this.deliver(id, body)
  }

  redeliver(id: string): void {
    const body = this.bodies.get(id)
    if (body === undefined) throw new Error(`notifications.redeliver: no notification ${id}`)
    this.deliver(id, body)
  }

  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending])
  }

  private deliver(id: string, body: string): void {
    const target = this.target
    if (!target) return
    const timestamp = Math.floor(Date.now() / 1000)
    const signature = signStandardWebhook(target.secret, id, timestamp, body)
    const attempt = (async () => {
      let status: number | 'error'
      try {
        const res = await undiciRequest(target.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'webhook-id': id,
            'webhook-timestamp': String(timestamp),
            'webhook-signature': signature,
          },
          body,
          headersTimeout: 15_000,
          bodyTimeout: 15_000,
        })
        await res.body.dump()
        status = res.statusCode
      } catch {
        status = 'error'
      }
      this.sent.push({ id, status, body, timestamp, signature })
    })()
    this.pending.add(attempt)
    void attempt.finally(() => this.pending.delete(attempt))
  }
}
