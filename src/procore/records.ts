import type { AppContext } from '../context.js'
import { AppError } from '../errors.js'
import { UpstreamError, upstreamMessage } from '../http/errors.js'
import { usableConnection } from './connection.js'
import { fieldMessages } from './errors.js'
import { inProject, ProcoreApi, SYNC_BATCH, type ProcoreResource } from './resources.js'
import type { Json } from './types.js'

/** One record to create or update through Procore's batch sync endpoint, keyed by `id` or `origin_id`. */
export interface UpsertItem {
  id?: string
  originId: string | null
  /** Written as `origin_code` when given. */
  originCode?: string | null
  body: Json
}
export type UpsertResult =
  { ok: true; record: Json } | { ok: false; error: string; fieldErrors?: Record<string, string[]> }

/**
 * One company's Procore records, by resource. Records are Procore's own JSON with ids as decimal
 * strings; project resources take the project id as `parentId`. Throws (409 problem) when the
 * company is not connected or must reconnect.
 */
export interface ProcoreRecordApi {
  /** The current record, or null when Procore answers 404 (deleted or not visible). */
  get(resource: ProcoreResource, id: string, parentId?: string | null): Promise<Json | null>
  /**
   * Up to ID_BATCH records by id in one request, where the resource can (`ProcoreApi.readsById`);
   * a record missing from the answer must be read with `get`.
   */
  getMany(resource: ProcoreResource, ids: readonly string[], parentId?: string | null): Promise<Json[]>
  /** Every record, page by page (narrowed to what changed since `updatedSince` where Procore can). */
  list(
    resource: ProcoreResource,
    options?: { parentId?: string | null; updatedSince?: Date | undefined },
  ): AsyncGenerator<Json[]>
  /**
   * Creates or updates records keyed by `origin_id` through Procore's batch sync endpoint where the
   * resource has one (≤ 1,000 per call), so a retry never duplicates. With `id`, the record is
   * matched by id (the way to set or change its origin). Results are in input order; Procore's
   * per-item errors come back per item.
   */
  upsertByOrigin(
    resource: ProcoreResource,
    items: readonly UpsertItem[],
    parentId?: string | null,
  ): Promise<UpsertResult[]>
  /** A partial update of one record by id. */
  update(resource: ProcoreResource, id: string, body: Json, parentId?: string | null): Promise<Json>
  /** The id of the company's ERP standard cost code list (409 problem when the company has none). */
  erpCostCodeListId(): Promise<string>
  /** Payments issued on commitments, batch-upserted by origin_id (≤ 1,000 per call). */
  syncInvoicePayments(updates: readonly Json[]): Promise<{ entities: Json[]; errors: Json[] }>
}

export async function procoreRecordApi(ctx: AppContext, companyId: string): Promise<ProcoreRecordApi> {
  await usableConnection(ctx.db, companyId)
  const api = new ProcoreApi(ctx, companyId)
  return {
    get: (resource, id, parentId) => api.get(resource, id, parentId ?? null),
    getMany: (resource, ids, parentId) => api.getMany(resource, ids, parentId ?? null),
    list: (resource, options = {}) => api.list(resource, options),
    upsertByOrigin: (resource, items, parentId) => upsertByOrigin(api, resource, items, parentId ?? null),
    update: (resource, id, body, parentId) => updateOne(api, resource, id, body, parentId ?? null),
    erpCostCodeListId: () => api.erpCostCodeListId(),
    syncInvoicePayments: (updates) => api.syncInvoicePayments(updates),
  }
}

