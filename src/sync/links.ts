import { sql, type Selectable } from 'kysely'
import { jsonArrayFrom } from 'kysely/helpers/postgres'
import { Type } from 'typebox'
import { etagOf } from '../api/etag.js'
import { keyset, type Page, type PageRequest } from '../api/pagination.js'
import type { AppContext } from '../context.js'
import { lastInTransaction, transaction, type Db, type Tx } from '../db/database.js'
import type { RecordLinksTable } from '../db/tables/sync.js'
import { AppError, conflict, notFound, preconditionFailed, unprocessable } from '../errors.js'
import { requestJobCostsAfterLink } from '../financials/job-costs.js'
import { requestPaymentsAfterLink } from '../financials/payments.js'
import { awaitJoiners, job, joinKeyedJob } from '../jobs/queue.js'
import { defineTask } from '../jobs/task.js'
import type { Side } from '../db/tables/records.js'
import { heldQuery } from './hold.js'
import type { Link, LinkCandidate } from '../schemas/links.js'
import { procoreRecords } from './sides.js'
import { audit, system, type Actor } from './audit.js'
import { failureMessage, mapRecord } from './connectors.js'
import { evaluateLinks } from './discrepancies.js'
import {
  dependentTypes,
  otherSide,
  RecordTypes,
  Registry,
  type Fields,
  type LinkFacts,
  type LinkPair,
  type LinkPrerequisite,
  type RecordType,
} from './registry.js'
import { clearFailed, flagFailed } from './status.js'
import { markDirty, upsertSnapshots } from './snapshots.js'
import { suggestionsFor } from './suggestions.js'

/**
 * Links pair a Procore record with its ERP twin. A link is what allows any syncing: it is
 * evaluated for discrepancies, its owned fields propagate, and Procore's origin_id (plus
 * origin_code where the type has one) carries the ERP id. Unlinking keeps the row as history.
 */

const originsActor = system('origins')

type Row = Pick<Selectable<RecordLinksTable>, (typeof columns)[number]>

function toLink(r: Row, discrepancyId: string | null = null): Link {
  return {
    id: r.id,
    type: r.type,
    procoreId: r.procore_id,
    erpId: r.erp_id,
    active: r.unlinked_at === null,
    origin: r.origin_state,
    originError: r.origin_error,
    discrepancyId,
    createdBy: r.created_by,
    createdAt: r.created_at.toISOString(),
    unlinkedBy: r.unlinked_by,
    unlinkedAt: r.unlinked_at?.toISOString() ?? null,
  }
}

const columns = [
  'id',
  'type',
  'procore_id',
  'erp_id',
  'origin_state',
  'origin_error',
  'version',
  'created_by',
  'created_at',
  'unlinked_by',
  'unlinked_at',
] as const

export async function getLink(db: Db, companyId: string, linkId: string): Promise<{ link: Link; etag: string }> {
  const row = await db
    .selectFrom('record_links')
    .select(columns)
    .where('company_id', '=', companyId)
    .where('id', '=', linkId)
    .executeTakeFirst()
  if (!row) throw notFound('link', linkId)
  const open = await db
    .selectFrom('discrepancies')
    .select('id')
    .where('link_id', '=', linkId)
    .where('status', '=', 'open')
    .executeTakeFirst()
  return { link: toLink(row, open?.id ?? null), etag: etagOf(row.version) }
}

const linksKeyset = keyset('links', 'desc', [
  { column: 'record_links.created_at', type: 'timestamp' },
  { column: 'record_links.id', type: 'uuid' },
])

export async function listLinks(
  db: Db,
  companyId: string,
  filter: { type?: RecordType | undefined; active?: boolean | undefined },
  page: PageRequest,
): Promise<Page<Link>> {
  let query = db
    .selectFrom('record_links')
    .select(columns)
    .select((eb) =>
      eb
        .selectFrom('discrepancies')
        .select('discrepancies.id')
        .whereRef('discrepancies.link_id', '=', 'record_links.id')
        .where('discrepancies.status', '=', 'open')
        .as('discrepancy_id'),
    )
    .where('company_id', '=', companyId)
  if (filter.type) query = query.where('type', '=', filter.type)
  if (filter.active !== undefined) query = query.where('unlinked_at', filter.active ? 'is' : 'is not', null)
  return linksKeyset.page(query, page, (r) => toLink(r, r.discrepancy_id))
}

/** One link prerequisite a pair does not meet (registry: linkPrerequisites). */
export interface UnmetPrerequisite {
  code: string
  detail: string
  fix: string
  /** Procore's API can meet it: POST …/links with fix: true does. */
  fixable: boolean
}

/** The link facts as last read from Procore (the company's ERP cost code list). */
export async function linkFacts(db: Db, companyId: string): Promise<LinkFacts> {
  const row = await db
    .selectFrom('procore_erp_lists')
    .select('list_id')
    .where('company_id', '=', companyId)
    .executeTakeFirst()
  return { erpCostCodeListId: row?.list_id ?? null }
}

/**
 * Reads the company's ERP cost code list from Procore and keeps it for the prerequisite checks,
 * which run inside transactions. Without a usable Procore connection the last known list stands.
 */
export async function refreshLinkFacts(ctx: AppContext, companyId: string): Promise<LinkFacts> {
  try {
    const listId = await (await procoreRecords(ctx, companyId)).erpCostCodeListId()
    await ctx.db
      .insertInto('procore_erp_lists')
      .values({ company_id: companyId, list_id: listId })
      .onConflict((oc) => oc.column('company_id').doUpdateSet({ list_id: listId, seen_at: new Date() }))
      .execute()
    return { erpCostCodeListId: listId }
  } catch (error) {
    ctx.log.warn(
      { component: 'sync', companyId, err: { message: failureMessage(error) } },
      'the ERP cost code list could not be read from Procore; the last known one is used',
    )
    return linkFacts(ctx.db, companyId)
  }
}

