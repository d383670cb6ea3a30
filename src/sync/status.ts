import { sql, type RawBuilder } from 'kysely'
import { keyset, type PageRequest } from '../api/pagination.js'
import { transaction, type Db } from '../db/database.js'
import { PREPARED } from '../db/pool.js'
import type { ExportStatus } from '../db/tables/exports.js'
import type { Side } from '../db/tables/records.js'
import { exportSummary } from './hold.js'
import { notFound, unprocessable } from '../errors.js'
import type { RecordItem, RecordPage, SideRecord } from '../schemas/records.js'
import { audit, type Actor } from './audit.js'
import { Registry, type Fields, type RecordType } from './registry.js'
import { refreshRecordItems } from './items.js'
import { markDirty } from './snapshots.js'

/** Where a record stands: with its counterpart (in step or not), alone on one side, set aside, or stuck. */
export const RecordStatuses = ['linked', 'discrepancy', 'only_in_procore', 'only_in_erp', 'ignored', 'failed'] as const
export type RecordStatus = (typeof RecordStatuses)[number]

/**
 * The filters of Procore's ERP Integrations tool, over the statuses: ready_to_import is ERP only and
 * active (inactive jobs are archived, not imported), archived is `ignored` (one flag, see setArchived).
 */
export const RecordViews = [
  'ready_to_import',
  'ready_to_export',
  'ready_to_update',
  'failed',
  'synced',
  'archived',
] as const
export type RecordView = (typeof RecordViews)[number]

/** The status each filter of Procore's tool shows; ready_to_import also wants the ERP record active. */
const ViewStatus: Record<RecordView, RecordStatus> = {
  ready_to_import: 'only_in_erp',
  ready_to_export: 'only_in_procore',
  ready_to_update: 'discrepancy',
  failed: 'failed',
  synced: 'linked',
  archived: 'ignored',
}

function viewFilter(view: RecordView) {
  return view === 'ready_to_import' ? sql`(i.status = 'only_in_erp' and i.active)` : sql`i.status = ${ViewStatus[view]}`
}

type Row = {
  k: string
  sort_key: string
  status: RecordStatus
  link_id: string | null
  discrepancy_id: string | null
  procore_id: string | null
  p_parent: string | null
  p_fields: Fields | null
  p_updated: Date | null
  p_deleted: Date | null
  erp_id: string | null
  e_parent: string | null
  e_fields: Fields | null
  e_updated: Date | null
  e_deleted: Date | null
  failed_action: string | null
  failure: string | null
  failed_at: Date | null
  x_id: string | null
  x_status: ExportStatus | null
  x_updated: Date | null
  x_reason: string | null
}

/** A listed item as its index holds it. */
type ItemRow = {
  k: string
  sort_key: string
  status: RecordStatus
  active: boolean
  link_id: string | null
  procore_id: string | null
  erp_id: string | null
}

/**
 * Walks the listed items (record_items, kept by items.ts) in display order: `where` filters the
 * items (alias i), `tail` orders and limits. Only with a search are the snapshots joined, for the
 * rows walked.
 */
function itemsWalk(
  companyId: string,
  type: RecordType,
  q: string | undefined,
  where: RawBuilder<unknown>,
  tail: RawBuilder<unknown>,
) {
  const snapshots = (alias: string, side: Side) => sql`left join record_snapshots ${sql.raw(alias)}
      on ${sql.raw(alias)}.company_id = ${companyId} and ${sql.raw(alias)}.side = ${side}
      and ${sql.raw(alias)}.type = ${type}
      and ${sql.raw(alias)}.external_id = i.${sql.raw(side === 'procore' ? 'procore_id' : 'erp_id')}`
  return sql<ItemRow>`
    select i.k, i.sort_key, i.status, i.active, i.link_id, i.procore_id, i.erp_id
    from record_items i
    ${q ? sql`${snapshots('ps', 'procore')} ${snapshots('es', 'erp')}` : sql``}
    where i.company_id = ${companyId} and i.type = ${type} and ${where} and ${searchFilter(type, q)}
    ${tail}`
}

