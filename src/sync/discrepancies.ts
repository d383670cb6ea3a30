import { sql, type Selectable } from 'kysely'
import { Type } from 'typebox'
import { etagOf } from '../api/etag.js'
import { keyset, type Page, type PageRequest } from '../api/pagination.js'
import type { AppContext } from '../context.js'
import { transaction, type Db, type Tx } from '../db/database.js'
import type { DiscrepanciesTable, DiscrepancyField, DiscrepancyStatus } from '../db/tables/sync.js'
import {
  AppError,
  badRequest,
  conflict,
  notFound,
  preconditionFailed,
  unprocessable,
  type FieldError,
} from '../errors.js'
import { enqueueMany, job } from '../jobs/queue.js'
import { defineTask } from '../jobs/task.js'
import type { Discrepancy, DiscrepancyChoice } from '../schemas/discrepancies.js'
import { audit, type Actor } from './audit.js'
import { companyErpKind, readBoth, writeSide } from './connectors.js'
import { originsTask } from './links.js'
import { heldRecords } from './hold.js'
import { propagateLink } from './propagate.js'
import {
  comparedFields,
  entity,
  erpProblems,
  originCodeOnly,
  pickFields,
  RecordTypes,
  Registry,
  sameValue,
  type Fields,
  type RecordType,
} from './registry.js'
import { getSettings, type TypeSettings } from './settings.js'
import { markDeleted, upsertSnapshotsInTx } from './snapshots.js'

/**
 * Discrepancies: linked pairs whose compared fields differ. Each differing field has an owner
 * (sync settings): `procore` or `erp` fields are propagated to the other side by a job;
 * `manual` fields wait in one open discrepancy per link, listing every differing field with
 * both values, until a person applies a choice or the sides come to agree by themselves.
 */

/**
 * Writes the owned fields of one link to the side that is behind. One queue per company and
 * type: writes of one kind go out one after another, in order.
 */
export const propagateTask = defineTask({
  name: 'sync:propagate',
  payload: Type.Object({ companyId: Type.String(), type: Type.Enum([...RecordTypes]), linkId: Type.String() }),
  maxAttempts: 8,
  jobKey: ({ linkId }) => `propagate:${linkId}`,
  queueName: ({ companyId, type }) => `propagate:${companyId}:${type}`,
  async run(ctx, { companyId, type, linkId }, job) {
    const outcome = await propagateLink(ctx, companyId, type, linkId, job.lastAttempt)
    ctx.log.debug({ component: 'sync', companyId, type, linkId, outcome }, 'propagation')
  },
})

/** Which way a differing field goes under these settings: to the ERP, to Procore, or to a person. */
export function routeField(settings: TypeSettings, field: string): 'to_erp' | 'to_procore' | 'manual' {
  const owner = settings.fieldOwners[field] ?? 'manual'
  const d = settings.direction
  if (owner === 'procore' && (d === 'procore_to_erp' || d === 'both')) return 'to_erp'
  if (owner === 'erp' && (d === 'erp_to_procore' || d === 'both')) return 'to_procore'
  return 'manual'
}

/** The compared fields whose normalised values differ, with both raw values. */
export function differingFields(type: RecordType, procore: Fields, erp: Fields): DiscrepancyField[] {
  const def = Registry[type]
  return comparedFields(type)
    .filter((f) => !sameValue(type, f, procore[f] ?? null, erp[f] ?? null))
    .map((f) => ({ field: f, label: def.fields[f]?.label ?? f, procore: procore[f] ?? null, erp: erp[f] ?? null }))
}

/** A discrepancy's fields compared by content (jsonb does not keep key order). */
const fieldsKey = (fields: readonly DiscrepancyField[]) =>
  JSON.stringify(fields.map((f) => [f.field, f.procore, f.erp]))

export interface Evaluation {
  linkId: string
  /** The open discrepancy after evaluation, if any. */
  discrepancyId: string | null
  /** Owned fields differ: a propagation job was scheduled. */
  propagating: boolean
  /** One side's record is gone: the caller ends the link. */
  gone: 'procore' | 'erp' | null
}

/**
 * Compares linked pairs from their snapshots and brings their discrepancies up to date, in the
 * caller's transaction: opens, updates (new ETag) or resolves; schedules propagation of owned
 * fields. Set-based: one read, at most three writes, one enqueue for any number of links.
 */