/**
 * The registry's link prerequisites checked for each pair, from the snapshots and the stored link
 * facts: every unmet one per Procore id. Pairs whose records are unknown are left to the caller.
 */
export async function unmetPrerequisites(
  db: Db,
  companyId: string,
  type: RecordType,
  pairs: ReadonlyArray<{ procoreId: string; erpId: string }>,
): Promise<Map<string, UnmetPrerequisite[]>> {
  const prerequisites = Registry[type].linkPrerequisites ?? []
  const out = new Map<string, UnmetPrerequisite[]>()
  if (prerequisites.length === 0 || pairs.length === 0) return out
  const facts = await linkFacts(db, companyId)
  const snaps = new Map<string, { raw: Record<string, unknown>; fields: Fields }>()
  for (const side of ['procore', 'erp'] as const) {
    const ids = [...new Set(pairs.map((p) => (side === 'procore' ? p.procoreId : p.erpId)))]
    for (let i = 0; i < ids.length; i += 5000) {
      const rows = await db
        .selectFrom('record_snapshots')
        .select(['external_id', 'raw', 'fields'])
        .where('company_id', '=', companyId)
        .where('type', '=', type)
        .where('side', '=', side)
        .where('external_id', 'in', ids.slice(i, i + 5000))
        .execute()
      for (const r of rows)
        snaps.set(`${side}:${r.external_id}`, {
          raw: (r.raw ?? {}) as Record<string, unknown>,
          fields: r.fields as Fields,
        })
    }
  }
  for (const p of pairs) {
    const procore = snaps.get(`procore:${p.procoreId}`)
    const erp = snaps.get(`erp:${p.erpId}`)
    if (!procore || !erp) continue
    const unmet = unmetFor(type, { procore: { id: p.procoreId, ...procore }, erp: { id: p.erpId, ...erp } }, facts)
    if (unmet.length > 0) out.set(p.procoreId, unmet)
  }
  return out
}

function unmetFor(type: RecordType, pair: LinkPair, facts: LinkFacts): UnmetPrerequisite[] {
  return (Registry[type].linkPrerequisites ?? []).flatMap((pre) => {
    const detail = pre.unmet(pair, facts)
    return detail === null
      ? []
      : [{ code: pre.code, detail, fix: pre.fix, fixable: pre.procoreFix?.(pair, facts) != null }]
  })
}

/**
 * Before Procore records are created in the ERP (each then linked to its new twin), as Procore's
 * own tool does when it exports a project: the fixable link prerequisites are met on the Procore
 * record now (one partial update each), and a record whose link could never be made is refused
 * before anything is sent. `twins` are the fields each will be created with. Answers the refused,
 * Procore id → why.
 */
export async function meetPrerequisitesBeforeCreate(
  ctx: AppContext,
  companyId: string,
  type: RecordType,
  twins: ReadonlyMap<string, Fields>,
): Promise<Map<string, string>> {
  const refused = new Map<string, string>()
  if (!Registry[type].linkPrerequisites || twins.size === 0) return refused
  const facts = await refreshLinkFacts(ctx, companyId)
  const snaps = await ctx.db
    .selectFrom('record_snapshots')
    .select(['external_id', 'raw', 'fields', 'parent_id'])
    .where('company_id', '=', companyId)
    .where('type', '=', type)
    .where('side', '=', 'procore')
    .where('external_id', 'in', [...twins.keys()])
    .execute()
  for (const snap of snaps) {
    const raw = (snap.raw ?? {}) as Record<string, unknown>
    const pair: LinkPair = {
      procore: { id: snap.external_id, raw, fields: snap.fields as Fields },
      erp: { id: '(new)', raw: {}, fields: { ...twins.get(snap.external_id)!, active: true } },
    }
    const unmet = unmetFor(type, pair, facts)
    if (unmet.length === 0) continue
    if (unmet.some((u) => !u.fixable)) {
      refused.set(snap.external_id, unmet.map((u) => `${u.detail} ${u.fix}`).join(' '))
      continue
    }
    await meetOnProcore(ctx, companyId, type, pair, snap.parent_id, unmet, facts)
  }
  return refused
}

/**
 * Meets a pair's unmet, fixable prerequisites with one partial update of the Procore record (each
 * prerequisite's `procoreFix`), and keeps its snapshot: what Procore answered, and the fixes applied.
 */
async function meetOnProcore(
  ctx: AppContext,
  companyId: string,
  type: RecordType,
  pair: LinkPair,
  parentId: string | null,
  unmet: readonly UnmetPrerequisite[],
  facts: LinkFacts,
): Promise<{ after: Record<string, unknown>; fixes: LinkPrerequisite[] }> {
  const fixes = unmet.map((u) => Registry[type].linkPrerequisites!.find((p) => p.code === u.code)!)
  const body = Object.assign({}, ...fixes.map((p) => p.procoreFix!(pair, facts))) as Record<string, unknown>
  const procore = await procoreRecords(ctx, companyId)
  const after = await procore.update(type, pair.procore.id, body, parentId)
  await upsertSnapshots(ctx.db, companyId, 'procore', type, [mapRecord(type, 'procore', after)])
  return { after, fixes }
}

