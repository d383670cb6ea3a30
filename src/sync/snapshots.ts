import { createHash } from 'node:crypto'
import { sql } from 'kysely'
import type { Db } from '../db/database.js'
import type { Side } from '../db/tables/records.js'
import { normalizeFields, type Mapped, type RecordType } from './registry.js'

export interface SnapshotChange {
  externalId: string
  change: 'created' | 'changed' | 'unchanged' | 'stale'
}

/** Hash of the normalised canonical fields: equal hashes mean nothing a person would see changed. */
export function contentHash(type: RecordType, fields: Mapped['fields']): string {
  const normalised = normalizeFields(type, fields)
  const ordered = Object.keys(normalised).sort().map((k) => [k, normalised[k]])
  return createHash('sha256').update(JSON.stringify(ordered)).digest('hex')
}

/**
 * Upserts the snapshots of records just read from one side, in one statement. A re-read older
 * than what is stored (by the source's own updated_at) is ignored, so out-of-order deliveries
 * cannot roll a snapshot back. Returns what changed per record.
 */
export async function upsertSnapshots(
  db: Db,
  companyId: string,
  side: Side,
  type: RecordType,
  records: ReadonlyArray<Mapped & { raw: unknown }>,
): Promise<SnapshotChange[]> {
  if (records.length === 0) return []
  const rows = records.map((r) => ({
    company_id: companyId,
    side,
    type,
    external_id: r.externalId,
    parent_id: r.parentId,
    fields: JSON.stringify(r.fields),
    raw: JSON.stringify(r.raw, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)),
    content_hash: contentHash(type, r.fields),
    source_updated_at: r.updatedAt ? new Date(r.updatedAt) : null,
    deleted_at: null,
  }))
  const result = await db
    .insertInto('record_snapshots')
    .values(rows)
    .onConflict((oc) => oc.columns(['company_id', 'side', 'type', 'external_id']).doUpdateSet((eb) => ({
      parent_id: eb.ref('excluded.parent_id'),
      fields: eb.ref('excluded.fields'),
      raw: eb.ref('excluded.raw'),
      content_hash: eb.ref('excluded.content_hash'),
      source_updated_at: eb.ref('excluded.source_updated_at'),
      seen_at: sql<Date>`now()`,
      changed_at: sql<Date>`case when record_snapshots.content_hash <> excluded.content_hash or record_snapshots.deleted_at is not null then now() else record_snapshots.changed_at end`,
      deleted_at: null,
    })).where(sql<boolean>`record_snapshots.source_updated_at is null or excluded.source_updated_at is null or excluded.source_updated_at >= record_snapshots.source_updated_at`))
    .returning(['external_id', sql<boolean>`xmax = 0`.as('inserted'), sql<boolean>`changed_at = now()`.as('changed')])
    .execute()
  const byId = new Map(result.map((r) => [r.external_id, r]))
  return records.map((r) => {
    const row = byId.get(r.externalId)
    return { externalId: r.externalId, change: !row ? 'stale' : row.inserted ? 'created' : row.changed ? 'changed' : 'unchanged' }
  })
}

/** Marks records as deleted on their side (404 on re-read, or gone from a full listing). */
export async function markDeleted(db: Db, companyId: string, side: Side, type: RecordType, externalIds: readonly string[]): Promise<string[]> {
  if (externalIds.length === 0) return []
  const rows = await db
    .updateTable('record_snapshots')
    .set({ deleted_at: sql<Date>`now()`, changed_at: sql<Date>`now()` })
    .where('company_id', '=', companyId).where('side', '=', side).where('type', '=', type)
    .where('external_id', 'in', externalIds).where('deleted_at', 'is', null)
    .returning('external_id')
    .execute()
  return rows.map((r) => r.external_id)
}

/**
 * After a complete listing: every record of the type (within `parentId`, when given) not seen
 * since `listingStartedAt` no longer exists on that side.
 */
export async function markUnseenDeleted(db: Db, companyId: string, side: Side, type: RecordType, listingStartedAt: Date, parentId?: string | null): Promise<string[]> {
  let query = db
    .updateTable('record_snapshots')
    .set({ deleted_at: sql<Date>`now()`, changed_at: sql<Date>`now()` })
    .where('company_id', '=', companyId).where('side', '=', side).where('type', '=', type)
    .where('seen_at', '<', listingStartedAt).where('deleted_at', 'is', null)
  if (parentId !== undefined) query = parentId === null ? query.where('parent_id', 'is', null) : query.where('parent_id', '=', parentId)
  return (await query.returning('external_id').execute()).map((r) => r.external_id)
}

export async function getSnapshot(db: Db, companyId: string, side: Side, type: RecordType, externalId: string) {
  return db.selectFrom('record_snapshots').selectAll()
    .where('company_id', '=', companyId).where('side', '=', side).where('type', '=', type).where('external_id', '=', externalId)
    .executeTakeFirst()
}
