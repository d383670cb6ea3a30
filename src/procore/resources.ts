// Procore's REST resources we read and write, one table row per resource (see README.md here):
// where each lives, how its bodies are wrapped, whether it has a batch sync endpoint and an
// updated_at filter. The mechanism below reads only this table.
import { Type, type TSchema } from 'typebox'
import { component, type AppContext } from '../context.js'
import { AppError } from '../errors.js'
import type { HttpRequest } from '../http/client.js'
import { UpstreamError } from '../http/errors.js'
import { ProcoreClient } from './client.js'
import * as T from './types.js'
import type { Json } from './types.js'

type Query = NonNullable<HttpRequest['query']>

/** Procore's `PATCH …/sync` takes at most 1,000 items per call. */
export const SYNC_BATCH = 1000
/** Ids per `filters[id][]` request: one page of Procore's v2 size, a URL of a few kilobytes. */
export const ID_BATCH = 100
/** The bulk trigger endpoint takes at most 500. */
export const TRIGGER_BATCH = 500

interface Where {
  path: string
  query: Query
}
interface Place {
  companyId: string
  projectId: string | null
  listId: string | null
}

interface ResourceDef {
  /** Key wrapping the record in create/update bodies: `{ company_id, vendor: {...} }`. */
  wrapper: string
  schema: TSchema
  /** Where the records are listed: the main list, then inactive ones where Procore hides them. */
  listings(p: Place): Where[]
  item(p: Place, id: string): Where
  /** Collection path for POST, plus what goes next to the wrapper in the body. */
  create(p: Place): Where & { extra: Json; inner: Json }
  update(p: Place, id: string): Where & { extra: Json }
  sync?(p: Place): Where & { extra: Json }
  /** Whether lists honour `filters[updated_at]` (departments and cost codes do not: full scans). */
  updatedAtFilter: boolean
  /**
   * Whether the first listing honours `filters[id][]` (PROCORE.md §2.2, §2.3, §3.3): many records
   * re-read in one request. Only where Procore documents it.
   */
  idFilter?: boolean
}

const company = (p: Place) => ({ company_id: p.companyId })
const v1 = '/rest/v1.0'