/** The 422 for a link whose prerequisites are not met: every one, with its code, detail and fix. */
export function prerequisitesUnmet(type: RecordType, unmet: readonly UnmetPrerequisite[]): AppError {
  const fixable = unmet.every((u) => u.fixable)
  return new AppError(
    422,
    'link_prerequisites_unmet',
    'Link prerequisites not met',
    `This ${Registry[type].noun} pair cannot be linked yet: ${unmet.map((u) => u.detail).join(' ')} ` +
      (fixable
        ? 'Each of these can be fixed through Procore: retry with fix: true, or fix them in Procore.'
        : 'Fix what `unmet` lists (see each `fix`) and retry.'),
    { unmet: unmet.map(({ code, detail, fix, fixable: f }) => ({ code, detail, fix, fixable: f })) },
  )
}

/** A Procore change made so that a link's prerequisites hold (fix: true). */
export interface PrerequisiteFix {
  code: string
  /** The Procore fields written, with the values before and after. */
  changed: Record<string, { before: unknown; after: unknown }>
}

/**
 * Meets the fixable prerequisites of one pair through Procore's API (one partial update of the
 * Procore record), refreshing its snapshot. When any unmet prerequisite is not fixable nothing is
 * changed and the 422 lists them all: a link that will be refused anyway leaves Procore as it was.
 */
export async function fixPrerequisites(
  ctx: AppContext,
  companyId: string,
  type: RecordType,
  pair: { procoreId: string; erpId: string },
): Promise<PrerequisiteFix[]> {
  if (!Registry[type].linkPrerequisites) return []
  const facts = await refreshLinkFacts(ctx, companyId)
  const unmet = (await unmetPrerequisites(ctx.db, companyId, type, [pair])).get(pair.procoreId) ?? []
  if (unmet.length === 0) return []
  if (unmet.some((u) => !u.fixable)) throw prerequisitesUnmet(type, unmet)
  const snap = await ctx.db
    .selectFrom('record_snapshots')
    .select(['raw', 'parent_id'])
    .where('company_id', '=', companyId)
    .where('type', '=', type)
    .where('side', '=', 'procore')
    .where('external_id', '=', pair.procoreId)
    .executeTakeFirstOrThrow()
  const before = (snap.raw ?? {}) as Record<string, unknown>
  const erp = await ctx.db
    .selectFrom('record_snapshots')
    .select(['raw', 'fields'])
    .where('company_id', '=', companyId)
    .where('type', '=', type)
    .where('side', '=', 'erp')
    .where('external_id', '=', pair.erpId)
    .executeTakeFirstOrThrow()
  const linkPair: LinkPair = {
    procore: { id: pair.procoreId, raw: before, fields: {} },
    erp: { id: pair.erpId, raw: (erp.raw ?? {}) as Record<string, unknown>, fields: erp.fields as Fields },
  }
  const { after, fixes } = await meetOnProcore(ctx, companyId, type, linkPair, snap.parent_id, unmet, facts)
  // What each fix changed, as Procore answers the fields the prerequisite reads.
  return fixes.map((p) => ({
    code: p.code,
    changed: Object.fromEntries(p.reads.map((f) => [f, { before: before[f] ?? null, after: after[f] ?? null }])),
  }))
}

export interface NewLink {
  procoreId: string
  erpId: string
  /** Why: "manual", "bulk link, score 0.97 (same e-mail)", "created in Procore". */
  detail: string
  /** Procore already carries the origin (records we created through origin_id). */
  originSet?: boolean
}

/**
 * Inserts links set-based in the caller's transaction; a pair whose record is already linked
 * (a concurrent link won) is skipped and reported. Audited, flags cleared, origins scheduled.
 */
export async function insertLinks(
  tx: Tx,
  companyId: string,
  type: RecordType,
  pairs: readonly NewLink[],
  actor: Actor,
): Promise<{
  /** With the row as inserted (`row`), so a caller can answer with the link without reading it again. */
  inserted: Array<{ id: string; procoreId: string; erpId: string; row: Row }>
  skipped: NewLink[]
  refused: Array<NewLink & { unmet: UnmetPrerequisite[] }>
  /** Records inside the newly linked ones that now follow them (a job's cost codes), per type. */
  dependents: Partial<Record<RecordType, number>>
}> {
  if (pairs.length === 0) return { inserted: [], skipped: [], refused: [], dependents: {} }
  // The one place every link is made: the registry's prerequisites hold, or the pair is refused.
  const unmet = await unmetPrerequisites(tx, companyId, type, pairs)
  const refused = pairs.filter((p) => unmet.has(p.procoreId)).map((p) => ({ ...p, unmet: unmet.get(p.procoreId)! }))
  pairs = pairs.filter((p) => !unmet.has(p.procoreId))
  const inserted: Array<{ id: string; procoreId: string; erpId: string; row: Row }> = []
  for (let i = 0; i < pairs.length; i += 2000) {
    // With the link, in the same statement: a linked record is no longer ignored, and whatever failed before the
    // link no longer applies.
    const rows = await tx
      .with('ins', (db) =>
        db
          .insertInto('record_links')
          .values(
            pairs.slice(i, i + 2000).map((p) => ({
              company_id: companyId,
              type,
              procore_id: p.procoreId,
              erp_id: p.erpId,
              origin_state: p.originSet ? ('set' as const) : ('pending' as const),
              origin_error: null,
              created_by: actor.id,
              unlinked_by: null,
              unlinked_at: null,
            })),
          )
          .onConflict((oc) => oc.doNothing())
          .returning(columns),
      )
      .with('flags', (db) =>
        db
          .updateTable('record_flags as f')
          .from('ins')
          .set({ ignored_at: null, ignored_by: null, failed_at: null, failed_action: null, failure: null })
          .where('f.company_id', '=', companyId)
          .where('f.type', '=', type)
          .where((eb) =>
            eb.or([
              eb.and([eb('f.side', '=', 'procore'), eb('f.external_id', '=', eb.ref('ins.procore_id'))]),
              eb.and([eb('f.side', '=', 'erp'), eb('f.external_id', '=', eb.ref('ins.erp_id'))]),
            ]),
          ),
      )
      .selectFrom('ins')
      .selectAll()
      .execute()
    inserted.push(...rows.map((r) => ({ id: r.id, procoreId: r.procore_id, erpId: r.erp_id, row: r })))
  }
  const done = new Set(inserted.map((r) => r.procoreId))
  const byProcore = new Map(pairs.map((p) => [p.procoreId, p]))
  await audit(
    tx,
    companyId,
    actor,
    inserted.map((r) => ({
      action: 'link' as const,
      type,
      procoreId: r.procoreId,
      erpId: r.erpId,
      linkId: r.id,
      after: { procoreId: r.procoreId, erpId: r.erpId },
      detail: byProcore.get(r.procoreId)?.detail ?? null,
    })),
  )
  if (inserted.some((r) => !byProcore.get(r.procoreId)?.originSet)) await scheduleOrigins(tx, companyId, type)
  const dependents = await followDependents(tx, companyId, type, inserted)
  // A newly linked project gets its job costs once its cost codes have followed, and its invoices' payments.
  if (type === 'project' && inserted.length > 0) {
    await requestJobCostsAfterLink(tx, companyId, inserted)
    await requestPaymentsAfterLink(tx, companyId)
  }
  return { inserted, skipped: pairs.filter((p) => !done.has(p.procoreId)), refused, dependents }
}