async function updateOne(
  api: ProcoreApi,
  resource: ProcoreResource,
  id: string,
  body: Json,
  parentId: string | null,
): Promise<Json> {
  // Procore refuses plain updates of cost codes on ERP-integrated projects; sync by id always works.
  if (!inProject(resource)) return api.update(resource, id, body, parentId)
  const [result] = await upsertByOrigin(api, resource, [{ id, originId: null, body }], parentId)
  if (!result?.ok) {
    throw new AppError(
      422,
      'procore_refused',
      'Procore refused the change',
      `Procore refused the update of cost code ${id}: ${result?.error ?? 'no result'}.`,
      result?.fieldErrors ? { fieldErrors: result.fieldErrors } : {},
    )
  }
  return result.record
}

/** The body Procore's sync endpoint takes for one item: origin fields and the match key added. */
function syncItem(item: UpsertItem): Json {
  return {
    ...item.body,
    ...(item.id === undefined ? {} : { id: item.id }),
    ...(item.originId === null ? {} : { origin_id: item.originId }),
    ...(item.originCode !== undefined ? { origin_code: item.originCode } : {}),
  }
}

/** origin_id as text (Procore types it as an integer in some resources). */
const originText = (v: unknown): string | undefined =>
  typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'bigint' ? String(v) : undefined

const keyOf = (item: { id?: string | undefined; originId: string | null }): string | undefined =>
  item.id !== undefined ? `id:${item.id}` : item.originId !== null ? `origin:${item.originId}` : undefined

async function upsertByOrigin(
  api: ProcoreApi,
  resource: ProcoreResource,
  items: readonly UpsertItem[],
  parentId: string | null,
): Promise<UpsertResult[]> {
  const results: UpsertResult[] = new Array<UpsertResult>(items.length)
  // Two items with one key in one call would race inside Procore: the later one is refused.
  const seen = new Set<string>()
  const pending: number[] = []
  items.forEach((item, i) => {
    const key = keyOf(item)
    if (key !== undefined && seen.has(key)) {
      results[i] = {
        ok: false,
        error: `the same ${item.id !== undefined ? 'id' : 'origin_id'} appears twice in this batch`,
      }
      return
    }
    if (key !== undefined) seen.add(key)
    pending.push(i)
  })

  if (!ProcoreApi.hasSyncEndpoint(resource)) {
    await upsertOneByOne(api, resource, items, pending, results, parentId)
    return results
  }
  for (let start = 0; start < pending.length; start += SYNC_BATCH) {
    const chunk = pending.slice(start, start + SYNC_BATCH)
    const response = await api.sync(
      resource,
      chunk.map((i) => syncItem(items[i]!)),
      parentId,
    )
    matchResults(
      chunk.map((i) => ({ index: i, item: items[i]! })),
      response,
      results,
    )
  }
  return results
}

/**
 * Pairs Procore's `entities` and `errors` with the inputs: by id, else by origin_id, else (items
 * sent without a key) in order.
 */
function matchResults(
  sent: Array<{ index: number; item: UpsertItem }>,
  response: { entities: Json[]; errors: Json[] },
  results: UpsertResult[],
): void {
  const entities = response.entities.map((record) => ({ record, used: false }))
  const errors = response.errors.map((record) => ({ record, used: false }))
  const take = <E extends { record: Json; used: boolean }>(pool: E[], item: UpsertItem): E | undefined => {
    const found = pool.find(
      (e) =>
        !e.used &&
        (item.id !== undefined
          ? String(e.record.id) === item.id
          : item.originId !== null
            ? originText(e.record.origin_id) === item.originId
            : e.record.id === undefined || e.record.origin_id == null),
    )
    if (found) found.used = true
    return found
  }
  for (const { index, item } of sent) {
    const error = take(errors, item)
    if (error) {
      results[index] = itemError(error.record.errors)
      continue
    }
    const entity = take(entities, item)
    results[index] = entity
      ? { ok: true, record: entity.record }
      : { ok: false, error: 'Procore returned no result for this item; re-read the record before retrying' }
  }
}

