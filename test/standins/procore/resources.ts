// One mechanism for every resource in definitions.ts: list/show/create/update/delete, sync
// (batch upsert, §2.8), inactive lists, filters (§3.3) and origin_id uniqueness (§2.7).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { DEFINITIONS, type FilterName, type ResourceDef } from './definitions.js'
import {
  ApiError,
  badRequest,
  bodyOf,
  forbidden,
  invalid,
  notFound,
  obj,
  paginate,
  paramsOf,
  queryOf,
  str,
  type FieldErrors,
  type Query,
} from './http.js'
import { toJson } from './json.js'
import type { Rec, Store } from './store.js'
import type { Actor, Change } from './webhooks.js'

export const MAX_SYNC_ITEMS = 1000

export interface Scope {
  companyId: string
  projectId?: string
}

export interface WriteOptions {
  /** Who made the change (webhook metadata); null writes emit no webhook. */
  actor: Actor | null
  /** A plain create/update call (not sync), subject to `directWriteBlocked`. */
  direct: boolean
  /** Bump updated_at and emit even when nothing changed. */
  touch?: boolean
  /** Explicit id for a new record (seeding only). */
  id?: string
}

type Activity = 'all' | 'active' | 'inactive'

const READ_ONLY = ['id', 'created_at', 'updated_at', 'company_id', 'company', 'deleted_at']

export class Resources {
  constructor(
    private readonly store: Store,
    private readonly publish: (change: Change) => void,
  ) {}

  find(def: ResourceDef, scope: Scope, id: string): Rec | undefined {
    const rec = this.store.get(def.kind, id)
    if (!rec || rec.company_id !== scope.companyId) return undefined
    return scope.projectId === undefined || rec.project_id === scope.projectId ? rec : undefined
  }

  private inScope(def: ResourceDef, scope: Scope): Rec[] {
    const recs = this.store.all(def.kind, scope.companyId)
    return scope.projectId === undefined ? recs : recs.filter((r) => r.project_id === scope.projectId)
  }

  list(def: ResourceDef, scope: Scope, query: Query, activity: Activity): Rec[] {
    let recs = this.inScope(def, scope)
    for (const param of def.listParams) {
      const value = str(query[param])
      if (value === undefined) throw badRequest(`${param} is missing`)
      recs = recs.filter((r) => r[param] === value)
    }
    const field = def.activeField
    if (field && activity !== 'all') recs = recs.filter((r) => (r[field] !== false) === (activity === 'active'))
    const filters = obj(query.filters) ?? {}
    for (const name of def.filters) {
      const value = filters[name]
      if (value !== undefined && value !== '') recs = recs.filter(filterFn(name, value))
    }
    return recs
  }

  create(def: ResourceDef, scope: Scope, input: Record<string, unknown>, opts: WriteOptions): Rec {
    const now = this.store.now()
    const rec: Rec = {
      ...def.defaults,
      ...this.accept(def, input, scope.companyId),
      id: opts.id ?? this.store.nextId(),
      company_id: scope.companyId,
      ...(def.scope === 'project' || scope.projectId !== undefined ? { project_id: scope.projectId } : {}),
      created_at: now,
      updated_at: now,
    }
    this.check(def, rec, opts)
    this.store.put(def.kind, rec)
    this.emit(def, rec, 'create', opts.actor)
    return rec
  }

  update(def: ResourceDef, rec: Rec, patch: Record<string, unknown>, opts: WriteOptions): Rec {
    const fields = this.accept(def, patch, rec.company_id)
    const changed = Object.keys(fields).some((k) => toJson(fields[k]) !== toJson(rec[k]))
    // Like Rails, a save that changes nothing neither touches updated_at nor fires callbacks.
    if (!changed && !opts.touch) return rec
    const next: Rec = { ...rec, ...fields, updated_at: this.store.now() }
    this.check(def, next, opts)
    this.store.put(def.kind, next)
    this.emit(def, next, 'update', opts.actor)
    return next
  }

  remove(def: ResourceDef, rec: Rec, actor: Actor | null): void {
    this.store.delete(def.kind, rec.id)
    this.emit(def, rec, 'delete', actor)
  }