/**
 * Records inside newly linked ones that follow them (registry: parent.follows) are marked for
 * evaluation, which links each to its twin in the other parent or creates it there (evaluate.ts).
 */
async function followDependents(
  tx: Tx,
  companyId: string,
  type: RecordType,
  links: ReadonlyArray<{ procoreId: string; erpId: string }>,
): Promise<Partial<Record<RecordType, number>>> {
  const out: Partial<Record<RecordType, number>> = {}
  for (const child of dependentTypes(type)) {
    const side = Registry[child].parent?.follows
    if (!side || links.length === 0) continue
    const parents = links.map((l) => (side === 'erp' ? l.erpId : l.procoreId))
    const rows = await tx
      .selectFrom('record_snapshots')
      .select('external_id')
      .where('company_id', '=', companyId)
      .where('type', '=', child)
      .where('side', '=', side)
      .where('deleted_at', 'is', null)
      .where('parent_id', 'in', parents)
      .execute()
    await markDirty(
      tx,
      companyId,
      child,
      rows.map((r) => ({ side, externalId: r.external_id })),
    )
    out[child] = rows.length
  }
  return out
}

/**
 * Links a Procore record and an ERP record: both must be known, live, of the type and unlinked
 * (409 names the existing link). Answers the link as committed: writing the ERP id into Procore's
 * origin fields and comparing the pair are the origins job's (origin `pending` until it is `set`,
 * no discrepancy until then), so the request makes no Procore call and reads nothing after the commit.
 */