const DEPARTMENT: ResourceDef = {
  wrapper: 'department',
  schema: T.Department,
  updatedAtFilter: false,
  listings: (p) => [{ path: `${v1}/departments`, query: company(p) }],
  item: (p, id) => ({ path: `${v1}/departments/${id}`, query: company(p) }),
  create: (p) => ({ path: `${v1}/departments`, query: {}, extra: company(p), inner: {} }),
  update: (p, id) => ({ path: `${v1}/departments/${id}`, query: {}, extra: company(p) }),
}
const VENDOR: ResourceDef = {
  wrapper: 'vendor',
  schema: T.Vendor,
  updatedAtFilter: true,
  idFilter: true,
  listings: (p) => [
    { path: `${v1}/vendors`, query: company(p) },
    { path: `${v1}/companies/${p.companyId}/vendors/inactive`, query: {} },
  ],
  item: (p, id) => ({ path: `${v1}/vendors/${id}`, query: company(p) }),
  create: (p) => ({ path: `${v1}/vendors`, query: {}, extra: company(p), inner: {} }),
  update: (p, id) => ({ path: `${v1}/vendors/${id}`, query: {}, extra: company(p) }),
  sync: (p) => ({ path: `${v1}/vendors/sync`, query: {}, extra: company(p) }),
}
const PROJECT: ResourceDef = {
  wrapper: 'project',
  schema: T.Project,
  updatedAtFilter: true,
  idFilter: true,
  // Active and inactive projects alike: a project that became inactive still exists.
  listings: (p) => [{ path: `${v1}/projects`, query: { ...company(p), 'filters[by_status]': 'All' } }],
  item: (p, id) => ({ path: `${v1}/projects/${id}`, query: company(p) }),
  create: (p) => ({ path: `${v1}/projects`, query: {}, extra: company(p), inner: {} }),
  update: (p, id) => ({ path: `${v1}/projects/${id}`, query: {}, extra: company(p) }),
  sync: (p) => ({ path: `${v1}/projects/sync`, query: {}, extra: company(p) }),
}
const USER: ResourceDef = {
  wrapper: 'user',
  schema: T.CompanyUser,
  updatedAtFilter: true,
  listings: (p) => [
    { path: `${v1}/companies/${p.companyId}/users`, query: {} },
    { path: `${v1}/companies/${p.companyId}/users/inactive`, query: {} },
  ],
  item: (p, id) => ({ path: `${v1}/companies/${p.companyId}/users/${id}`, query: {} }),
  create: (p) => ({ path: `${v1}/companies/${p.companyId}/users`, query: {}, extra: {}, inner: {} }),
  update: (p, id) => ({ path: `${v1}/companies/${p.companyId}/users/${id}`, query: {}, extra: {} }),
  sync: (p) => ({ path: `${v1}/companies/${p.companyId}/users/sync`, query: {}, extra: {} }),
}
/** The company's ERP standard cost code list (a company has exactly one). */
const STANDARD_COST_CODE: ResourceDef = {
  wrapper: 'standard_cost_code',
  schema: T.StandardCostCode,
  updatedAtFilter: false,
  // The default view carries only ids.
  listings: (p) => [
    {
      path: `${v1}/standard_cost_codes`,
      query: { ...company(p), standard_cost_code_list_id: p.listId ?? undefined, view: 'extended' },
    },
  ],
  item: (p, id) => ({ path: `${v1}/standard_cost_codes/${id}`, query: company(p) }),
  create: (p) => ({
    path: `${v1}/standard_cost_codes`,
    query: {},
    extra: company(p),
    inner: { standard_cost_code_list_id: p.listId },
  }),
  update: (p, id) => ({ path: `${v1}/standard_cost_codes/${id}`, query: {}, extra: company(p) }),
  sync: (p) => ({
    path: `${v1}/standard_cost_codes/sync`,
    query: {},
    extra: { ...company(p), standard_cost_code_list_id: p.listId },
  }),
}
/** Cost codes of one project; on ERP-integrated projects only the sync endpoint writes. */
const PROJECT_COST_CODE: ResourceDef = {
  wrapper: 'cost_code',
  schema: T.CostCode,
  updatedAtFilter: false,
  listings: (p) => [{ path: `${v1}/cost_codes`, query: { project_id: p.projectId ?? undefined } }],
  item: (p, id) => ({ path: `${v1}/cost_codes/${id}`, query: { project_id: p.projectId ?? undefined } }),
  create: (p) => ({ path: `${v1}/cost_codes`, query: {}, extra: { project_id: p.projectId }, inner: {} }),
  update: (p, id) => ({ path: `${v1}/cost_codes/${id}`, query: {}, extra: { project_id: p.projectId } }),
  sync: (p) => ({
    path: `${v1}/cost_codes/sync`,
    query: { project_id: p.projectId ?? undefined },
    extra: { project_id: p.projectId },
  }),
}

// ---- invoices and payments ------------------------------------------------------------------
// Procore's ERP financial endpoints are partner-restricted (PROCORE.md §2.9): the paths and bodies
// below are [UNCONFIRMED] and kept here, in one place, so a correction is one edit. The stand-in
// (test/standins/procore) serves the same.
export const FinancialPaths = {
  /** Subcontractor invoices (requisitions) of a project: listed per project, batch-upserted by id. */
  requisitions: `${v1}/requisitions`,
  requisitionsSync: `${v1}/requisitions/sync`,
  /** Payments issued on commitments, readable, and their batch upsert keyed by origin_id (§2.9). */
  invoicePayments: (companyId: string) => `${v1}/companies/${companyId}/invoice_payments`,
  invoicePaymentsSync: (companyId: string) => `${v1}/companies/${companyId}/invoice_payments/sync`,
} as const