type Details = {
  snaps: Array<{
    side: Side
    external_id: string
    parent_id: string | null
    fields: Fields
    updated: string | null
    deleted: string | null
  }> | null
  flags: Array<{
    side: Side
    external_id: string
    failed_at: string | null
    failed_action: string | null
    failure: string | null
  }> | null
  discs: Array<{ id: string; link_id: string }> | null
  exports: Array<{
    id: string
    procore_id: string
    status: ExportStatus
    updated_at: string
    reason: string | null
  }> | null
}

/**
 * What a page shows of its items, as four columns over arrays of their Procore ids, ERP ids and link
 * ids: both snapshots, the open discrepancy, the failure and the Procore record's open or last export
 * request — by key, for those rows only, each part a subquery of its own.
 */
function detailColumns(
  companyId: string,
  type: RecordType,
  p: RawBuilder<unknown>,
  e: RawBuilder<unknown>,
  links: RawBuilder<unknown>,
) {
  const bySide = sql`company_id = ${companyId} and type = ${type}
    and ((side = 'procore' and external_id = any(${p})) or (side = 'erp' and external_id = any(${e})))`
  return sql`
    (select json_agg(json_build_object('side', side, 'external_id', external_id, 'parent_id', parent_id,
        'fields', fields, 'updated', source_updated_at, 'deleted', deleted_at))
      from record_snapshots where ${bySide}) as snaps,
    (select json_agg(json_build_object('side', side, 'external_id', external_id, 'failed_at', failed_at,
        'failed_action', failed_action, 'failure', failure))
      from record_flags where ${bySide} and failed_at is not null) as flags,
    (select json_agg(json_build_object('id', id, 'link_id', link_id))
      from discrepancies where link_id = any(${links}) and status = 'open') as discs,
    (select json_agg(x) from (select distinct on (procore_id) id, procore_id, status, updated_at, reason
      from export_requests where company_id = ${companyId} and type = ${type} and procore_id = any(${p})
      order by procore_id, created_at desc) x) as exports`
}

/** Some items with what they show (detailColumns), in one prepared statement. */
async function withDetails(db: Db, companyId: string, type: RecordType, items: readonly ItemRow[]): Promise<Row[]> {
  if (items.length === 0) return []
  const p = items.flatMap((i) => (i.procore_id === null ? [] : [i.procore_id]))
  const e = items.flatMap((i) => (i.erp_id === null ? [] : [i.erp_id]))
  const links = items.flatMap((i) => (i.link_id === null ? [] : [i.link_id]))
  const { rows } = await sql<Details>`${sql.raw(PREPARED)}select
    ${detailColumns(companyId, type, sql`${p}::text[]`, sql`${e}::text[]`, sql`${links}::uuid[]`)}`.execute(db)
  return assemble(items, rows[0]!)
}

/** Items joined in memory to their details. */
function assemble(items: readonly ItemRow[], d: Details): Row[] {
  const snaps = new Map((d.snaps ?? []).map((r) => [`${r.side}:${r.external_id}`, r]))
  const flags = new Map((d.flags ?? []).map((r) => [`${r.side}:${r.external_id}`, r]))
  const discs = new Map((d.discs ?? []).map((r) => [r.link_id, r.id]))
  const exports = new Map((d.exports ?? []).map((r) => [r.procore_id, r]))
  return items.map((i) => {
    const ps = i.procore_id === null ? undefined : snaps.get(`procore:${i.procore_id}`)
    const es = i.erp_id === null ? undefined : snaps.get(`erp:${i.erp_id}`)
    const fail =
      (i.procore_id === null ? undefined : flags.get(`procore:${i.procore_id}`)) ??
      (i.erp_id === null ? undefined : flags.get(`erp:${i.erp_id}`))
    const x = i.procore_id === null ? undefined : exports.get(i.procore_id)
    return {
      k: i.k,
      sort_key: i.sort_key,
      status: i.status,
      link_id: i.link_id,
      discrepancy_id: i.link_id === null ? null : (discs.get(i.link_id) ?? null),
      procore_id: i.procore_id,
      p_parent: ps?.parent_id ?? null,
      p_fields: ps?.fields ?? null,
      p_updated: date(ps?.updated ?? null),
      p_deleted: date(ps?.deleted ?? null),
      erp_id: i.erp_id,
      e_parent: es?.parent_id ?? null,
      e_fields: es?.fields ?? null,
      e_updated: date(es?.updated ?? null),
      e_deleted: date(es?.deleted ?? null),
      failed_action: fail?.failed_action ?? null,
      failure: fail?.failure ?? null,
      failed_at: date(fail?.failed_at ?? null),
      x_id: x?.id ?? null,
      x_status: x?.status ?? null,
      x_updated: date(x?.updated_at ?? null),
      x_reason: x?.reason ?? null,
    }
  })
}