export async function evaluateLinks(
  tx: Tx,
  companyId: string,
  type: RecordType,
  linkIds: readonly string[],
  actor: Actor,
): Promise<Evaluation[]> {
  if (linkIds.length === 0) return []
  // One evaluation of a link at a time (the job, a link or an apply may meet): lock the links in
  // id order, then read — under READ COMMITTED the read sees what the one before us committed.
  await tx
    .selectFrom('record_links')
    .select('id')
    .where('company_id', '=', companyId)
    .where('id', 'in', [...linkIds])
    .orderBy('id')
    .forUpdate()
    .execute()
  const { settings } = await getSettings(tx, companyId)
  // Three index lookups joined here rather than one join in SQL: right after a bulk load the
  // statistics do not know the new rows yet, and a join planned on "1 row" walks nested loops.
  const links = await tx
    .selectFrom('record_links')
    .select(['id', 'procore_id', 'erp_id', 'origin_state'])
    .where('company_id', '=', companyId)
    .where('id', '=', sql<string>`any(${[...linkIds]}::uuid[])`)
    .where('unlinked_at', 'is', null)
    .execute()
  if (links.length === 0) return []
  const snaps = await sql<{ side: string; external_id: string; fields: Fields; deleted_at: Date | null }>`
    select side, external_id, fields, deleted_at from record_snapshots
    where company_id = ${companyId} and type = ${type}
      and ((side = 'procore' and external_id = any(${links.map((l) => l.procore_id)}::text[]))
        or (side = 'erp' and external_id = any(${links.map((l) => l.erp_id)}::text[])))`.execute(tx)
  const snap = new Map(snaps.rows.map((r) => [`${r.side}:${r.external_id}`, r]))
  const discs = await sql<{ id: string; link_id: string; fields: DiscrepancyField[] }>`
    select id, link_id, fields from discrepancies
    where link_id = any(${links.map((l) => l.id)}::uuid[]) and status = 'open'`.execute(tx)
  const disc = new Map(discs.rows.map((d) => [d.link_id, d]))
  const rows = links.map((l) => {
    const p = snap.get(`procore:${l.procore_id}`)
    const e = snap.get(`erp:${l.erp_id}`)
    const d = disc.get(l.id)
    return {
      id: l.id,
      origin: l.origin_state,
      pf: p?.fields ?? null,
      pdel: p?.deleted_at ?? null,
      ef: e?.fields ?? null,
      edel: e?.deleted_at ?? null,
      did: d?.id ?? null,
      dfields: d?.fields ?? null,
    }
  })

  const open: Array<{ linkId: string; fields: DiscrepancyField[] }> = []
  const update: Array<{ id: string; fields: DiscrepancyField[] }> = []
  const resolve: string[] = []
  const propagate: string[] = []
  const staleOrigin: string[] = []
  const out: Evaluation[] = []
  const typeSettings = settings[type]
  const originField = originCodeOnly(type)
  for (const r of rows) {
    const gone = !r.pf || r.pdel ? 'procore' : !r.ef || r.edel ? 'erp' : null
    if (gone) {
      out.push({ linkId: r.id, discrepancyId: r.did, propagating: false, gone })
      continue
    }
    // The ERP code changed after the origin was written: the link writes it again (a refused write stays `failed`).
    if (
      originField &&
      r.origin === 'set' &&
      !sameValue(type, originField, r.pf![originField] ?? null, r.ef![originField] ?? null)
    )
      staleOrigin.push(r.id)
    const diffs = differingFields(type, r.pf!, r.ef!)
    const manual = diffs.filter((d) => routeField(typeSettings, d.field) === 'manual')
    const owned = diffs.length > manual.length
    if (owned) propagate.push(r.id)
    if (manual.length === 0) {
      if (r.did) resolve.push(r.did)
      out.push({ linkId: r.id, discrepancyId: null, propagating: owned, gone: null })
    } else if (!r.did) {
      open.push({ linkId: r.id, fields: manual })
      out.push({ linkId: r.id, discrepancyId: null, propagating: owned, gone: null })
    } else {
      if (fieldsKey(r.dfields ?? []) !== fieldsKey(manual)) update.push({ id: r.did, fields: manual })
      out.push({ linkId: r.id, discrepancyId: r.did, propagating: owned, gone: null })
    }
  }

  if (open.length > 0) {
    const created = await tx
      .insertInto('discrepancies')
      .values(
        open.map((o) => ({
          company_id: companyId,
          type,
          link_id: o.linkId,
          status: 'open' as const,
          fields: JSON.stringify(o.fields),
        })),
      )
      .onConflict((oc) =>
        oc
          .column('link_id')
          .where('status', '=', 'open')
          .doUpdateSet({
            fields: sql<string>`excluded.fields`,
            version: sql<number>`discrepancies.version + 1`,
            updated_at: new Date(),
          }),
      )
      .returning(['id', 'link_id'])
      .execute()
    const byLink = new Map(created.map((c) => [c.link_id, c.id]))
    for (const e of out) if (byLink.has(e.linkId)) e.discrepancyId = byLink.get(e.linkId)!
  }
  if (update.length > 0) {
    await sql`update discrepancies d set fields = v.fields::jsonb, version = d.version + 1, updated_at = now()
      from (values ${sql.join(update.map((u) => sql`(${u.id}::uuid, ${JSON.stringify(u.fields)})`))}) as v(id, fields)
      where d.id = v.id and d.status = 'open'`.execute(tx)
  }
  if (resolve.length > 0) {
    await tx
      .updateTable('discrepancies')
      .set({
        status: 'resolved',
        resolved_at: new Date(),
        resolved_by: actor.id,
        updated_at: new Date(),
        version: sql<number>`version + 1`,
      })
      .where('id', 'in', resolve)
      .where('status', '=', 'open')
      .execute()
  }
  if (staleOrigin.length > 0) {
    await tx
      .updateTable('record_links')
      .set({ origin_state: 'pending' })
      .where('id', 'in', staleOrigin)
      .where('origin_state', '=', 'set')
      .execute()
  }
  await enqueueMany(tx, [
    ...propagate.map((linkId) => job(propagateTask, { companyId, type, linkId })),
    ...(staleOrigin.length > 0 ? [job(originsTask, { companyId, type })] : []),
  ])
  return out
}

