import { sql } from 'kysely'
import { Type } from 'typebox'
import type { AppContext } from '../context.js'
import { transaction, type Tx } from '../db/database.js'
import type { Side } from '../db/tables/records.js'
import { defineTask } from '../jobs/task.js'
import { audit, system, type Actor } from './audit.js'
import { heldRecords, withdrawGone } from './hold.js'
import { requestCreateInTx } from './create.js'
import { evaluateLinks } from './discrepancies.js'
import { endLinks, insertLinks } from './links.js'
import { RecordTypes, Registry, type RecordType } from './registry.js'
import { refreshRecordItems } from './items.js'
import { getSettings, type TypeSettings } from './settings.js'
import { planBulkLinkInTx } from './suggestions.js'

const BATCH = 1000
const actor = system('evaluate')
const importer = system('auto-import')
const follower = system('follow-parent')
const archiver = system('auto-archive')

/**
 * Drains sync_dirty for one company and type: compares linked pairs, auto-imports, ends links of
 * deleted records. One pending job per company and type (job key), one running (queue).
 */
export const evaluateTask = defineTask({
  name: 'sync:evaluate',
  payload: Type.Object({ companyId: Type.String(), type: Type.Enum([...RecordTypes]) }),
  maxAttempts: 25,
  jobKey: ({ companyId, type }) => `evaluate:${companyId}:${type}`,
  queueName: ({ companyId, type }) => `evaluate:${companyId}:${type}`,
  async run(ctx, { companyId, type }) {
    const started = process.hrtime.bigint()
    const { evaluated } = await runEvaluation(ctx, companyId, type)
    const ms = Number(process.hrtime.bigint() - started) / 1e6
    if (evaluated > 0) ctx.log.debug({ component: 'sync', companyId, type, evaluated, ms }, 'evaluated changed records')
  },
})

/**
 * The evaluation job for one company and type: drains sync_dirty in batches, each batch in one
 * transaction with the removal of exactly the marks it read (a record marked again meanwhile has a
 * new row, which stays for the next pass). Per batch: linked pairs are compared (discrepancies,
 * propagation), links whose record was deleted end, and unlinked records meet auto-import.
 * Database only: every network call happens in the jobs this one schedules.
 */
export async function runEvaluation(
  ctx: AppContext,
  companyId: string,
  type: RecordType,
): Promise<{ evaluated: number }> {
  let evaluated = 0
  const backlog = await ctx.db
    .selectFrom('sync_dirty')
    .select('seq')
    .where('company_id', '=', companyId)
    .where('type', '=', type)
    .offset(BATCH)
    .limit(1)
    .executeTakeFirst()
  // A bulk change (a first refresh, a settings change): statistics may not know the new rows yet,
  // and with none the planner walks nested loops over thousands of snapshots. Cheap, sampled.
  if (backlog) await sql`analyze record_snapshots, record_keys, record_links, discrepancies`.execute(ctx.db)
  for (;;) {
    const n = await transaction(ctx.db, async (tx) => {
      const dirty = await tx
        .selectFrom('sync_dirty')
        .select(['side', 'external_id', 'seq'])
        .where('company_id', '=', companyId)
        .where('type', '=', type)
        .orderBy('seq')
        .limit(BATCH)
        .execute()
      if (dirty.length === 0) return 0
      const unique = new Map(
        dirty.map((d) => [`${d.side}:${d.external_id}`, { side: d.side, externalId: d.external_id }]),
      )
      await evaluateRecords(tx, companyId, type, [...unique.values()])
      // Exactly the marks read: one appended meanwhile (even with a lower seq, from a transaction
      // that committed late) was not looked at and stays.
      await tx
        .deleteFrom('sync_dirty')
        .where('seq', '=', sql<string>`any(${dirty.map((d) => d.seq)}::bigint[])`)
        .execute()
      return dirty.length
    })
    evaluated += n
    if (n < BATCH) break
  }
  // The list's items follow: folded here, so a bulk change costs the job, not the next list read.
  await refreshRecordItems(ctx.db, companyId, type)
  return { evaluated }
}