function searchFilter(type: RecordType, q: string | undefined) {
  if (!q) return sql`true`
  const pattern = `%${q.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`
  const values = Registry[type].searchFields.flatMap((f) => [sql`ps.fields->>${f}`, sql`es.fields->>${f}`])
  return sql`exists (select 1 from unnest(array[${sql.join(values)}]::text[]) v where lower(v) like ${pattern})`
}

const date = (v: string | null) => (v === null ? null : new Date(v))

const sideRecord = (
  id: string | null,
  parent: string | null,
  fields: Fields | null,
  updated: Date | null,
  deleted: Date | null,
): SideRecord | null =>
  id === null || fields === null
    ? null
    : { id, parentId: parent, fields, updatedAt: updated?.toISOString() ?? null, deleted: deleted !== null }

function toItem(r: Row): RecordItem {
  return {
    key: r.k,
    status: r.status,
    linkId: r.link_id,
    discrepancyId: r.discrepancy_id,
    procore: sideRecord(r.procore_id, r.p_parent, r.p_fields, r.p_updated, r.p_deleted),
    erp: sideRecord(r.erp_id, r.e_parent, r.e_fields, r.e_updated, r.e_deleted),
    failure:
      r.status === 'failed' && r.failed_at
        ? { action: r.failed_action ?? 'sync', reason: r.failure ?? '', at: r.failed_at.toISOString() }
        : null,
    export:
      r.x_id && r.x_status && r.x_updated
        ? exportSummary({ id: r.x_id, status: r.x_status, updatedAt: r.x_updated, reason: r.x_reason })
        : null,
  }
}

export const emptyCounts = (): Record<RecordStatus, number> =>
  Object.fromEntries(RecordStatuses.map((s) => [s, 0])) as Record<RecordStatus, number>

// Byte order: the columns are collated "C", the same in every database, whatever its collation.
const recordsKeyset = keyset('records', 'asc', [
  { column: 'i.sort_key', type: 'text' },
  { column: 'i.k', type: 'text' },
])

/** Above this many matches of `q`, counts cover the first ones only and say so (`countsEstimated`). */
export const SEARCH_COUNT_CAP = 10_000

/**
 * The statement of one list page: the items index walked in display order from the cursor, what
 * the page's rows show (detailColumns), the counts, and whether changes wait to be folded into the
 * items. Nothing over the rest of the type.
 */
export function recordPageQuery(
  companyId: string,
  type: RecordType,
  filter: { status?: RecordStatus | RecordView | undefined; q?: string | undefined },
  page: PageRequest,
) {
  const after = recordsKeyset.decode(page.cursor)
  const status = filter.status
  const statusFilter = !status
    ? sql`true`
    : (RecordViews as readonly string[]).includes(status)
      ? viewFilter(status as RecordView)
      : sql`i.status = ${status}`
  const cursorFilter = after ? recordsKeyset.after(after) : sql`true`
  const walk = itemsWalk(
    companyId,
    type,
    filter.q,
    sql`${statusFilter} and ${cursorFilter}`,
    sql`order by ${recordsKeyset.orderBy()} limit ${page.limit + 1}`,
  )
  const ids = (column: string, cast: string) =>
    sql`(select array_agg(${sql.ref(column)}) from page where ${sql.ref(column)} is not null)::${sql.raw(cast)}`
  const counted = filter.q
    ? sql`(select status, active, count(*)::int as n
        from (${itemsWalk(companyId, type, filter.q, sql`true`, sql`limit ${SEARCH_COUNT_CAP + 1}`)}) m
        group by status, active)`
    : sql`(select status, active, n::int as n from record_item_counts
        where company_id = ${companyId} and type = ${type} and n > 0)`
  return sql<PageRow>`${sql.raw(PREPARED)}with page as (${walk})
    select exists (select 1 from record_item_dirty where company_id = ${companyId} and type = ${type}) as dirty,
      (select json_agg(page order by sort_key, k) from page) as items,
      ${detailColumns(companyId, type, ids('procore_id', 'text[]'), ids('erp_id', 'text[]'), ids('link_id', 'uuid[]'))},
      (select json_agg(c) from ${counted} c) as counts`
}

