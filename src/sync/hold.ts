import { sql } from 'kysely'
import type { Db, Tx } from '../db/database.js'
import { OpenExportStatuses, type ExportStatus } from '../db/tables/exports.js'
import type { ExportSummary } from '../schemas/exports.js'
import { system } from './audit.js'
import { recordTransition } from './export-transitions.js'

/**
 * The hold: a Procore record with an open export request (waiting, exporting, failed to export)
 * is created and linked only by that request, so nothing else — auto-import, a manual create, a
 * link — changes it while an approver decides. Returns record id → request id.
 */
export async function heldRecords(
  db: Db | Tx,
  companyId: string,
  type: string,
  procoreIds: readonly string[],
  except?: string,
): Promise<Map<string, string>> {
  if (procoreIds.length === 0) return new Map()
  const rows = await heldQuery(db, companyId, type, procoreIds, except).execute()
  return new Map(rows.map((r) => [r.procore_id, r.id]))
}

/** The open requests holding these records (`heldRecords`), as a query to embed in another; `procoreIds` not empty. */
export function heldQuery(
  db: Db | Tx,
  companyId: string,
  type: string,
  procoreIds: readonly string[],
  except?: string,
) {
  const q = db
    .selectFrom('export_requests')
    .select(['id', 'procore_id'])
    .where('company_id', '=', companyId)
    .where('type', '=', type)
    .where('status', 'in', [...OpenExportStatuses])
    .where('procore_id', 'in', [...procoreIds])
  return except ? q.where('id', '<>', except) : q
}

/**
 * Requests waiting for a decision whose Procore record was deleted or made inactive end as
 * `withdrawn`, with the reason. Called, in its transaction, by the evaluation that sees the change.
 */
export async function withdrawGone(tx: Tx, companyId: string, type: string, procoreIds: readonly string[]) {
  if (procoreIds.length === 0) return
  const rows = await tx
    .selectFrom('export_requests as r')
    .leftJoin('record_snapshots as s', (j) =>
      j
        .onRef('s.company_id', '=', 'r.company_id')
        .onRef('s.type', '=', 'r.type')
        .on('s.side', '=', 'procore')
        .onRef('s.external_id', '=', 'r.procore_id'),
    )
    .select([
      'r.id',
      'r.type',
      'r.procore_id',
      'r.status',
      's.deleted_at',
      sql<unknown>`s.fields->'active'`.as('active'),
    ])
    .where('r.company_id', '=', companyId)
    .where('r.type', '=', type)
    .where('r.status', 'in', ['pending_acceptance', 'failed_to_export'])
    .where('r.procore_id', 'in', [...procoreIds])
    .modifyEnd(sql`for update of r`)
    .execute()
  for (const r of rows) {
    const reason =
      r.deleted_at !== null
        ? 'the record was deleted in Procore'
        : r.active === false
          ? 'the record was made inactive in Procore'
          : null
    if (!reason) continue
    await tx
      .updateTable('export_requests')
      .set({ status: 'withdrawn', reason, version: sql<number>`version + 1`, updated_at: new Date() })
      .where('id', '=', r.id)
      .execute()
    await recordTransition(tx, companyId, {
      request: r,
      from: r.status,
      to: 'withdrawn',
      actor: system('exports'),
      detail: `withdrawn: ${reason}`,
      data: { reason },
    })
  }
}

/** Procore's ERP icons: blue waiting, green synced, yellow retrieved or rejected; red failed, grey withdrawn. */
export const ExportColors: Record<ExportStatus, ExportSummary['color']> = {
  pending_acceptance: 'blue',
  exporting: 'blue',
  exported: 'green',
  rejected: 'yellow',
  retrieved: 'yellow',
  failed_to_export: 'red',
  withdrawn: 'grey',
}

/** A record view's open or last export request. */
export const exportSummary = (r: { id: string; status: ExportStatus; updatedAt: Date; reason: string | null }) => ({
  id: r.id,
  status: r.status,
  color: ExportColors[r.status],
  updatedAt: r.updatedAt.toISOString(),
  reason: r.reason,
})