export async function createLink(
  ctx: AppContext,
  companyId: string,
  input: { type: RecordType; procoreId: string; erpId: string; fix?: boolean | undefined },
  actor: Actor,
) {
  const { type, procoreId, erpId } = input
  const def = Registry[type]
  let fixed: PrerequisiteFix[] = []
  if (def.linkPrerequisites) {
    if (input.fix) fixed = await fixPrerequisites(ctx, companyId, type, { procoreId, erpId })
    else await refreshLinkFacts(ctx, companyId)
  }
  await readFollowedChildren(ctx, companyId, type, procoreId)
  let dependents: Partial<Record<RecordType, number>> = {}
  const row = await transaction(ctx.db, async (tx) => {
    // What the checks below read, in one round trip: both live records, any active link of either, the hold.
    const found = await tx
      .selectNoFrom((eb) => [
        jsonArrayFrom(
          eb
            .selectFrom('record_snapshots')
            .select(['side', 'parent_id'])
            .where('company_id', '=', companyId)
            .where('type', '=', type)
            .where((eb) =>
              eb.or([
                eb.and([eb('side', '=', 'procore'), eb('external_id', '=', procoreId)]),
                eb.and([eb('side', '=', 'erp'), eb('external_id', '=', erpId)]),
              ]),
            )
            .where('deleted_at', 'is', null),
        ).as('snaps'),
        jsonArrayFrom(
          eb
            .selectFrom('record_links')
            .select(['id', 'procore_id', 'erp_id'])
            .where('company_id', '=', companyId)
            .where('type', '=', type)
            .where('unlinked_at', 'is', null)
            .where((eb) => eb.or([eb('procore_id', '=', procoreId), eb('erp_id', '=', erpId)])),
        ).as('existing'),
        jsonArrayFrom(heldQuery(tx, companyId, type, [procoreId])).as('held'),
      ])
      .executeTakeFirstOrThrow()
    const p = found.snaps.find((s) => s.side === 'procore')
    const e = found.snaps.find((s) => s.side === 'erp')
    const missing = [
      ...(p ? [] : [{ pointer: '/body/procoreId', message: `no live Procore ${def.noun} ${procoreId} is known` }]),
      ...(e ? [] : [{ pointer: '/body/erpId', message: `no live ERP ${def.noun} ${erpId} is known` }]),
    ]
    if (missing.length > 0) {
      throw unprocessable(
        'record_not_found',
        `Both records must exist as ${def.label}: ${missing.map((m) => m.message).join('; ')}. ` +
          'Check the ids and the type, or refresh the records ' +
          '(POST …/procore/reconcile, POST …/erp/refresh) and retry.',
        missing,
      )
    }
    if (found.existing.length > 0) throw alreadyLinked(companyId, found.existing)
    const held = found.held[0]
    if (held)
      throw conflict(
        'held_by_export',
        `Procore ${def.noun} ${procoreId} waits for an accounting approver (export request ${held.id}); ` +
          'the request links it when accepted, or retrieve or reject it first.',
      )
    if (def.parent && (p!.parent_id !== null || e!.parent_id !== null)) {
      const parentLink =
        p!.parent_id && e!.parent_id
          ? await tx
              .selectFrom('record_links')
              .select('id')
              .where('company_id', '=', companyId)
              .where('type', '=', def.parent.type)
              .where('unlinked_at', 'is', null)
              .where('procore_id', '=', p!.parent_id)
              .where('erp_id', '=', e!.parent_id)
              .executeTakeFirst()
          : undefined
      if (!parentLink) {
        throw unprocessable(
          'parents_not_linked',
          `These ${def.label} belong to different ${Registry[def.parent.type].label} ` +
            `(Procore ${p!.parent_id ?? 'none'}, ERP ${e!.parent_id ?? 'none'}) that are not linked to each other. ` +
            `Link the ${Registry[def.parent.type].noun} first, ` +
            `or pick records of linked ${Registry[def.parent.type].label}.`,
        )
      }
    }
    const result = await insertLinks(
      tx,
      companyId,
      type,
      [
        {
          procoreId,
          erpId,
          detail: fixed.length > 0 ? 'linked by hand, prerequisites fixed in Procore' : 'linked by hand',
        },
      ],
      actor,
    )
    const { inserted, skipped, refused } = result
    if (refused[0]) throw prerequisitesUnmet(type, refused[0].unmet)
    dependents = result.dependents
    if (skipped.length > 0 || !inserted[0]) {
      throw alreadyLinked(
        companyId,
        await tx
          .selectFrom('record_links')
          .select(['id', 'procore_id', 'erp_id'])
          .where('company_id', '=', companyId)
          .where('type', '=', type)
          .where('unlinked_at', 'is', null)
          .where((eb) => eb.or([eb('procore_id', '=', procoreId), eb('erp_id', '=', erpId)]))
          .execute(),
      )
    }
    // Procore's origin is written by the origins job insertLinks queued (one call, not one here too).
    return inserted[0].row
  })
  // The link as committed: origin pending, and no discrepancy until the origins job has compared the pair.
  return { link: toLink(row), etag: etagOf(row.version), fixed, dependents }
}

function alreadyLinked(companyId: string, links: Array<{ id: string; procore_id: string; erp_id: string }>): AppError {
  const l = links[0]
  const what = links.map((x) => `link ${x.id} (Procore ${x.procore_id} ↔ ERP ${x.erp_id})`).join(' and ')
  return conflict(
    'already_linked',
    `A record is already linked: ${what}. ` +
      `Unlink it first (DELETE /v1/companies/${companyId}/links/${l?.id ?? '…'}) if this pairing is wrong.`,
    {
      existingLinkId: l?.id,
      existingLinks: links.map((x) => ({ id: x.id, procoreId: x.procore_id, erpId: x.erp_id })),
    },
  )
}

/**
 * Ends a link (If-Match with its ETag): open discrepancies are dismissed, history stays, and the
 * origins job clears Procore's origin (origin `clearing` until it is `cleared`). Repeating it on an
 * ended link answers the same ended link.
 */
export async function unlink(
  ctx: AppContext,
  companyId: string,
  linkId: string,
  expectedVersion: number,
  actor: Actor,
  options: { cascade?: boolean | undefined } = {},
) {
  const ended = await transaction(ctx.db, async (tx) => {
    const row = await tx
      .selectFrom('record_links')
      .select(columns)
      .where('company_id', '=', companyId)
      .where('id', '=', linkId)
      .forUpdate()
      .executeTakeFirst()
    if (!row) throw notFound('link', linkId)
    // The version first: of racing unlinks sent with one ETag only the first wins; the rest see the
    // ended link's new version (412), and a retry with that ETag answers the ended link.
    if (row.version !== expectedVersion) throw preconditionFailed(etagOf(row.version))
    if (row.unlinked_at !== null) return undefined
    const type = row.type as RecordType
    for (const child of dependentTypes(type)) {
      const dependents = await linkedDependents(tx, companyId, child, row)
      if (dependents.length === 0) continue
      if (!options.cascade) throw hasDependents(companyId, type, child, linkId, dependents)
      await endLinks(tx, companyId, child, dependents, actor, `unlinked with its ${Registry[type].noun} (cascade)`)
    }
    // Procore's origin is cleared by the origins job endLinks queued.
    return (await endLinks(tx, companyId, type, [{ id: linkId }], actor, 'unlinked by hand'))[0]
  })
  // The link as ended (its open discrepancy dismissed); a repeat answers it as it stands.
  return ended ? { link: toLink(ended), etag: etagOf(ended.version) } : getLink(ctx.db, companyId, linkId)
}

/**
 * Before a link whose children follow from the ERP, the Procore record's own children are read
 * (a project's cost codes): Procore lists them only for ERP-integrated projects, so a project just
 * made integrated has none in its snapshots yet, and a job's cost code must be linked to the
 * project's code of the same number rather than created a second time.
 */