type PageRow = Details & {
  /** Changes not yet folded into the items: the page is read again after folding them. */
  dirty: boolean
  items: ItemRow[] | null
  counts: Array<{ status: RecordStatus; active: boolean; n: number }> | null
}

/**
 * One page of records with their statuses, in display order (the type's display field), plus
 * counts per status, in one prepared statement. The page is a keyset walk over the items index
 * carrying the status (the cost of a page, whatever the number of records); the counts are kept
 * with the items. With `q` the counts are over the matches, counted up to SEARCH_COUNT_CAP (then
 * `countsEstimated`). Changes not yet folded into the items are folded first, then the page is read
 * again: at rest, a page is one round trip.
 */
export async function listRecords(
  db: Db,
  companyId: string,
  type: RecordType,
  filter: { status?: RecordStatus | RecordView | undefined; q?: string | undefined },
  page: PageRequest,
): Promise<RecordPage> {
  const query = recordPageQuery(companyId, type, filter, page)
  let [row] = (await query.execute(db)).rows
  if (row!.dirty) {
    await refreshRecordItems(db, companyId, type)
    ;[row] = (await query.execute(db)).rows
  }
  const rows = row!.items ?? []
  const shown = assemble(rows.slice(0, page.limit), row!)
  const { items, next } = recordsKeyset.toPage(
    rows.length > page.limit ? [...shown, rows[page.limit]!] : shown,
    page.limit,
    (r) => [r.sort_key, r.k],
    (r) => toItem(r as Row),
  )
  const counted = row!.counts ?? []
  const counts = emptyCounts()
  const views = Object.fromEntries(RecordViews.map((v) => [v, 0])) as Record<RecordView, number>
  for (const c of counted) {
    const st = c.status
    counts[st] += c.n
    for (const v of RecordViews) if (ViewStatus[v] === st && (v !== 'ready_to_import' || c.active)) views[v] += c.n
  }
  const total = counted.reduce((n, c) => n + c.n, 0)
  return { items, next, counts, views, countsEstimated: filter.q !== undefined && total > SEARCH_COUNT_CAP }
}

/** One record (by side and id) with its status; 404 when neither side knows it. */
export async function getRecord(
  db: Db,
  companyId: string,
  type: RecordType,
  side: Side,
  externalId: string,
): Promise<RecordItem> {
  await refreshRecordItems(db, companyId, type)
  const idCol = side === 'procore' ? sql`i.procore_id` : sql`i.erp_id`
  const { rows } = await itemsWalk(companyId, type, undefined, sql`${idCol} = ${externalId}`, sql`limit 1`).execute(db)
  const [row] = await withDetails(db, companyId, type, rows)
  if (!row) throw notFound(`${side === 'procore' ? 'Procore' : 'ERP'} ${Registry[type].noun}`, externalId)
  return toItem(row)
}

/**
 * Archives (or unarchives) an inactive record of a type whose registry entry is archivable (ERP
 * jobs). Archived is ignored under Procore's name: one flag, the same effect (no suggestions, no
 * auto-import, off the ready-to-import list), audited as archive/unarchive.
 */
export async function setArchived(
  db: Db,
  companyId: string,
  type: RecordType,
  side: Side,
  externalId: string,
  archived: boolean,
  actor: Actor,
): Promise<RecordItem> {
  const archivable = Registry[type].archivable
  if (!archivable || archivable.side !== side) {
    throw unprocessable(
      'not_archivable',
      `${side === 'procore' ? 'Procore' : 'ERP'} ${Registry[type].label} cannot be archived` +
        (archivable
          ? `; archive ${archivable.side === 'erp' ? 'ERP' : 'Procore'} ones ` +
            `(…/records/${type}/${archivable.side}/{id}/archive).`
          : '; use …/ignore to set one aside.'),
    )
  }
  return setIgnored(db, companyId, type, side, externalId, archived, actor, archived ? 'archive' : 'unarchive')
}

