import { sql } from 'kysely'
import { transaction, type Db } from '../db/database.js'
import { executePrepared } from '../db/pool.js'
import type { Side } from '../db/tables/records.js'
import { Registry, type RecordType } from './registry.js'

/**
 * The record list's index (record_items): one row per listed item — a linked pair, or a live
 * record on one side only — with its status and display sort key, and per-status counts kept in
 * the same transaction (record_item_counts). Triggers on snapshots, links, discrepancies and flags
 * append a mark per record whose item may have changed (record_item_dirty, migration 0013); the
 * marks are folded in here, before every read of the list and after every evaluation pass, so a
 * list page costs the page plus the changes since the last read, never every record of the type.
 *
 * Folding holds a per-company-and-type advisory lock and recomputes each marked record's item
 * from committed state read after the lock: a change whose mark it read is visible to it (they
 * commit together), and a mark committed later stays for the next pass.
 */

const BATCH = 5000

/** The status precedence: failed, ignored (unlinked only), discrepancy, linked, only_in_*. */
const statusCase = sql`case
    when fp.failed_at is not null or fe.failed_at is not null then 'failed'
    when i.link_id is null and (fp.ignored_at is not null or fe.ignored_at is not null) then 'ignored'
    when d.id is not null then 'discrepancy'
    when i.link_id is not null then 'linked'
    when i.procore_id is not null then 'only_in_procore'
    else 'only_in_erp'
  end`

/** Folds every pending mark of a company and type into its items and counts. */
export async function refreshRecordItems(db: Db, companyId: string, type: RecordType): Promise<void> {
  const { rows: pending } = await executePrepared(
    db,
    db
      .selectFrom('record_item_dirty')
      .select('seq')
      .where('company_id', '=', companyId)
      .where('type', '=', type)
      .limit(1),
  )
  if (pending.length === 0) return
  await transaction(db, async (tx) => {
    await sql`select pg_advisory_xact_lock(hashtextextended(${`record_items:${companyId}:${type}`}, 0))`.execute(tx)
    for (;;) {
      const { rows: marks } = await sql<{ side: Side; external_id: string }>`
        delete from record_item_dirty where seq = any(array(
          select seq from record_item_dirty where company_id = ${companyId} and type = ${type}
          order by seq limit ${BATCH}))
        returning side, external_id`.execute(tx)
      if (marks.length === 0) return
      const p = [...new Set(marks.filter((m) => m.side === 'procore').map((m) => m.external_id))]
      const e = [...new Set(marks.filter((m) => m.side === 'erp').map((m) => m.external_id))]
      const delta = new Map<string, { status: string; active: boolean; n: number }>()
      const add = (rows: ReadonlyArray<{ status: string; active: boolean; n: number }>, sign: number) => {
        for (const r of rows) {
          const key = `${r.status}:${r.active}`
          const d = delta.get(key) ?? { status: r.status, active: r.active, n: 0 }
          d.n += sign * Number(r.n)
          delta.set(key, d)
        }
      }
      const gone = await sql<{ status: string; active: boolean; n: number }>`
        with gone as (
          delete from record_items where company_id = ${companyId} and type = ${type}
            and (procore_id = any(${p}::text[]) or erp_id = any(${e}::text[]))
          returning status, active)
        select status, active, count(*)::int as n from gone group by status, active`.execute(tx)
      add(gone.rows, -1)
      const added = await sql<{ status: string; active: boolean; n: number }>`
        with added as (${insertItems(companyId, type, p, e)} returning status, active)
        select status, active, count(*)::int as n from added group by status, active`.execute(tx)
      add(added.rows, 1)
      const changed = [...delta.values()].filter((d) => d.n !== 0)
      if (changed.length > 0) {
        await sql`insert into record_item_counts (company_id, type, status, active, n)
          select ${companyId}, ${type}, v.status, v.active, v.n
          from unnest(${changed.map((d) => d.status)}::text[], ${changed.map((d) => d.active)}::boolean[],
            ${changed.map((d) => d.n)}::bigint[]) v (status, active, n)
          on conflict (company_id, type, status, active) do update set n = record_item_counts.n + excluded.n`.execute(
          tx,
        )
      }
      if (marks.length < BATCH) return
    }
  })
}

/** The items of the named records, computed from snapshots, links, discrepancies and flags. */
function insertItems(companyId: string, type: RecordType, p: readonly string[], e: readonly string[]) {
  const def = Registry[type]
  const display = def.displayField
  const activeField = def.archivable?.activeField
  const active = activeField ? sql`coalesce(es.fields->>${activeField}, '') <> 'false'` : sql`true`
  const unlinked = (side: Side, ids: readonly string[]) => sql`
      select ${`${side}:`} || s.external_id, null::uuid,
        ${side === 'procore' ? sql`s.external_id` : sql`null`}, ${side === 'erp' ? sql`s.external_id` : sql`null`}
      from record_snapshots s
      where s.company_id = ${companyId} and s.side = ${side} and s.type = ${type}
        and s.external_id = any(${ids}::text[]) and s.deleted_at is null
        and not exists (select 1 from record_links x
          where x.company_id = ${companyId} and x.type = ${type} and x.unlinked_at is null
          and x.${sql.raw(side === 'procore' ? 'procore_id' : 'erp_id')} = s.external_id)`
  const snapshots = (alias: string, side: Side) => sql`record_snapshots ${sql.raw(alias)}
      on ${sql.raw(alias)}.company_id = ${companyId} and ${sql.raw(alias)}.side = ${side}
      and ${sql.raw(alias)}.type = ${type}
      and ${sql.raw(alias)}.external_id = i.${sql.raw(side === 'procore' ? 'procore_id' : 'erp_id')}`
  return sql`
    insert into record_items (company_id, type, k, sort_key, status, active, link_id, procore_id, erp_id)
    select ${companyId}, ${type}, i.k, lower(coalesce(ps.fields->>${display}, es.fields->>${display}, '')),
      ${statusCase}, ${active}, i.link_id, i.procore_id, i.erp_id
    from (
      select 'link:' || l.id::text, l.id, l.procore_id, l.erp_id from record_links l
      where l.company_id = ${companyId} and l.type = ${type} and l.unlinked_at is null
        and (l.procore_id = any(${p}::text[]) or l.erp_id = any(${e}::text[]))
      union all ${unlinked('procore', p)}
      union all ${unlinked('erp', e)}
    ) i (k, link_id, procore_id, erp_id)
    left join ${snapshots('ps', 'procore')}
    left join ${snapshots('es', 'erp')}
    left join discrepancies d on d.link_id = i.link_id and d.status = 'open'
    left join record_flags fp on fp.company_id = ${companyId} and fp.type = ${type}
      and fp.side = 'procore' and fp.external_id = i.procore_id
    left join record_flags fe on fe.company_id = ${companyId} and fe.type = ${type}
      and fe.side = 'erp' and fe.external_id = i.erp_id`
}