async function readFollowedChildren(ctx: AppContext, companyId: string, type: RecordType, procoreId: string) {
  const children = dependentTypes(type).filter((t) => Registry[t].parent?.follows === 'erp')
  if (children.length === 0) return
  const procore = await procoreRecords(ctx, companyId)
  for (const child of children) {
    for await (const page of procore.list(child, { parentId: procoreId }))
      await upsertSnapshots(
        ctx.db,
        companyId,
        'procore',
        child,
        page.map((json) => mapRecord(child, 'procore', json)),
      )
  }
}

/** Active links of `child` records inside either record of a parent link (a project's cost codes). */
async function linkedDependents(
  tx: Tx,
  companyId: string,
  child: RecordType,
  parent: { procore_id: string; erp_id: string },
): Promise<Array<{ id: string; procoreId: string; erpId: string }>> {
  const rows = await tx
    .selectFrom('record_links as l')
    .select(['l.id', 'l.procore_id', 'l.erp_id'])
    .where('l.company_id', '=', companyId)
    .where('l.type', '=', child)
    .where('l.unlinked_at', 'is', null)
    .where((eb) =>
      eb.or(
        (['procore', 'erp'] as const).map((side) =>
          eb.exists(
            eb
              .selectFrom('record_snapshots as s')
              .select('s.external_id')
              .where('s.company_id', '=', companyId)
              .where('s.type', '=', child)
              .where('s.side', '=', side)
              .whereRef('s.external_id', '=', side === 'procore' ? 'l.procore_id' : 'l.erp_id')
              .where('s.parent_id', '=', side === 'procore' ? parent.procore_id : parent.erp_id),
          ),
        ),
      ),
    )
    .orderBy('l.created_at')
    .execute()
  return rows.map((r) => ({ id: r.id, procoreId: r.procore_id, erpId: r.erp_id }))
}

function hasDependents(
  companyId: string,
  type: RecordType,
  child: RecordType,
  linkId: string,
  dependents: ReadonlyArray<{ id: string; procoreId: string; erpId: string }>,
): AppError {
  const listed = dependents.slice(0, 1000)
  return conflict(
    'has_dependents',
    `This ${Registry[type].noun} has ${dependents.length} linked ${Registry[child].label}. ` +
      `Unlink with cascade (DELETE /v1/companies/${companyId}/links/${linkId}?cascade=true) to unlink them too ` +
      '(their origin is cleared, their history kept), or unlink them first.',
    { dependents: listed.map((d) => ({ type: child, linkId: d.id, procoreId: d.procoreId, erpId: d.erpId })) },
  )
}

/**
 * Ends links in the caller's transaction (by hand, or because a record was deleted): audited, discrepancies dismissed,
 * origins to clear. Answers the ended rows (an open discrepancy no longer applies to them).
 */
export async function endLinks(
  tx: Tx,
  companyId: string,
  type: RecordType,
  links: ReadonlyArray<{ id: string }>,
  actor: Actor,
  detail: string,
): Promise<Row[]> {
  if (links.length === 0) return []
  const ids = links.map((l) => l.id)
  // One statement: the links end, their open discrepancies are dismissed.
  const rows = await tx
    .with('ended', (db) =>
      db
        .updateTable('record_links')
        .set({
          unlinked_at: new Date(),
          unlinked_by: actor.id,
          origin_state: 'clearing',
          origin_error: null,
          version: sql<number>`version + 1`,
        })
        .where('company_id', '=', companyId)
        .where('id', 'in', ids)
        .where('unlinked_at', 'is', null)
        .returning(columns),
    )
    .with('dismissed', (db) =>
      db
        .updateTable('discrepancies')
        .set({
          status: 'dismissed',
          resolved_at: new Date(),
          resolved_by: actor.id,
          updated_at: new Date(),
          version: sql<number>`version + 1`,
        })
        .where('link_id', 'in', ids)
        .where('status', '=', 'open'),
    )
    .selectFrom('ended')
    .selectAll()
    .execute()
  await audit(
    tx,
    companyId,
    actor,
    rows.map((r) => ({
      action: 'unlink' as const,
      type,
      procoreId: r.procore_id,
      erpId: r.erp_id,
      linkId: r.id,
      before: { procoreId: r.procore_id, erpId: r.erp_id },
      after: null,
      detail,
    })),
  )
  await scheduleOrigins(tx, companyId, type)
  return rows
}

/**
 * Makes sure the origins job of the company and type will run after this transaction, at its end. Links of one
 * company and type arrive together (a person working down a list, a bulk link): they join the job that is due
 * rather than each updating its row, which would make each wait for the commit of the one before.
 */
async function scheduleOrigins(tx: Tx, companyId: string, type: RecordType): Promise<void> {
  await lastInTransaction(tx, `origins:${companyId}:${type}`, () =>
    joinKeyedJob(tx, job(originsTask, { companyId, type })),
  )
}

/**
 * Makes Procore's origin_id (and origin_code, where the type has one) say what the links say:
 * the ERP id of the active link, or nothing once unlinked. Works from the links' state, not from
 * a queue of operations, so link → unlink → link in quick succession still ends right. Batched
 * through the sync endpoint (≤ 1,000 per call); returns how many Procore records it wrote.
 */
