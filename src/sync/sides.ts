import type { AppContext } from '../context.js'
import { erpRecordApi } from '../erp/records.js'
import { ProcoreApi } from '../procore/resources.js'
import type { ErpPayment } from '../erp/protocol.js'
import type { SyncResult } from '../procore/types.js'
import { storeChoice } from '../procore/connection.js'
import {
  procoreAccountApi,
  procoreRecordApi,
  type ProcoreAccountApi,
  type UpsertItem,
  type UpsertResult,
} from '../procore/records.js'
import { entity, procoreResource, type AgentLimits, type RecordType } from './registry.js'

/**
 * What the sync domain needs from each side, by record type, in the side's own JSON. The
 * connectors (src/procore, src/erp) speak in their own resources; these adapters pick the
 * resource from the entity registry, so nothing below them knows a record type. The registry
 * maps between this JSON and canonical fields.
 */
export type Json = Record<string, unknown>

export interface ProcoreRecords {
  /** The current record, or null when Procore answers 404 (deleted or not visible). */
  get(type: RecordType, id: string, parentId?: string | null): Promise<Json | null>
  /**
   * Many records of a type by id in one request (at most ID_BATCH), or undefined when its Procore list
   * takes no id filter. A record missing from the answer must be read with `get` (deleted, inactive or hidden).
   */
  getMany(type: RecordType, ids: readonly string[], parentId?: string | null): Promise<Json[]> | undefined
  /** Every record of the type (of one project for project cost codes), page by page. */
  list(
    type: RecordType,
    options?: { parentId?: string | null; updatedSince?: Date | undefined },
  ): AsyncGenerator<Json[]>
  /**
   * Creates or updates records keyed by `origin_id` through Procore's batch sync endpoint where
   * the type has one (≤ 1,000 per call), so a retry never duplicates. With `id`, the record is
   * matched by id (the way to set or change its origin). Results are in input order; Procore's
   * per-item errors come back per item. `originCode` is written only where the type carries it.
   */
  upsertByOrigin(type: RecordType, items: readonly UpsertItem[], parentId?: string | null): Promise<UpsertResult[]>
  /** A partial update of one record by id. */
  update(type: RecordType, id: string, body: Json, parentId?: string | null): Promise<Json>
  /** The id of the company's ERP standard cost code list in Procore. */
  erpCostCodeListId(): Promise<string>
  /** Issues or updates payments on commitments (≤ 1,000 per call), keyed by origin_id = the ERP payment id. */
  syncInvoicePayments(updates: readonly Json[]): Promise<SyncResult>
}

export interface ErpRecords {
  /** The current record (with `version`), or null when the ERP answers 404. */
  get(type: RecordType, id: string): Promise<Json | null>
  list(type: RecordType, options?: { updatedSince?: Date | undefined; jobId?: string }): AsyncGenerator<Json[]>
  /**
   * Creates with an Idempotency-Key: the same key always yields the same ERP record. Refusals
   * throw `ErpRefusedError` (src/erp/errors.ts) carrying the ERP's per-field messages.
   */
  create(type: RecordType, body: Json, idempotencyKey: string, jobId?: string | null): Promise<Json>
  /** Updates if the record is still at `version` (If-Match); a stale version throws `ErpStaleVersionError`. */
  update(type: RecordType, id: string, body: Json, version: number): Promise<Json>
  /** Whether the agent serves this protocol list (its capabilities at the last connection test). */
  serves(resource: string): boolean
  /** The agent's declared lengths and code formats (its last connection test), for erpProblems. */
  limits(): AgentLimits
  /** Payments of AP invoices changed since `updatedSince` (all without it), page by page. */
  payments(options?: { updatedSince?: Date | undefined }): AsyncGenerator<ErpPayment[]>
}

const noun = (type: RecordType): string => entity(type).noun

/** The Procore side for one company. Throws (409 problem) when it is not connected or must reconnect. */
export async function procoreRecords(ctx: AppContext, companyId: string): Promise<ProcoreRecords> {
  const api = await procoreRecordApi(ctx, companyId)
  return {
    get: (type, id, parentId) => api.get(procoreResource(type, parentId), id, parentId),
    getMany: (type, ids, parentId) => {
      const resource = procoreResource(type, parentId)
      return ProcoreApi.readsById(resource) ? api.getMany(resource, ids, parentId) : undefined
    },
    list: (type, options = {}) => api.list(procoreResource(type, options.parentId), options),
    upsertByOrigin: (type, items, parentId) => {
      const withCode = entity(type).procore.hasOriginCode
      const sent = withCode ? items : items.map(({ originCode: _code, ...item }) => item)
      return api.upsertByOrigin(procoreResource(type, parentId), sent, parentId)
    },
    update: (type, id, body, parentId) => api.update(procoreResource(type, parentId), id, body, parentId),
    erpCostCodeListId: () => api.erpCostCodeListId(),
    syncInvoicePayments: (updates) => api.syncInvoicePayments(updates),
  }
}

/** The ERP side for one company. Throws ErpNotConnectedError when it has no connection. */
export async function erpRecords(ctx: AppContext, companyId: string): Promise<ErpRecords> {
  const api = await erpRecordApi(ctx, companyId)
  const resource = (type: RecordType) => entity(type).erp.resource
  return {
    get: (type, id) => api.get(resource(type), id),
    list: (type, options = {}) => api.list(resource(type), options),
    create: async (type, body, idempotencyKey, jobId) =>
      api.create(resource(type), body, idempotencyKey, { jobId: jobId ?? null, what: `create a ${noun(type)}` }),
    update: async (type, id, body, version) =>
      api.update(resource(type), id, body, version, `update ${noun(type)} ${id}`),
    serves: (name) => api.serves(name),
    limits: () => api.limits(),
    payments: (options) => api.payments(options),
  }
}

/** The Procore companies and cost code lists the connection can see, and the choice in use. */
export const procoreAccount = (ctx: AppContext, companyId: string): Promise<ProcoreAccountApi> =>
  procoreAccountApi(ctx, companyId)

/** Stores the Procore company and cost code list chosen for the company (used by every later call). */
export const chooseProcoreCompany = (
  ctx: AppContext,
  companyId: string,
  choice: { procoreCompanyId: string; costCodeListId: string },
): Promise<void> => storeChoice(ctx.db, companyId, choice)