async function evaluateRecords(
  tx: Tx,
  companyId: string,
  type: RecordType,
  records: ReadonlyArray<{ side: Side; externalId: string }>,
): Promise<void> {
  const procoreIds = records.filter((r) => r.side === 'procore').map((r) => r.externalId)
  const erpIds = records.filter((r) => r.side === 'erp').map((r) => r.externalId)
  const links = await tx
    .selectFrom('record_links')
    .select(['id', 'procore_id', 'erp_id'])
    .where('company_id', '=', companyId)
    .where('type', '=', type)
    .where('unlinked_at', 'is', null)
    .where((eb) =>
      eb.or([
        ...(procoreIds.length > 0 ? [eb('procore_id', 'in', procoreIds)] : []),
        ...(erpIds.length > 0 ? [eb('erp_id', 'in', erpIds)] : []),
      ]),
    )
    .execute()
  const outcomes = await evaluateLinks(
    tx,
    companyId,
    type,
    links.map((l) => l.id),
    actor,
  )
  for (const side of ['procore', 'erp'] as const) {
    const gone = outcomes.filter((o) => o.gone === side)
    await endLinks(
      tx,
      companyId,
      type,
      gone.map((o) => ({ id: o.linkId })),
      actor,
      `the ${side === 'procore' ? 'Procore' : 'ERP'} record was deleted`,
    )
  }

  const linkedProcore = new Set(links.map((l) => l.procore_id))
  const linkedErp = new Set(links.map((l) => l.erp_id))
  const unlinkedAll = records.filter((r) => !(r.side === 'procore' ? linkedProcore : linkedErp).has(r.externalId))
  // A record sent for acceptance is held (no auto-import); one deleted or made inactive meanwhile is withdrawn.
  const unlinkedProcore = unlinkedAll.filter((r) => r.side === 'procore').map((r) => r.externalId)
  await withdrawGone(tx, companyId, type, unlinkedProcore)
  const held = await heldRecords(tx, companyId, type, unlinkedProcore)
  let unlinked = unlinkedAll.filter((r) => r.side !== 'procore' || !held.has(r.externalId))
  const { settings } = await getSettings(tx, companyId)
  const archivable = Registry[type].archivable
  if (archivable && settings[type].autoArchive && unlinked.length > 0)
    await autoArchive(tx, companyId, type, archivable, unlinked)
  // Records inside a linked parent follow it whatever the type's settings (a job's cost codes).
  const follows = Registry[type].parent?.follows
  if (follows && unlinked.length > 0) {
    const following = await insideLinkedParents(tx, companyId, type, follows, unlinked)
    if (following.length > 0) {
      const direction = follows === 'erp' ? 'erp_to_procore' : 'procore_to_erp'
      const rule = { ...settings[type], direction, autoLink: true, autoCreate: true } as const
      await autoImport(tx, companyId, type, rule, following, follower)
      const taken = new Set(following.map((r) => r.externalId))
      unlinked = unlinked.filter((r) => r.side !== follows || !taken.has(r.externalId))
    }
  }
  if (unlinked.length > 0 && (settings[type].autoLink || settings[type].autoCreate))
    await autoImport(tx, companyId, type, settings[type], unlinked, importer)
}

/** The records of `side` among these whose parent is linked (they follow it: registry parent.follows). */
async function insideLinkedParents(
  tx: Tx,
  companyId: string,
  type: RecordType,
  side: Side,
  records: ReadonlyArray<{ side: Side; externalId: string }>,
): Promise<Array<{ side: Side; externalId: string }>> {
  const ids = records.filter((r) => r.side === side).map((r) => r.externalId)
  const parent = Registry[type].parent
  if (ids.length === 0 || !parent) return []
  const rows = await tx
    .selectFrom('record_snapshots as s')
    .innerJoin('record_links as l', (j) =>
      j
        .on('l.company_id', '=', companyId)
        .on('l.type', '=', parent.type)
        .on('l.unlinked_at', 'is', null)
        .onRef(side === 'erp' ? 'l.erp_id' : 'l.procore_id', '=', 's.parent_id'),
    )
    .select('s.external_id')
    .where('s.company_id', '=', companyId)
    .where('s.type', '=', type)
    .where('s.side', '=', side)
    .where('s.deleted_at', 'is', null)
    .where('s.external_id', 'in', ids)
    .execute()
  return rows.map((r) => ({ side, externalId: r.external_id }))
}

/**
 * Archives inactive, unlinked records of the archivable side as they arrive (company setting
 * autoArchive): they leave the ready-to-import list. A record archived once and later made
 * active again stays archived until someone unarchives it.
 */