export async function processOrigins(
  ctx: AppContext,
  companyId: string,
  type: RecordType,
  procoreIds?: readonly string[],
): Promise<number> {
  const def = Registry[type]
  let written = 0
  for (;;) {
    let pending = ctx.db
      .selectFrom('record_links')
      .select(['id', 'procore_id', 'version'])
      .where('company_id', '=', companyId)
      .where('type', '=', type)
      .where(sql<boolean>`origin_state in ('pending', 'clearing')`)
      .orderBy('created_at')
      .limit(1000)
    if (procoreIds) pending = pending.where('procore_id', 'in', [...procoreIds])
    const rows = await pending.execute()
    if (rows.length === 0) return written
    const ids = [...new Set(rows.map((r) => r.procore_id))]
    const desired = await ctx.db
      .selectFrom('record_snapshots as ps')
      .leftJoin('record_links as l', (j) =>
        j
          .on('l.company_id', '=', companyId)
          .on('l.type', '=', type)
          .onRef('l.procore_id', '=', 'ps.external_id')
          .on('l.unlinked_at', 'is', null),
      )
      .leftJoin('record_snapshots as es', (j) =>
        j
          .on('es.company_id', '=', companyId)
          .on('es.type', '=', type)
          .on('es.side', '=', 'erp')
          .onRef('es.external_id', '=', 'l.erp_id'),
      )
      .select([
        'ps.external_id as procore_id',
        'ps.parent_id',
        'ps.raw',
        'ps.deleted_at',
        'l.erp_id',
        'es.fields as erp_fields',
      ])
      .where('ps.company_id', '=', companyId)
      .where('ps.type', '=', type)
      .where('ps.side', '=', 'procore')
      .where('ps.external_id', 'in', ids)
      .execute()

    type Item = { id: string; originId: string | null; originCode?: string | null; body: Record<string, unknown> }
    const groups = new Map<string | null, Item[]>()
    const noWrite: string[] = []
    for (const d of desired) {
      const raw = d.raw as Record<string, unknown>
      const code =
        def.procore.hasOriginCode && def.procore.originCodeField && d.erp_id
          ? ((d.erp_fields?.[def.procore.originCodeField] as string | null | undefined) ?? null)
          : null
      const currentOrigin =
        typeof raw.origin_id === 'string' || typeof raw.origin_id === 'number' ? String(raw.origin_id) : null
      const currentCode = def.procore.hasOriginCode ? ((raw.origin_code as string | null | undefined) ?? null) : null
      if (d.deleted_at !== null || (currentOrigin === (d.erp_id ?? null) && currentCode === code)) {
        noWrite.push(d.procore_id)
        continue
      }
      const item: Item = d.erp_id
        ? { id: d.procore_id, originId: d.erp_id, ...(def.procore.hasOriginCode ? { originCode: code } : {}), body: {} }
        : {
            id: d.procore_id,
            originId: null,
            ...(def.procore.hasOriginCode ? { originCode: null } : {}),
            body: { origin_id: null },
          }
      const list = groups.get(d.parent_id) ?? []
      list.push(item)
      groups.set(d.parent_id, list)
    }

    const done = new Set<string>(noWrite)
    const failed = new Map<string, string>()
    if (groups.size > 0) {
      const procore = await procoreRecords(ctx, companyId)
      for (const [parentId, items] of groups) {
        const results = await procore.upsertByOrigin(type, items, parentId)
        const records = results.flatMap((r, i) => {
          if (r.ok) {
            done.add(items[i]!.id)
            return [mapRecord(type, 'procore', r.record)]
          }
          failed.set(items[i]!.id, r.error)
          return []
        })
        written += records.length
        if (records.length > 0) await upsertSnapshots(ctx.db, companyId, 'procore', type, records)
      }
    }
    await transaction(ctx.db, async (tx) => {
      const settled = rows.filter((r) => done.has(r.procore_id))
      if (settled.length > 0) {
        // Only rows still at the version read: a link changed meanwhile is picked up again.
        await sql`update record_links l
          set origin_state = case when l.unlinked_at is null then 'set' else 'cleared' end, origin_error = null
          from (values ${sql.join(settled.map((r) => sql`(${r.id}::uuid, ${r.version}::int)`))}) as v(id, version)
          where l.id = v.id and l.version = v.version`.execute(tx)
        await clearFailed(
          tx,
          companyId,
          type,
          settled.map((r) => ({ side: 'procore', externalId: r.procore_id })),
          'link',
        )
      }
      const refused = rows.filter((r) => failed.has(r.procore_id))
      await flagFailed(
        tx,
        companyId,
        type,
        refused.map((r) => ({
          side: 'procore',
          externalId: r.procore_id,
          action: 'link',
          reason: `Procore refused to store the ERP id in origin_id: ${failed.get(r.procore_id)}`,
        })),
      )
      // What Procore refuses is not retried by itself: the link shows origin `failed` with the reason.
      if (refused.length > 0) {
        await sql`update record_links l set origin_state = 'failed', origin_error = v.error
          from (values ${sql.join(
            refused.map((r) => sql`(${r.id}::uuid, ${failed.get(r.procore_id)!.slice(0, 2000)}::text)`),
          )}) as v(id, error)
          where l.id = v.id`.execute(tx)
      }
      // The pairs are compared with what Procore holds now (origin_code is no discrepancy), in the
      // transaction that settles the origin: a link whose origin is no longer pending is evaluated.
      await evaluateLinks(
        tx,
        companyId,
        type,
        [...settled, ...refused].map((r) => r.id),
        originsActor,
      )
    })
    if (procoreIds || rows.length < 1000) return written
  }
}

/**
 * Drains pending origin writes for a company and type; transient failures retry. One pending
 * job per company and type (job key), one running (queue).
 */