/** Hides a record from matching and auto-import until it is un-ignored. */
export async function setIgnored(
  db: Db,
  companyId: string,
  type: RecordType,
  side: Side,
  externalId: string,
  ignored: boolean,
  actor: Actor,
  action: 'ignore' | 'unignore' | 'archive' | 'unarchive' = ignored ? 'ignore' : 'unignore',
): Promise<RecordItem> {
  await transaction(db, async (tx) => {
    const snap = await tx
      .selectFrom('record_snapshots')
      .select('external_id')
      .where('company_id', '=', companyId)
      .where('type', '=', type)
      .where('side', '=', side)
      .where('external_id', '=', externalId)
      .where('deleted_at', 'is', null)
      .executeTakeFirst()
    if (!snap) throw notFound(`${side === 'procore' ? 'Procore' : 'ERP'} ${Registry[type].noun}`, externalId)
    const now = ignored ? new Date() : null
    const by = ignored ? actor.id : null
    const changed = await tx
      .insertInto('record_flags')
      .values({
        company_id: companyId,
        type,
        side,
        external_id: externalId,
        ignored_at: now,
        ignored_by: by,
        failed_at: null,
        failed_action: null,
        failure: null,
      })
      .onConflict((oc) =>
        oc
          .columns(['company_id', 'type', 'side', 'external_id'])
          .doUpdateSet({ ignored_at: now, ignored_by: by })
          .where(sql<boolean>`(record_flags.ignored_at is null) <> ${!ignored}`),
      )
      .returning('external_id')
      .executeTakeFirst()
    if (changed) {
      await audit(tx, companyId, actor, [{ action, type, [side === 'procore' ? 'procoreId' : 'erpId']: externalId }])
      // Un-ignored: auto-import may now act on it.
      if (!ignored) await markDirty(tx, companyId, type, [{ side, externalId }])
    }
  })
  return getRecord(db, companyId, type, side, externalId)
}

/** Records the failure of the last action on records (they show as `failed` until it succeeds). */
export async function flagFailed(
  db: Db,
  companyId: string,
  type: RecordType,
  failures: ReadonlyArray<{ side: Side; externalId: string; action: string; reason: string }>,
): Promise<void> {
  if (failures.length === 0) return
  const unique = [...new Map(failures.map((f) => [`${f.side}:${f.externalId}`, f])).values()]
  await db
    .insertInto('record_flags')
    .values(
      unique.map((f) => ({
        company_id: companyId,
        type,
        side: f.side,
        external_id: f.externalId,
        ignored_at: null,
        ignored_by: null,
        failed_at: new Date(),
        failed_action: f.action,
        failure: f.reason.slice(0, 2000),
      })),
    )
    .onConflict((oc) =>
      oc.columns(['company_id', 'type', 'side', 'external_id']).doUpdateSet((eb) => ({
        failed_at: eb.ref('excluded.failed_at'),
        failed_action: eb.ref('excluded.failed_action'),
        failure: eb.ref('excluded.failure'),
      })),
    )
    .execute()
}

/** Clears failures of records whose action (any, or the named one) has now succeeded. */
export async function clearFailed(
  db: Db,
  companyId: string,
  type: RecordType,
  records: ReadonlyArray<{ side: Side; externalId: string }>,
  action?: string,
): Promise<void> {
  for (const side of ['procore', 'erp'] as const) {
    const ids = records.filter((r) => r.side === side).map((r) => r.externalId)
    if (ids.length === 0) continue
    let q = db
      .updateTable('record_flags')
      .set({ failed_at: null, failed_action: null, failure: null })
      .where('company_id', '=', companyId)
      .where('type', '=', type)
      .where('side', '=', side)
      .where('external_id', 'in', ids)
      .where('failed_at', 'is not', null)
    if (action) q = q.where('failed_action', '=', action)
    await q.execute()
  }
}