/** Subcontractor invoices on a project's commitments; the ERP's AP invoices are their twins. */
const REQUISITION: ResourceDef = {
  wrapper: 'requisition',
  schema: T.Requisition,
  updatedAtFilter: true,
  listings: (p) => [{ path: FinancialPaths.requisitions, query: { project_id: p.projectId ?? undefined } }],
  item: (p, id) => ({ path: `${FinancialPaths.requisitions}/${id}`, query: { project_id: p.projectId ?? undefined } }),
  create: (p) => ({ path: FinancialPaths.requisitions, query: {}, extra: { project_id: p.projectId }, inner: {} }),
  update: (p, id) => ({ path: `${FinancialPaths.requisitions}/${id}`, query: {}, extra: { project_id: p.projectId } }),
  sync: (p) => ({
    path: FinancialPaths.requisitionsSync,
    query: { project_id: p.projectId ?? undefined },
    extra: { project_id: p.projectId },
  }),
}

const RESOURCES = {
  departments: DEPARTMENT,
  vendors: VENDOR,
  projects: PROJECT,
  users: USER,
  standard_cost_codes: STANDARD_COST_CODE,
  project_cost_codes: PROJECT_COST_CODE,
  requisitions: REQUISITION,
} as const satisfies Record<string, ResourceDef>

/**
 * The record resources this connector reads and writes. Those under a project (`project_cost_codes`)
 * take the project id as `parentId`; the others belong to the company.
 */
export type ProcoreResource = keyof typeof RESOURCES

/** Procore resources whose records live in a project. */
export const inProject = (resource: ProcoreResource): boolean =>
  resource === 'project_cost_codes' || resource === 'requisitions'

/** `filters[updated_at]` as Procore takes ranges: `start...end`, here open-ended. */
const updatedSinceQuery = (since: Date): Query => ({ 'filters[updated_at]': `${since.toISOString()}...` })

const ERP_LIST_TTL_MS = 10 * 60_000

/**
 * One company's Procore resources. Ids in and out are decimal strings; bodies are Procore's own
 * shapes (the entity registry maps them to canonical fields).
 */
export class ProcoreApi {
  readonly client: ProcoreClient
  readonly #ctx: AppContext

  constructor(ctx: AppContext, companyId: string) {
    this.#ctx = ctx
    this.client = new ProcoreClient(ctx, companyId)
  }

  get companyId(): string {
    return this.client.companyId
  }

  /** Whether lists of this type can be narrowed by updated_at; otherwise reconciliation re-lists everything. */
  static supportsUpdatedSince(resource: ProcoreResource): boolean {
    return RESOURCES[resource].updatedAtFilter
  }

  /** Whether many records of this resource can be re-read in one request (`getMany`). */
  static readsById(resource: ProcoreResource): boolean {
    return RESOURCES[resource].idFilter === true
  }

  static hasSyncEndpoint(resource: ProcoreResource): boolean {
    return RESOURCES[resource].sync !== undefined
  }

  async *list(
    resource: ProcoreResource,
    options: { parentId?: string | null; updatedSince?: Date | undefined } = {},
  ): AsyncGenerator<Json[]> {
    const parentId = options.parentId ?? null
    const def: ResourceDef = RESOURCES[resource]
    const place = await this.#place(resource, parentId)
    const since = def.updatedAtFilter && options.updatedSince ? updatedSinceQuery(options.updatedSince) : {}
    for (const where of def.listings(place)) {
      yield* this.client.pages(where.path, {
        query: { ...where.query, ...since },
        schema: def.schema,
      }) as AsyncGenerator<Json[]>
    }
  }