export const originsTask = defineTask({
  name: 'sync:origins',
  payload: Type.Object({ companyId: Type.String(), type: Type.Enum([...RecordTypes]) }),
  maxAttempts: 12,
  jobKey: ({ companyId, type }) => `origins:${companyId}:${type}`,
  queueName: ({ companyId, type }) => `origins:${companyId}:${type}`,
  run: (ctx, { companyId, type }) => runOrigins(ctx, companyId, type),
})

async function runOrigins(ctx: AppContext, companyId: string, type: RecordType): Promise<void> {
  // Links that joined this job (scheduleOrigins) may still be committing: read once they have.
  await awaitJoiners(ctx.db, originsTask.jobKey!({ companyId, type }))
  try {
    await processOrigins(ctx, companyId, type)
  } catch (error) {
    if (error instanceof AppError && error.status === 409) {
      // Not connected (yet), or to be connected again: nothing to write until it is; the next link schedules
      // the job. The new pairs are compared meanwhile, as they stand.
      await evaluatePending(ctx, companyId, type)
      ctx.log.warn(
        { component: 'sync', companyId, type, err: { message: error.message } },
        'origin writes wait for a Procore connection',
      )
      return
    }
    throw error
  }
}

/** Compares the active links waiting for their origin write (Procore not connected) not compared yet. */
async function evaluatePending(ctx: AppContext, companyId: string, type: RecordType): Promise<void> {
  const pending = await ctx.db
    .selectFrom('record_links')
    .select('id')
    .where('company_id', '=', companyId)
    .where('type', '=', type)
    .where('origin_state', '=', 'pending')
    .where('unlinked_at', 'is', null)
    // One that already has a discrepancy was compared: each run does not compare them all again.
    .where((eb) =>
      eb.not(
        eb.exists(eb.selectFrom('discrepancies as d').select('d.id').whereRef('d.link_id', '=', 'record_links.id')),
      ),
    )
    .orderBy('created_at')
    .limit(1000)
    .execute()
  await transaction(ctx.db, (tx) =>
    evaluateLinks(
      tx,
      companyId,
      type,
      pending.map((r) => r.id),
      originsActor,
    ),
  )
}

/**
 * The records of the other side one record could be linked to: its ranked match suggestions, plus
 * (with `q`) unlinked records whose names or codes contain `q`; each with whether the link's
 * prerequisites hold and, where not, every unmet one. The searchable list a person picks from.
 */
export async function linkCandidates(
  ctx: AppContext,
  companyId: string,
  type: RecordType,
  side: Side,
  externalId: string,
  q: string | undefined,
  limit: number,
): Promise<LinkCandidate[]> {
  if (Registry[type].linkPrerequisites) await refreshLinkFacts(ctx, companyId)
  const suggested = await suggestionsFor(ctx.db, companyId, type, side, externalId, limit)
  const other = otherSide(side)
  const pattern = q ? `%${q.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%` : null
  const matches = (fields: Fields) =>
    pattern === null ||
    Registry[type].searchFields.some((f) => {
      const v = fields[f]
      return typeof v === 'string' && v.toLowerCase().includes(q!.toLowerCase())
    })
  const ranked: Array<Omit<LinkCandidate, 'eligible' | 'unmet'>> = suggested
    .filter((s) => matches(s.record.fields))
    .map((s) => ({ id: s.id, score: s.score, strong: s.strong, reasons: s.reasons, record: s.record }))
  if (pattern !== null && ranked.length < limit) {
    const col = other === 'procore' ? 'procore_id' : 'erp_id'
    const searched = await ctx.db
      .selectFrom('record_snapshots as s')
      .select(['s.external_id', 's.parent_id', 's.fields', 's.source_updated_at'])
      .where('s.company_id', '=', companyId)
      .where('s.type', '=', type)
      .where('s.side', '=', other)
      .where('s.deleted_at', 'is', null)
      .where((eb) =>
        eb.or(Registry[type].searchFields.map((f) => eb(sql<string>`lower(s.fields->>${f})`, 'like', pattern))),
      )
      .where((eb) =>
        eb.not(
          eb.exists(
            eb
              .selectFrom('record_links as l')
              .select('l.id')
              .where('l.company_id', '=', companyId)
              .where('l.type', '=', type)
              .where('l.unlinked_at', 'is', null)
              .whereRef(`l.${col}`, '=', 's.external_id'),
          ),
        ),
      )
      .orderBy('s.external_id')
      .limit(limit)
      .execute()
    const seen = new Set(ranked.map((r) => r.id))
    for (const r of searched) {
      if (seen.has(r.external_id) || ranked.length >= limit) continue
      ranked.push({
        id: r.external_id,
        score: 0,
        strong: false,
        reasons: [`contains "${q}"`],
        record: {
          id: r.external_id,
          parentId: r.parent_id,
          fields: r.fields as Fields,
          updatedAt: r.source_updated_at?.toISOString() ?? null,
          deleted: false,
        },
      })
    }
  }
  const pairs = ranked.map((r) =>
    side === 'procore' ? { procoreId: externalId, erpId: r.id } : { procoreId: r.id, erpId: externalId },
  )
  const unmet = new Map<string, UnmetPrerequisite[]>()
  for (const p of pairs) {
    const found = (await unmetPrerequisites(ctx.db, companyId, type, [p])).get(p.procoreId)
    if (found) unmet.set(side === 'procore' ? p.erpId : p.procoreId, found)
  }
  return ranked.map((r) => {
    const u = unmet.get(r.id) ?? []
    return { ...r, eligible: u.length === 0, unmet: u }
  })
}