  /**
   * Batch upsert (§2.8): id → update (unknown id is an item error); else origin_id found →
   * update, not found → create; neither → create. Item failures never fail the call.
   */
  sync(
    def: ResourceDef,
    scope: Scope,
    updates: unknown,
    extra: Record<string, unknown>,
    actor: Actor,
  ): { entities: unknown[]; errors: unknown[] } {
    for (const param of def.listParams) if (extra[param] === undefined) throw badRequest(`${param} is missing`)
    if (!Array.isArray(updates)) throw badRequest('updates must be an array')
    if (updates.length > MAX_SYNC_ITEMS)
      throw new ApiError(413, { errors: `updates is limited to ${MAX_SYNC_ITEMS} items per request` })
    const entities: unknown[] = []
    const errors: unknown[] = []
    for (const item of updates) {
      const input = obj(item)
      if (!input) {
        errors.push({ errors: { base: ['must be an object'] } })
        continue
      }
      try {
        const id = str(input.id)
        const originId = input.origin_id
        const existing =
          id !== undefined
            ? this.find(def, scope, id)
            : originId != null && originId !== ''
              ? this.store
                  .findBy(def.kind, scope.companyId, 'origin_id', originId)
                  .find(
                    (r) =>
                      (scope.projectId === undefined || r.project_id === scope.projectId) &&
                      str(r.origin_id) === str(originId),
                  )
              : undefined
        if (id !== undefined && !existing) throw invalid({ id: [`${def.wrapper} ${id} not found`] })
        const opts: WriteOptions = { actor, direct: false }
        const rec = existing
          ? this.update(def, existing, input, opts)
          : this.create(def, scope, { ...extra, ...input }, opts)
        entities.push(this.present(def, rec))
      } catch (error) {
        if (!(error instanceof ApiError)) throw error
        errors.push({ ...input, errors: obj(error.body.errors) ?? { base: [String(error.body.errors)] } })
      }
    }
    return { entities, errors }
  }

  present(def: ResourceDef, rec: Rec): Record<string, unknown> {
    const out: Record<string, unknown> = { id: rec.id }
    for (const [key, value] of Object.entries(rec))
      if (key !== 'company_id' && !def.hidden.includes(key)) out[key] = value
    return Object.assign(out, def.present?.(rec, this.store))
  }

  private accept(def: ResourceDef, input: Record<string, unknown>, companyId: string): Record<string, unknown> {
    const fields = Object.fromEntries(
      Object.entries(input).filter(([k]) => !READ_ONLY.includes(k) && !def.ignored.includes(k)),
    )
    return def.prepare ? def.prepare(fields, this.store, companyId) : fields
  }

  private check(def: ResourceDef, rec: Rec, opts: WriteOptions): void {
    const blocked = opts.direct ? def.directWriteBlocked?.(rec, this.store) : undefined
    if (blocked) throw invalid({ base: [blocked] })
    const errors: FieldErrors = {}
    for (const field of def.required) if (isBlank(rec[field])) errors[field] = ["can't be blank"]
    Object.assign(errors, def.validate?.(rec, this.store))
    if (Object.keys(errors).length > 0) throw invalid(errors)
    for (const field of ['origin_id', ...def.unique]) {
      const value = rec[field]
      if (isBlank(value)) continue
      const key = String(value).toLowerCase()
      const taken = this.store
        .findBy(def.kind, rec.company_id, field, value)
        .some((r) => r.id !== rec.id && !isBlank(r[field]) && String(r[field]).toLowerCase() === key)
      // §3.5: a duplicate origin_id is a conflict (409); other uniqueness rules are validations.
      if (taken) throw invalid({ [field]: ['has already been taken'] }, field === 'origin_id' ? 409 : 422)
    }
  }

  private emit(def: ResourceDef, rec: Rec, eventType: Change['eventType'], actor: Actor | null): void {
    if (!actor) return
    const projectId = def.kind === 'projects' ? null : ((rec.project_id as string | null | undefined) ?? null)
    this.publish({
      companyId: rec.company_id,
      projectId,
      resourceName: def.resourceName,
      eventType,
      resourceId: rec.id,
      actor,
    })
  }
}

function isBlank(value: unknown): boolean {
  return value === undefined || value === null || (typeof value === 'string' && value.trim() === '')
}

function filterFn(name: FilterName, value: unknown): (rec: Rec) => boolean {
  const values = (Array.isArray(value) ? value : [value]).map(String)
  switch (name) {
    case 'updated_at':
    case 'created_at': {
      const [from, to] = range(name, value)
      return (r) => {
        const t = Date.parse(String(r[name]))
        return t >= from && t <= to
      }
    }
    case 'by_status': {
      const status = values[0]?.toLowerCase()
      return status === 'all' ? () => true : (r) => (r.active !== false) === (status !== 'inactive')
    }
    case 'active':
      return (r) => (r.is_active !== false) === (values[0] === 'true')
    default:
      return (r) => values.includes(str(r[name]) ?? '')
  }
}

/** `filters[updated_at]=2024-01-01T00:00:00Z...2024-01-02T00:00:00Z`, inclusive; either side may be open. */
function range(name: string, value: unknown): [number, number] {
  const parts = typeof value === 'string' ? value.split('...') : []
  const [from = '', to = ''] = parts
  const start = from === '' ? -Infinity : Date.parse(from)
  const end = to === '' ? Infinity : Date.parse(to)
  if (parts.length !== 2 || Number.isNaN(start) || Number.isNaN(end))
    throw badRequest(`filters[${name}] must be an ISO-8601 range "start...end"`)
  return [start, end]
}

export interface RouteContext {
  store: Store
  resources: Resources
  baseUrl(): string
  actorOf(request: FastifyRequest): Actor
}