// ---------------------------------------------------------------------------------------------
// Reading

type Row = Omit<Selectable<DiscrepanciesTable>, 'company_id'> & { procore_id: string; erp_id: string }

function toView(r: Row): Discrepancy {
  return {
    id: r.id,
    type: r.type,
    linkId: r.link_id,
    procoreId: r.procore_id,
    erpId: r.erp_id,
    status: r.status,
    fields: r.fields,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
    resolvedAt: r.resolved_at?.toISOString() ?? null,
    resolvedBy: r.resolved_by,
  }
}

const columns = [
  'd.id',
  'd.type',
  'd.link_id',
  'd.status',
  'd.fields',
  'd.version',
  'd.created_at',
  'd.updated_at',
  'd.resolved_at',
  'd.resolved_by',
  'l.procore_id',
  'l.erp_id',
] as const

function selectDiscrepancies(db: Db, companyId: string) {
  return db
    .selectFrom('discrepancies as d')
    .innerJoin('record_links as l', 'l.id', 'd.link_id')
    .select(columns)
    .where('d.company_id', '=', companyId)
}

const discrepanciesKeyset = keyset('discrepancies', 'desc', [
  { column: 'd.created_at', type: 'timestamp' },
  { column: 'd.id', type: 'uuid' },
])

export async function listDiscrepancies(
  db: Db,
  companyId: string,
  filter: { type?: RecordType | undefined; status?: DiscrepancyStatus | undefined; linkId?: string | undefined },
  page: PageRequest,
): Promise<Page<Discrepancy>> {
  let query = selectDiscrepancies(db, companyId).where('d.status', '=', filter.status ?? 'open')
  if (filter.type) query = query.where('d.type', '=', filter.type)
  if (filter.linkId) query = query.where('d.link_id', '=', filter.linkId)
  return discrepanciesKeyset.page(query, page, toView)
}

export async function getDiscrepancy(
  db: Db,
  companyId: string,
  id: string,
): Promise<{ discrepancy: Discrepancy; etag: string; version: number }> {
  const row = await selectDiscrepancies(db, companyId).where('d.id', '=', id).executeTakeFirst()
  if (!row) throw notFound('discrepancy', id)
  return { discrepancy: toView(row), etag: etagOf(row.version), version: row.version }
}

// ---------------------------------------------------------------------------------------------
// Apply

export type Choice = DiscrepancyChoice