async function autoArchive(
  tx: Tx,
  companyId: string,
  type: RecordType,
  archivable: { side: Side; activeField: string },
  records: ReadonlyArray<{ side: Side; externalId: string }>,
): Promise<void> {
  const ids = records.filter((r) => r.side === archivable.side).map((r) => r.externalId)
  if (ids.length === 0) return
  const archived = await sql<{ external_id: string }>`
    insert into record_flags (company_id, type, side, external_id, ignored_at, ignored_by)
    select s.company_id, s.type, s.side, s.external_id, now(), ${archiver.id}
    from record_snapshots s
    where s.company_id = ${companyId} and s.type = ${type} and s.side = ${archivable.side}
      and s.deleted_at is null and s.external_id = any(${ids}::text[])
      and s.fields->>${archivable.activeField} = 'false'
    on conflict (company_id, type, side, external_id)
      do update set ignored_at = excluded.ignored_at, ignored_by = excluded.ignored_by
      where record_flags.ignored_at is null
    returning external_id`.execute(tx)
  await audit(
    tx,
    companyId,
    archiver,
    archived.rows.map((r) => ({
      action: 'archive' as const,
      type,
      [archivable.side === 'procore' ? 'procoreId' : 'erpId']: r.external_id,
      detail: 'archived automatically: inactive',
    })),
  )
}

/**
 * Auto-import for records that just appeared or changed and are unlinked: link strong,
 * unambiguous matches; then, per direction, create the rest on the other side (as a run, with
 * the duplicate guard). Records that are ignored, deleted, or part of a create in progress are
 * left alone.
 */
async function autoImport(
  tx: Tx,
  companyId: string,
  type: RecordType,
  settings: TypeSettings,
  records: ReadonlyArray<{ side: Side; externalId: string }>,
  importer: Actor,
): Promise<void> {
  const eligible = new Map<Side, string[]>()
  for (const side of ['procore', 'erp'] as const) {
    const ids = records.filter((r) => r.side === side).map((r) => r.externalId)
    if (ids.length === 0) continue
    const rows = await tx
      .selectFrom('record_snapshots as s')
      .select('s.external_id')
      .where('s.company_id', '=', companyId)
      .where('s.type', '=', type)
      .where('s.side', '=', side)
      .where('s.external_id', 'in', ids)
      .where('s.deleted_at', 'is', null)
      .where((eb) =>
        eb.not(
          eb.exists(
            eb
              .selectFrom('record_flags as f')
              .select('f.external_id')
              .where('f.company_id', '=', companyId)
              .where('f.type', '=', type)
              .where('f.side', '=', side)
              .whereRef('f.external_id', '=', 's.external_id')
              .where('f.ignored_at', 'is not', null),
          ),
        ),
      )
      .where((eb) =>
        eb.not(
          eb.exists(
            eb
              .selectFrom('sync_creates as c')
              .select('c.source_id')
              .where('c.company_id', '=', companyId)
              .where('c.type', '=', type)
              .where((w) =>
                w.or([
                  w.and([
                    w('c.source_id', '=', w.ref('s.external_id')),
                    w('c.target', '<>', side),
                    w('c.status', '=', 'pending'),
                  ]),
                  w.and([w('c.target_id', '=', w.ref('s.external_id')), w('c.target', '=', side)]),
                ]),
              ),
          ),
        ),
      )
      .execute()
    if (rows.length > 0)
      eligible.set(
        side,
        rows.map((r) => r.external_id),
      )
  }

  if (settings.autoLink) {
    for (const [side, ids] of eligible) {
      const plan = await planBulkLinkInTx(tx, companyId, type, 0.9, { only: { side, ids }, strongOnly: true })
      const { inserted } = await insertLinks(
        tx,
        companyId,
        type,
        plan.unambiguous.map((p) => ({
          procoreId: p.sourceId,
          erpId: p.candidateId,
          detail: `auto-linked: score ${p.score} (${p.reasons.join(', ')})`,
        })),
        importer,
      )
      await evaluateLinks(
        tx,
        companyId,
        type,
        inserted.map((l) => l.id),
        importer,
      )
      const taken = new Set(inserted.flatMap((l) => [l.procoreId, l.erpId]))
      eligible.set(
        side,
        ids.filter((id) => !taken.has(id)),
      )
    }
  }

  if (settings.autoCreate) {
    const d = settings.direction
    const fromProcore = d === 'procore_to_erp' || d === 'both'
    const fromErp = d === 'erp_to_procore' || d === 'both'
    const procoreIds = fromProcore ? (eligible.get('procore') ?? []) : []
    const erpIds = fromErp ? (eligible.get('erp') ?? []) : []
    if (procoreIds.length > 0) await requestCreateInTx(tx, companyId, type, 'erp', procoreIds, false, importer)
    if (erpIds.length > 0) await requestCreateInTx(tx, companyId, type, 'procore', erpIds, false, importer)
  }
}