/** Company (and project) a request addresses, checked against the Procore-Company-Id header. */
export function resolveScope(store: Store, request: FastifyRequest, projectScoped: boolean): Scope {
  const params = paramsOf(request)
  const query = queryOf(request)
  const body = bodyOf(request)
  const header = str(request.headers['procore-company-id'])
  if (projectScoped || params.project_id !== undefined) {
    const projectId = params.project_id ?? str(query.project_id) ?? str(body.project_id)
    if (projectId === undefined) throw badRequest('project_id is missing')
    const project = store.get('projects', projectId)
    if (!project) throw notFound('Project')
    if (project.company_id !== header) throw forbidden('You do not have access to this project')
    return { companyId: project.company_id, projectId }
  }
  const companyId = params.company_id ?? str(query.company_id) ?? str(body.company_id)
  if (companyId === undefined) throw badRequest('company_id is missing')
  if (companyId !== header) throw forbidden('The company_id does not match the Procore-Company-Id header')
  return { companyId }
}

export function resourceRoutes(app: FastifyInstance, ctx: RouteContext): void {
  for (const def of DEFINITIONS) registerResource(app, ctx, def)
}

function registerResource(app: FastifyInstance, ctx: RouteContext, def: ResourceDef): void {
  const { store, resources } = ctx
  const scopeOf = (request: FastifyRequest): Scope => resolveScope(store, request, def.scope === 'project')
  const found = (request: FastifyRequest): Rec => {
    const id = paramsOf(request).id ?? ''
    const rec = resources.find(def, scopeOf(request), id)
    if (!rec) throw notFound(`${def.wrapper} ${id}`)
    return rec
  }
  const wrapped = (request: FastifyRequest): Record<string, unknown> => {
    const fields = obj(bodyOf(request)[def.wrapper])
    if (!fields) throw badRequest(`param is missing or the value is empty: ${def.wrapper}`)
    return fields
  }
  const listing =
    (activity: (query: Query) => Activity) =>
    (request: FastifyRequest, reply: FastifyReply): unknown[] => {
      const query = queryOf(request)
      const recs = resources.list(def, scopeOf(request), query, activity(query))
      const only = def.listView?.(str(query.view))
      return paginate(request, reply, ctx.baseUrl(), recs).map((r) => {
        const out = resources.present(def, r)
        return only ? Object.fromEntries(only.map((k) => [k, out[k] ?? null])) : out
      })
    }
  // Main lists show active records only, unless an explicit status filter takes over.
  const mainActivity = (query: Query): Activity => {
    const filters = obj(query.filters) ?? {}
    const explicit = (['by_status', 'active'] as const).some((f) => def.filters.includes(f) && filters[f] !== undefined)
    return def.activeField && !explicit ? 'active' : 'all'
  }

  for (const path of def.paths) {
    app.get(path, listing(mainActivity))
    app.get(`${path}/:id`, (request) => resources.present(def, found(request)))
    app.post(path, (request, reply) => {
      const rec = resources.create(def, scopeOf(request), wrapped(request), {
        actor: ctx.actorOf(request),
        direct: true,
      })
      return reply.code(201).send(resources.present(def, rec))
    })
    app.patch(`${path}/:id`, (request) => {
      const rec = resources.update(def, found(request), wrapped(request), { actor: ctx.actorOf(request), direct: true })
      return resources.present(def, rec)
    })
    app.delete(`${path}/:id`, (request, reply) => {
      resources.remove(def, found(request), ctx.actorOf(request))
      return reply.code(204).send()
    })
  }
  for (const path of def.syncPaths) {
    app.patch(path, (request) => {
      const body = bodyOf(request)
      const extra = Object.fromEntries(
        def.listParams.map((p) => [p, body[p] ?? queryOf(request)[p]]).filter(([, v]) => v !== undefined),
      )
      return resources.sync(def, scopeOf(request), body.updates, extra, ctx.actorOf(request))
    })
  }
  for (const path of def.inactivePaths) {
    app.get(
      path,
      listing(() => 'inactive'),
    )
    app.patch(`${path}/:id`, (request) => {
      const field = def.activeField ?? 'is_active'
      const patch = { ...(obj(bodyOf(request)[def.wrapper]) ?? {}), [field]: true }
      return resources.present(
        def,
        resources.update(def, found(request), patch, { actor: ctx.actorOf(request), direct: true }),
      )
    })
  }
}

/** `GET /rest/v1.0/me` and `GET /rest/v1.0/companies`. */
export function accountRoutes(
  app: FastifyInstance,
  ctx: RouteContext & { me(request: FastifyRequest): Record<string, unknown> },
): void {
  app.get('/rest/v1.0/me', (request) => ctx.me(request))
  app.get('/rest/v1.0/companies', (request, reply) => {
    const companies = [...ctx.store.companies.values()].map((c) => ({
      id: c.id,
      name: c.name,
      is_active: true,
      logo_url: null,
    }))
    return paginate(request, reply, ctx.baseUrl(), companies)
  })
}