  /**
   * Up to ID_BATCH records by id in one request (`filters[id][]` on the resource's main list), for
   * resources where `readsById`. Returns those listed; a record not listed may be deleted, hidden
   * from that list (an inactive vendor) or out of reach: only `get` can tell. Only the first page is
   * read and only the ids asked for are kept, so a list that ignored the filter costs one request.
   */
  async getMany(resource: ProcoreResource, ids: readonly string[], parentId: string | null = null): Promise<Json[]> {
    const def: ResourceDef = RESOURCES[resource]
    if (!def.idFilter) throw new Error(`Procore lists of ${resource} take no id filter`)
    if (ids.length > ID_BATCH) throw new RangeError(`at most ${ID_BATCH} ids per request`)
    if (ids.length === 0) return []
    const [where] = def.listings(await this.#place(resource, parentId))
    const wanted = new Set(ids)
    for await (const page of this.client.pages(where!.path, {
      query: { ...where!.query, 'filters[id][]': [...ids] },
      schema: def.schema,
    }) as AsyncGenerator<Json[]>) {
      return page.filter((record) => wanted.has(String(record.id)))
    }
    return []
  }

  async get(resource: ProcoreResource, id: string, parentId: string | null = null): Promise<Json | null> {
    const def: ResourceDef = RESOURCES[resource]
    const place = await this.#place(resource, parentId)
    const where = def.item(place, id)
    const record = (await this.client.find(where.path, { query: where.query, schema: def.schema })) as Json | null
    // Standard codes of other lists are not ours to sync: as far as we are concerned they do not exist.
    if (record && resource === 'standard_cost_codes' && record.standard_cost_code_list_id !== place.listId) return null
    return record
  }

  async create(resource: ProcoreResource, fields: Json, parentId: string | null = null): Promise<Json> {
    const def: ResourceDef = RESOURCES[resource]
    const where = def.create(await this.#place(resource, parentId))
    const body = { ...where.extra, [def.wrapper]: { ...where.inner, ...fields } }
    return (await this.client.call('POST', where.path, { query: where.query, body, schema: def.schema })) as Json
  }

  async update(resource: ProcoreResource, id: string, fields: Json, parentId: string | null = null): Promise<Json> {
    const def: ResourceDef = RESOURCES[resource]
    const where = def.update(await this.#place(resource, parentId), id)
    return (await this.client.call('PATCH', where.path, {
      query: where.query,
      body: { ...where.extra, [def.wrapper]: fields },
      schema: def.schema,
    })) as Json
  }

  /**
   * Procore's batch upsert, ≤ 1,000 items per call. Keyed by origin_id (or id), so a retry
   * never duplicates. Procore answers 200 even when items fail; their errors come back per item.
   */
  async sync(
    resource: ProcoreResource,
    updates: readonly Json[],
    parentId: string | null = null,
  ): Promise<T.SyncResult> {
    const def: ResourceDef = RESOURCES[resource]
    if (!def.sync) throw new Error(`Procore has no sync endpoint for ${resource}`)
    if (updates.length > SYNC_BATCH) throw new RangeError(`at most ${SYNC_BATCH} items per sync call`)
    const where = def.sync(await this.#place(resource, parentId))
    return this.client.call('PATCH', where.path, {
      query: where.query,
      body: { ...where.extra, updates },
      schema: T.SyncResult,
      idempotent: true,
    })
  }

  /**
   * The company's ERP standard cost code list (Procore creates exactly one when ERP Integrations
   * is activated). Cached for a few minutes per app.
   */
  async erpCostCodeListId(): Promise<string> {
    const { procoreCompanyId } = await this.client.choice()
    const cache = component(this.#ctx, 'procore.erpLists', () => new Map<string, { id: string; at: number }>())
    const hit = cache.get(procoreCompanyId)
    if (hit && Date.now() - hit.at < ERP_LIST_TTL_MS) return hit.id
    const list = (await this.costCodeLists(procoreCompanyId)).find((l) => l.is_erp_list === true)
    if (list) {
      cache.set(procoreCompanyId, { id: list.id, at: Date.now() })
      return list.id
    }
    throw new AppError(
      409,
      'procore_no_erp_cost_code_list',
      'No ERP cost code list',
      `Procore company ${procoreCompanyId} has no ERP standard cost code list. ` +
        'Procore creates it when ERP Integrations is activated for the company (a Procore super user does this); ' +
        'activate it, then retry.',
    )
  }

  /** The standard cost code lists of a Procore company (the chosen one when not given). */
  async costCodeLists(procoreCompanyId?: string): Promise<T.StandardCostCodeList[]> {
    const acting = procoreCompanyId ?? (await this.client.choice()).procoreCompanyId
    const lists: T.StandardCostCodeList[] = []
    for await (const page of this.client.pages(`${v1}/standard_cost_code_lists`, {
      query: { company_id: acting },
      schema: T.StandardCostCodeList,
      procoreCompanyId: acting,
    }))
      lists.push(...page)
    return lists
  }

  /** The Procore companies these credentials can see (`GET /rest/v1.0/companies`). */
  async companies(): Promise<T.ProcoreCompany[]> {
    const found: T.ProcoreCompany[] = []
    for await (const page of this.client.pages(`${v1}/companies`, { schema: T.ProcoreCompany })) found.push(...page)
    return found
  }

  async #place(resource: ProcoreResource, parentId: string | null): Promise<Place> {
    if (inProject(resource) && parentId === null)
      throw new TypeError(`${resource} are read and written in a project: give its id`)
    // Standard codes live in the list an admin chose in onboarding, else in the company's ERP list.
    const listId =
      resource === 'standard_cost_codes'
        ? ((await this.client.choice()).costCodeListId ?? (await this.erpCostCodeListId()))
        : null
    return { companyId: (await this.client.choice()).procoreCompanyId, projectId: parentId, listId }
  }

  // ---- timecard entries --------------------------------------------------------------------

  async *timecardEntries(
    options: { updatedSince?: Date; startDate?: string; endDate?: string; partyIds?: string[] } = {},
  ): AsyncGenerator<T.TimecardEntry[]> {
    yield* this.client.pages(`${v1}/companies/${this.companyId}/timecard_entries`, {
      query: {
        ...(options.updatedSince ? updatedSinceQuery(options.updatedSince) : {}),
        start_date: options.startDate,
        end_date: options.endDate,
        ...(options.partyIds ? { 'filters[party_id][]': options.partyIds } : {}),
      },
      schema: T.TimecardEntry,
    })
  }

  getTimecardEntry(id: string): Promise<T.TimecardEntry | null> {
    return this.client.find(`${v1}/companies/${this.companyId}/timecard_entries/${id}`, { schema: T.TimecardEntry })
  }

  createTimecardEntry(entry: T.TimecardEntryWrite): Promise<T.TimecardEntry> {
    return this.client.call('POST', `${v1}/companies/${this.companyId}/timecard_entries`, {
      body: { timecard_entry: entry },
      schema: T.TimecardEntry,
    })
  }

  updateTimecardEntry(id: string, entry: Partial<T.TimecardEntryWrite>): Promise<T.TimecardEntry> {
    return this.client.call('PATCH', `${v1}/companies/${this.companyId}/timecard_entries/${id}`, {
      body: { timecard_entry: entry },
      schema: T.TimecardEntry,
    })
  }

  // ---- payments issued (src/financials/payments*.ts) -------------------------------------

  /** Payments issued on the company's commitments (on one commitment when given), page by page. */
  async *invoicePayments(options: { commitmentId?: string } = {}): AsyncGenerator<T.InvoicePayment[]> {
    yield* this.client.pages(FinancialPaths.invoicePayments(this.companyId), {
      query: { 'filters[commitment_id]': options.commitmentId },
      schema: T.InvoicePayment,
    })
  }

  /**
   * Issues or updates payments on commitments, ≤ 1,000 per call, keyed by origin_id (the ERP payment
   * id): a retry, or a payment sent again, updates its twin and never issues a second one.
   */
  syncInvoicePayments(updates: readonly Json[]): Promise<T.SyncResult> {
    if (updates.length > SYNC_BATCH) throw new RangeError(`at most ${SYNC_BATCH} items per sync call`)
    return this.client.call('PATCH', FinancialPaths.invoicePaymentsSync(this.companyId), {
      body: { company_id: this.companyId, updates },
      schema: T.SyncResult,
      idempotent: true,
    })
  }

  /** Removes an entry; false when Procore no longer has it (404). */
  async deleteTimecardEntry(id: string): Promise<boolean> {
    try {
      await this.client.call('DELETE', `${v1}/companies/${this.companyId}/timecard_entries/${id}`, {
        schema: Type.Unknown(),
      })
      return true
    } catch (error) {
      if (error instanceof UpstreamError && error.reason === 'not_found') return false
      throw error
    }
  }

  // ---- webhooks API -----------------------------------------------------------------------

  async listHooks(namespace: string): Promise<T.Hook[]> {
    const hooks: T.Hook[] = []
    // The hooks list is not paginated by Procore; pages() copes with a single unpaged answer too.
    for await (const page of this.client.pages(`${v1}/webhooks/hooks`, {
      query: { company_id: this.companyId, namespace },
      schema: T.Hook,
    }))
      hooks.push(...page)
    return hooks
  }

  getHook(id: string): Promise<T.Hook | null> {
    return this.client.find(`${v1}/webhooks/hooks/${id}`, { query: { company_id: this.companyId }, schema: T.Hook })
  }

  createHook(hook: {
    api_version: string
    namespace: string
    destination_url: string
    destination_headers: Record<string, string>
  }): Promise<T.Hook> {
    return this.client.call('POST', `${v1}/webhooks/hooks`, {
      body: { company_id: this.companyId, hook },
      schema: T.Hook,
    })
  }

  updateHook(
    id: string,
    hook: Partial<{ api_version: string; destination_url: string; destination_headers: Record<string, string> }>,
  ): Promise<T.Hook> {
    return this.client.call('PATCH', `${v1}/webhooks/hooks/${id}`, {
      body: { company_id: this.companyId, hook },
      schema: T.Hook,
      idempotent: true,
    })
  }

  async deleteHook(id: string): Promise<void> {
    await this.client.call('DELETE', `${v1}/webhooks/hooks/${id}`, {
      query: { company_id: this.companyId },
      schema: Unknown,
    })
  }

  async listTriggers(hookId: string): Promise<T.Trigger[]> {
    const triggers: T.Trigger[] = []
    for await (const page of this.client.pages(`${v1}/webhooks/hooks/${hookId}/triggers`, {
      query: { company_id: this.companyId },
      schema: T.Trigger,
    }))
      triggers.push(...page)
    return triggers
  }

  /** Creates up to 500 triggers; Procore answers 207 with `failed[]` when some are refused. */
  createTriggers(
    hookId: string,
    apiVersion: string,
    triggers: ReadonlyArray<{ resource_name: string; event_type: string }>,
  ): Promise<T.BulkTriggersResult> {
    return this.client.call('POST', `${v1}/webhooks/hooks/${hookId}/triggers/bulk`, {
      body: { company_id: this.companyId, api_version: apiVersion, triggers },
      schema: T.BulkTriggersResult,
    })
  }

  deleteTriggers(hookId: string, triggerIds: readonly string[]): Promise<T.BulkTriggersResult> {
    return this.client.call('DELETE', `${v1}/webhooks/hooks/${hookId}/triggers/bulk`, {
      body: { company_id: this.companyId, triggers: triggerIds.map((id) => ({ id })) },
      schema: T.BulkTriggersResult,
    })
  }

  /** Subscribable resources at company level, with the event types each does not support. */
  async webhookResources(): Promise<T.WebhookResource[]> {
    return this.client.call('GET', `${v1}/webhooks/resources`, {
      query: { company_id: this.companyId },
      schema: WebhookResources,
    })
  }
}

const Unknown = Type.Unknown()
const WebhookResources = Type.Array(T.WebhookResource)
