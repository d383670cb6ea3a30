import { createHash } from 'node:crypto'
import { sql } from 'kysely'
import { lastInTransaction, transaction, type Db, type Tx } from '../db/database.js'
import type { Side } from '../db/tables/records.js'
import { enqueue } from '../jobs/queue.js'
import { evaluateTask } from './evaluate.js'
import { matchKeys, normalizeFields, type Mapped, type RecordType } from './registry.js'

/**
 * Marks records for the evaluation job and schedules it, in the caller's transaction: one
 * pending job per company and type drains every mark, however many changes arrive meanwhile.
 * Marks are appended, never upserted, so a writer never waits on the job's batch.
 */
export async function markDirty(
  tx: Tx,
  companyId: string,
  type: RecordType,
  rows: ReadonlyArray<{ side: Side; externalId: string }>,
): Promise<void> {
  if (rows.length === 0) return
  for (let i = 0; i < rows.length; i += 5000) {
    await tx
      .insertInto('sync_dirty')
      .values(
        rows.slice(i, i + 5000).map((r) => ({ company_id: companyId, type, side: r.side, external_id: r.externalId })),
      )
      .execute()
  }
  await scheduleEvaluation(tx, companyId, type)
}

export async function scheduleEvaluation(db: Db, companyId: string, type: RecordType): Promise<void> {
  // The keyed evaluation job is the one row every writer of the company's records takes: last in the transaction.
  await lastInTransaction(db, `evaluate:${companyId}:${type}`, (d) => enqueue(d, evaluateTask, { companyId, type }))
}

/**
 * Brings the match keys of these records up to date, set-based, touching only keys that
 * changed: a re-read of an unchanged record (reconciliation re-reads thousands) writes nothing,
 * so the trigram index is left alone.
 */
async function writeKeys(
  tx: Tx,
  companyId: string,
  side: Side,
  type: RecordType,
  records: ReadonlyArray<Mapped & { raw: unknown }>,
): Promise<void> {
  const rows = records.flatMap((r) =>
    matchKeys(type, side, r).map((k) => ({
      company_id: companyId,
      type,
      side,
      external_id: r.externalId,
      key: k.key,
      value: k.value,
      parent_id: r.parentId,
    })),
  )
  const ids = records.map((r) => r.externalId)
  const wanted = new Set(rows.map((r) => `${r.external_id}\u0000${r.key}`))
  const existing = await tx
    .selectFrom('record_keys')
    .select(['external_id', 'key', 'value', 'parent_id'])
    .where('company_id', '=', companyId)
    .where('type', '=', type)
    .where('side', '=', side)
    .where('external_id', 'in', ids)
    .execute()
  const gone = existing.filter((k) => !wanted.has(`${k.external_id}\u0000${k.key}`))
  if (gone.length > 0) {
    await sql`delete from record_keys k
      using (values ${sql.join(gone.map((g) => sql`(${g.external_id}::text, ${g.key}::text)`))}) as v(external_id, key)
      where k.company_id = ${companyId} and k.type = ${type} and k.side = ${side}
        and k.external_id = v.external_id and k.key = v.key`.execute(tx)
  }
  const have = new Map(existing.map((k) => [`${k.external_id}\u0000${k.key}`, `${k.value}\u0000${k.parent_id ?? ''}`]))
  const changed = rows.filter(
    (r) => have.get(`${r.external_id}\u0000${r.key}`) !== `${r.value}\u0000${r.parent_id ?? ''}`,
  )
  for (let i = 0; i < changed.length; i += 5000) {
    await tx
      .insertInto('record_keys')
      .values(changed.slice(i, i + 5000))
      .onConflict((oc) =>
        oc
          .columns(['company_id', 'type', 'side', 'external_id', 'key'])
          .doUpdateSet((eb) => ({ value: eb.ref('excluded.value'), parent_id: eb.ref('excluded.parent_id') }))
          .where(
            sql<boolean>`(record_keys.value, record_keys.parent_id)
              is distinct from (excluded.value, excluded.parent_id)`,
          ),
      )
      .execute()
  }
}

export interface SnapshotChange {
  externalId: string
  change: 'created' | 'changed' | 'unchanged' | 'stale'
}

/** Hash of the normalised canonical fields: equal hashes mean nothing a person would see changed. */
export function contentHash(type: RecordType, fields: Mapped['fields']): string {
  const normalised = normalizeFields(type, fields)
  const ordered = Object.keys(normalised)
    .sort()
    .map((k) => [k, normalised[k]])
  return createHash('sha256').update(JSON.stringify(ordered)).digest('hex')
}

/**
 * Upserts the snapshots of records just read from one side, in one statement. A re-read older
 * than what is stored (by the source's own updated_at) is ignored, so out-of-order deliveries
 * cannot roll a snapshot back. Returns what changed per record.
 *
 * In the same transaction (its own; `upsertSnapshotsInTx` for the caller's), it refreshes the
 * records' match keys and marks every created or changed record for the evaluation job, which
 * compares linked pairs and acts on them: nothing that changed is missed, whichever path
 * (webhook, notification, refresh, reconciliation, our own write) brought the change.
 */