function itemError(errors: unknown): UpsertResult {
  if (errors && typeof errors === 'object' && !Array.isArray(errors)) {
    const fieldErrors: Record<string, string[]> = {}
    for (const [field, messages] of Object.entries(errors as Record<string, unknown>)) {
      fieldErrors[field] = (Array.isArray(messages) ? messages : [messages]).map(String)
    }
    return { ok: false, error: fieldMessages(fieldErrors).join('; ') || 'refused by Procore', fieldErrors }
  }
  return { ok: false, error: typeof errors === 'string' ? errors : 'refused by Procore' }
}

/**
 * For types without a sync endpoint (departments): find each record by origin_id in one listing,
 * then PATCH it, or POST when absent. A retry after a crash finds what the first attempt created,
 * and Procore's origin_id uniqueness (409) catches a concurrent creator.
 */
async function upsertOneByOne(
  api: ProcoreApi,
  resource: ProcoreResource,
  items: readonly UpsertItem[],
  pending: number[],
  results: UpsertResult[],
  parentId: string | null,
): Promise<void> {
  let byOrigin: Map<string, string> | undefined
  const lookup = async (originId: string, fresh: boolean): Promise<string | undefined> => {
    if (!byOrigin || fresh) {
      byOrigin = new Map()
      for await (const page of api.list(resource, { parentId })) {
        for (const record of page) {
          const origin = originText(record.origin_id)
          if (origin) byOrigin.set(origin, String(record.id))
        }
      }
    }
    return byOrigin.get(originId)
  }

  for (const i of pending) {
    const item = items[i]!
    const fields = { ...item.body, ...(item.originId === null ? {} : { origin_id: item.originId }) }
    const write = async (fresh: boolean): Promise<Json> => {
      const id = item.id ?? (item.originId === null ? undefined : await lookup(item.originId, fresh))
      return id === undefined ? api.create(resource, fields, parentId) : api.update(resource, id, fields, parentId)
    }
    try {
      let record: Json
      try {
        record = await write(false)
      } catch (error) {
        // Someone created it since our listing (409 on origin_id), or it vanished (404): look again.
        const stale =
          error instanceof UpstreamError &&
          (error.reason === 'conflict' || (error.reason === 'not_found' && item.id === undefined))
        if (!stale || item.originId === null) throw error
        record = await write(true)
      }
      if (item.originId !== null) byOrigin?.set(item.originId, String(record.id))
      results[i] = { ok: true, record }
    } catch (error) {
      if (!(error instanceof UpstreamError) || error.retryable || error.status === undefined || error.status >= 500)
        throw error
      const body = error.body as { errors?: unknown } | undefined
      const refused =
        body && typeof body.errors === 'object' && body.errors !== null ? itemError(body.errors) : undefined
      results[i] = refused ?? { ok: false, error: upstreamMessage(error.body) ?? `Procore answered ${error.status}` }
    }
  }
}

/** What onboarding's first step offers and stores: the Procore companies and their standard cost code lists. */
export interface ProcoreAccountApi {
  /** The companies the connection can see. */
  companies(): Promise<Array<{ id: string; name: string | null }>>
  /** The standard cost code lists of one of them. */
  costCodeLists(procoreCompanyId: string): Promise<Array<{ id: string; name: string | null; isErpList: boolean }>>
  /** The company and list in use: the chosen ones, or the company's own id and null (its ERP list). */
  choice(): Promise<{ procoreCompanyId: string; costCodeListId: string | null }>
}

export async function procoreAccountApi(ctx: AppContext, companyId: string): Promise<ProcoreAccountApi> {
  await usableConnection(ctx.db, companyId)
  const api = new ProcoreApi(ctx, companyId)
  return {
    companies: async () => (await api.companies()).map((c) => ({ id: c.id, name: c.name ?? null })),
    costCodeLists: async (procoreCompanyId) =>
      (await api.costCodeLists(procoreCompanyId)).map((l) => ({
        id: l.id,
        name: l.name ?? null,
        isErpList: l.is_erp_list === true,
      })),
    choice: () => api.client.choice(),
  }
}