/**
 * Applies a person's choice per field: writes the chosen value to whichever side differs,
 * re-reads both sides, and closes the discrepancy only when they agree. Guarded three ways:
 * If-Match (a stale ETag is 412, and of two applies with one ETag exactly one gets through),
 * a live re-read before writing (a field that changed again meanwhile updates the discrepancy
 * and answers 409 rather than being overwritten), and the ERP's own version check.
 */
export async function applyDiscrepancy(
  ctx: AppContext,
  companyId: string,
  id: string,
  expectedVersion: number,
  choices: Record<string, Choice>,
  actor: Actor,
) {
  const current = await getDiscrepancy(ctx.db, companyId, id)
  const d = current.discrepancy
  const type = d.type as RecordType
  if (d.status !== 'open')
    throw conflict(
      'discrepancy_closed',
      `Discrepancy ${id} is ${d.status}; there is nothing to apply. ` +
        `GET /v1/companies/${companyId}/records/${type} shows the records' current status.`,
    )
  if (current.version !== expectedVersion) throw preconditionFailed(current.etag)
  const held = await heldRecords(ctx.db, companyId, type, [d.procoreId])
  if (held.size > 0)
    throw conflict(
      'held_by_export',
      `The Procore record is held by export request ${[...held.values()].join(', ')} until an approver decides; ` +
        'apply once it is exported, rejected or retrieved.',
    )

  const targets = chosenValues(type, d.fields, choices)
  const kind = await companyErpKind(ctx.db, companyId)
  const erpNeeds = Object.fromEntries(
    d.fields
      .filter((f) => f.field in targets && !sameValue(type, f.field, targets[f.field], f.erp))
      .map((f) => [f.field, targets[f.field]!]),
  )
  const problems = erpProblems(type, kind, erpNeeds, 'update')
  if (problems.length > 0) {
    throw unprocessable(
      'erp_rules',
      `The ERP would refuse these values: ${problems.map((p) => p.message).join('; ')}.`,
      problems.map((p) => ({ pointer: `/body/fields/${p.field}`, message: p.message })),
    )
  }

  // Claim: exactly one apply per ETag gets past this line.
  const claimed = await ctx.db
    .updateTable('discrepancies')
    .set({ version: sql<number>`version + 1`, updated_at: new Date() })
    .where('id', '=', id)
    .where('company_id', '=', companyId)
    .where('version', '=', expectedVersion)
    .where('status', '=', 'open')
    .returning('version')
    .executeTakeFirst()
  if (!claimed) throw preconditionFailed((await getDiscrepancy(ctx.db, companyId, id)).etag)

  const link = { id: d.linkId, procoreId: d.procoreId, erpId: d.erpId }
  const live = await readBoth(ctx, companyId, type, link)
  if (!live.procore || !live.erp) {
    const gone = !live.procore ? 'procore' : 'erp'
    await markDeleted(ctx.db, companyId, gone, type, [gone === 'procore' ? link.procoreId : link.erpId])
    throw conflict(
      'record_deleted',
      `The ${gone === 'procore' ? 'Procore' : 'ERP'} record of this link no longer exists; ` +
        'the link ends and the discrepancy with it.',
    )
  }
  const stale = d.fields.filter(
    (f) =>
      f.field in choices &&
      (!sameValue(type, f.field, live.procore!.fields[f.field] ?? null, f.procore) ||
        !sameValue(type, f.field, live.erp!.fields[f.field] ?? null, f.erp)),
  )
  if (stale.length > 0)
    await changedMeanwhile(
      ctx,
      companyId,
      type,
      link.id,
      live,
      stale.map((f) => f.field),
      actor,
    )

  const toProcore: Fields = {}
  const toErp: Fields = {}
  for (const [field, value] of Object.entries(targets)) {
    if (!sameValue(type, field, live.procore.fields[field] ?? null, value)) toProcore[field] = value
    if (!sameValue(type, field, live.erp.fields[field] ?? null, value)) toErp[field] = value
  }
  const written = await writeSide(ctx, companyId, type, link, live, { procore: toProcore, erp: toErp })
  if (written.staleErp)
    await changedMeanwhile(
      ctx,
      companyId,
      type,
      link.id,
      await readBoth(ctx, companyId, type, link),
      Object.keys(toErp),
      actor,
    )

  // Re-read both sides: what they hold now is what the discrepancy is judged by.
  const after = await readBoth(ctx, companyId, type, link)
  const result = await transaction(ctx.db, async (tx) => {
    if (after.procore) await upsertSnapshotsInTx(tx, companyId, 'procore', type, [after.procore])
    if (after.erp) await upsertSnapshotsInTx(tx, companyId, 'erp', type, [after.erp])
    const before = {
      procore: pickFields(live.procore!.fields, Object.keys(targets)),
      erp: pickFields(live.erp!.fields, Object.keys(targets)),
    }
    const now = {
      procore: pickFields(after.procore?.fields ?? {}, Object.keys(targets)),
      erp: pickFields(after.erp?.fields ?? {}, Object.keys(targets)),
    }
    await audit(tx, companyId, actor, [
      {
        action: 'apply',
        type,
        procoreId: link.procoreId,
        erpId: link.erpId,
        linkId: link.id,
        before,
        after: now,
        upstream: written.upstream,
        detail: `discrepancy ${id}: ${Object.entries(choices)
          .map(([f, c]) => `${f} ← ${typeof c === 'string' ? c : 'value'}`)
          .join(', ')}`,
      },
    ])
    await evaluateLinks(tx, companyId, type, [link.id], actor)
    const remaining =
      after.procore && after.erp
        ? differingFields(type, after.procore.fields, after.erp.fields).filter((f) => f.field in targets)
        : []
    return {
      written: { procore: Object.keys(toProcore), erp: Object.keys(toErp) },
      notAgreeing: remaining.map((f) => f.field),
    }
  })
  if (written.error) throw written.error
  const view = await getDiscrepancy(ctx.db, companyId, id)
  return { ...view, applied: result.written, notAgreeing: result.notAgreeing }
}