export async function upsertSnapshots(
  db: Db,
  companyId: string,
  side: Side,
  type: RecordType,
  records: ReadonlyArray<Mapped & { raw: unknown }>,
): Promise<SnapshotChange[]> {
  if (records.length === 0) return []
  return transaction(db, (tx) => upsertSnapshotsInTx(tx, companyId, side, type, records))
}

/** `upsertSnapshots` in the caller's transaction: the snapshots commit with the caller's writes. */
export async function upsertSnapshotsInTx(
  tx: Tx,
  companyId: string,
  side: Side,
  type: RecordType,
  records: ReadonlyArray<Mapped & { raw: unknown }>,
): Promise<SnapshotChange[]> {
  if (records.length === 0) return []
  // Within one call the last reading of a record wins (one statement cannot upsert a row twice).
  const unique = [...new Map(records.map((r) => [r.externalId, r])).values()]
  const changes = await writeSnapshots(tx, companyId, side, type, unique)
  const live = unique.filter((_r, i) => changes[i]?.change !== 'stale')
  if (live.length > 0) await writeKeys(tx, companyId, side, type, live)
  const changed = changes.filter((c) => c.change === 'created' || c.change === 'changed')
  await markDirty(
    tx,
    companyId,
    type,
    changed.map((c) => ({ side, externalId: c.externalId })),
  )
  const byId = new Map(changes.map((c) => [c.externalId, c]))
  return records.map((r) => byId.get(r.externalId) ?? { externalId: r.externalId, change: 'stale' as const })
}

async function writeSnapshots(
  tx: Tx,
  companyId: string,
  side: Side,
  type: RecordType,
  records: ReadonlyArray<Mapped & { raw: unknown }>,
): Promise<SnapshotChange[]> {
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
  const result = await tx
    .insertInto('record_snapshots')
    .values(rows)
    .onConflict((oc) =>
      oc
        .columns(['company_id', 'side', 'type', 'external_id'])
        .doUpdateSet((eb) => ({
          parent_id: eb.ref('excluded.parent_id'),
          fields: eb.ref('excluded.fields'),
          raw: eb.ref('excluded.raw'),
          content_hash: eb.ref('excluded.content_hash'),
          source_updated_at: eb.ref('excluded.source_updated_at'),
          seen_at: sql<Date>`now()`,
          changed_at: sql<Date>`case
            when record_snapshots.content_hash <> excluded.content_hash or record_snapshots.deleted_at is not null
            then now() else record_snapshots.changed_at end`,
          deleted_at: null,
        }))
        .where(
          sql<boolean>`record_snapshots.source_updated_at is null or excluded.source_updated_at is null
            or excluded.source_updated_at >= record_snapshots.source_updated_at`,
        ),
    )
    .returning(['external_id', sql<boolean>`xmax = 0`.as('inserted'), sql<boolean>`changed_at = now()`.as('changed')])
    .execute()
  const byId = new Map(result.map((r) => [r.external_id, r]))
  return records.map((r) => {
    const row = byId.get(r.externalId)
    return {
      externalId: r.externalId,
      change: !row ? 'stale' : row.inserted ? 'created' : row.changed ? 'changed' : 'unchanged',
    }
  })
}

/** The database's clock: the time `seen_at` is compared with when a listing looks for what it did not see. */
export async function dbNow(db: Db): Promise<Date> {
  const { rows } = await sql<{ now: Date }>`select now() as now`.execute(db)
  return rows[0]!.now
}

/** Marks records as deleted on their side (404 on re-read, or gone from a full listing). */
export async function markDeleted(
  db: Db,
  companyId: string,
  side: Side,
  type: RecordType,
  externalIds: readonly string[],
): Promise<string[]> {
  if (externalIds.length === 0) return []
  return transaction(db, async (tx) => {
    const rows = await tx
      .updateTable('record_snapshots')
      .set({ deleted_at: sql<Date>`now()`, changed_at: sql<Date>`now()` })
      .where('company_id', '=', companyId)
      .where('side', '=', side)
      .where('type', '=', type)
      .where('external_id', 'in', externalIds)
      .where('deleted_at', 'is', null)
      .returning('external_id')
      .execute()
    return afterDeletion(
      tx,
      companyId,
      side,
      type,
      rows.map((r) => r.external_id),
    )
  })
}

/** A deleted record matches nothing; the evaluation job ends its link, if it had one. */
async function afterDeletion(
  tx: Tx,
  companyId: string,
  side: Side,
  type: RecordType,
  ids: string[],
): Promise<string[]> {
  if (ids.length === 0) return ids
  for (let i = 0; i < ids.length; i += 5000) {
    await tx
      .deleteFrom('record_keys')
      .where('company_id', '=', companyId)
      .where('type', '=', type)
      .where('side', '=', side)
      .where('external_id', 'in', ids.slice(i, i + 5000))
      .execute()
  }
  await markDirty(
    tx,
    companyId,
    type,
    ids.map((externalId) => ({ side, externalId })),
  )
  return ids
}

export async function getSnapshot(db: Db, companyId: string, side: Side, type: RecordType, externalId: string) {
  return db
    .selectFrom('record_snapshots')
    .selectAll()
    .where('company_id', '=', companyId)
    .where('side', '=', side)
    .where('type', '=', type)
    .where('external_id', '=', externalId)
    .executeTakeFirst()
}
