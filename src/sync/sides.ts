import type { RecordType } from './registry.js'

/**
 * What the sync domain needs from each side, in the side's own JSON. The Procore connector
 * implements `ProcoreRecords` (src/procore/records.ts, `procoreRecords(ctx, companyId)`), the
 * ERP connector `ErpRecords` (src/erp/records.ts, `erpRecords(ctx, companyId)`). The entity
 * registry maps between this JSON and canonical fields; nothing here knows a record type's
 * fields.
 */
export type Json = Record<string, unknown>

export interface ProcoreRecords {
  /** The current record, or null when Procore answers 404 (deleted or not visible). */
  get(type: RecordType, id: string, parentId?: string | null): Promise<Json | null>
  /** Every record of the type (of one project for project cost codes), page by page. */
  list(type: RecordType, options?: { parentId?: string | null; updatedSince?: Date }): AsyncGenerator<Json[]>
  /**
   * Creates or updates records keyed by `origin_id` through Procore's batch sync endpoint
   * where the type has one (≤ 1,000 per call), so a retry never duplicates. With `id`, the
   * record is matched by id (the way to set or change its origin). Results are in input order;
   * Procore's per-item errors come back per item.
   */
  upsertByOrigin(
    type: RecordType,
    items: ReadonlyArray<{ id?: string; originId: string | null; originCode?: string | null; body: Json }>,
    parentId?: string | null,
  ): Promise<Array<{ ok: true; record: Json } | { ok: false; error: string; fieldErrors?: Record<string, string[]> }>>
  /** A partial update of one record by id. */
  update(type: RecordType, id: string, body: Json, parentId?: string | null): Promise<Json>
}

export interface ErpRecords {
  /** The current record (with `version`), or null when the ERP answers 404. */
  get(type: RecordType, id: string): Promise<Json | null>
  list(type: RecordType, options?: { updatedSince?: Date; jobId?: string }): AsyncGenerator<Json[]>
  /**
   * Creates with an Idempotency-Key: the same key always yields the same ERP record. Refusals
   * throw `ErpRefusedError` (src/erp/errors.ts) carrying the ERP's per-field messages.
   */
  create(type: RecordType, body: Json, idempotencyKey: string, jobId?: string | null): Promise<Json>
  /** Updates if the record is still at `version` (If-Match); a stale version throws `ErpStaleVersionError`. */
  update(type: RecordType, id: string, body: Json, version: number): Promise<Json>
}