/** The value each chosen field should get; 400 naming the field for anything that does not fit. */
function chosenValues(type: RecordType, fields: readonly DiscrepancyField[], choices: Record<string, Choice>): Fields {
  const errors: FieldError[] = []
  const out: Fields = {}
  const def = entity(type)
  for (const [name, choice] of Object.entries(choices)) {
    const f = fields.find((x) => x.field === name)
    if (!f) {
      errors.push({
        pointer: `/body/fields/${name}`,
        message: `${name} is not one of this discrepancy's fields (${fields.map((x) => x.field).join(', ')})`,
      })
      continue
    }
    if (choice === 'procore') out[name] = f.procore
    else if (choice === 'erp') out[name] = f.erp
    else {
      const bool = def.fields[name]?.normalize === 'bool'
      const v = choice.value
      if (bool ? !(typeof v === 'boolean' || v === null) : !(typeof v === 'string' || v === null)) {
        errors.push({
          pointer: `/body/fields/${name}/value`,
          message: `${name} takes ${bool ? 'true, false or null' : 'a string or null'}`,
        })
      } else out[name] = v
    }
  }
  if (errors.length > 0)
    throw badRequest(
      'invalid_choice',
      'Choose, per field of the discrepancy, "procore", "erp" or {"value": …}.',
      errors,
    )
  return out
}

/** Stores what the sides hold now, updates the discrepancy (new ETag) and answers 409 naming the fields. */
async function changedMeanwhile(
  ctx: AppContext,
  companyId: string,
  type: RecordType,
  linkId: string,
  live: Awaited<ReturnType<typeof readBoth>>,
  fields: string[],
  actor: Actor,
): Promise<never> {
  await transaction(ctx.db, async (tx) => {
    if (live.procore) await upsertSnapshotsInTx(tx, companyId, 'procore', type, [live.procore])
    if (live.erp) await upsertSnapshotsInTx(tx, companyId, 'erp', type, [live.erp])
    await evaluateLinks(tx, companyId, type, [linkId], actor)
  })
  const open = await ctx.db
    .selectFrom('discrepancies')
    .select(['id', 'version'])
    .where('link_id', '=', linkId)
    .where('status', '=', 'open')
    .executeTakeFirst()
  throw new AppError(
    409,
    'discrepancy_changed',
    'Changed meanwhile',
    `${fields.join(', ')} changed in Procore or the ERP since you read this discrepancy; nothing was written. ` +
      (open
        ? `The discrepancy now shows the current values: GET it again (ETag ${etagOf(open.version)}), ` +
          'review, and apply again.'
        : 'The two sides agree now; the discrepancy is closed.'),
    { fields, ...(open ? { headers: { etag: etagOf(open.version) } } : {}) },
  )
}
