// The one ingest engine: how records of either side reach their snapshots. A listing (Procore
// reconcile, ERP refresh) pages through a side into snapshots and finds what vanished; an event
// (a Procore webhook, an ERP notification) says one record changed, and it is re-read. Both sides
// go through the same code; what differs between them is what their reader can do.
import { sql } from 'kysely'
import type { AppContext } from '../context.js'
import { transaction, type Db, type Tx } from '../db/database.js'
import type { Side } from '../db/tables/records.js'
import { hasConnection } from '../erp/connections.js'
import { ErpNotConnectedError } from '../erp/errors.js'
import { AppError, isRetryable } from '../errors.js'
import { enqueue } from '../jobs/queue.js'
import {
  createRun,
  RunCancelled,
  RunPayload,
  runJob,
  type JobRun,
  type RunParams,
  type RunResult,
} from '../jobs/runs.js'
import { defineTask } from '../jobs/task.js'
import { connectedCompany } from '../procore/connect.js'
import { procoreHttp } from '../procore/http.js'
import { ID_BATCH, ProcoreApi } from '../procore/resources.js'
import { failureMessage } from './connectors.js'
import { entity, procoreResource, RecordTypes, type Mapped, type RecordType } from './registry.js'
import { getRun, RunKinds, toRun, type IngestScope, type Run, type TypeTally } from './runs.js'
import { erpRecords, procoreRecords, type Json } from './sides.js'
import { dbNow, getSnapshot, markDeleted, upsertSnapshots } from './snapshots.js'

/** What the engine needs of a side. */
interface SideReader {
  get(type: RecordType, id: string, parentId: string | null): Promise<Json | null>
  /** Many records by id in one request (at most ID_BATCH), where the side can: those it found. */
  getMany?(type: RecordType, ids: readonly string[]): Promise<Json[]> | undefined
  list(type: RecordType, options: { parentId: string | null; updatedSince?: Date | undefined }): AsyncGenerator<Json[]>
  /** Whether a listing of this type (under a parent or not) can be narrowed to what changed since a time. */
  incremental(type: RecordType, parentId: string | null): boolean
  /** Why this side does not serve the listing, when it does not (nothing of it is then read or judged gone). */
  unserved(type: RecordType, underParent: boolean): string | undefined
  /** Whether a record of a type with a parent can only be read with its parent's id. */
  readsByParent: boolean
}

async function readerFor(ctx: AppContext, side: Side, companyId: string): Promise<SideReader> {
  if (side === 'procore') {
    const records = await procoreRecords(ctx, companyId)
    return {
      get: (type, id, parentId) => records.get(type, id, parentId),
      getMany: (type, ids) => records.getMany(type, ids, null),
      list: (type, options) => records.list(type, options),
      incremental: (type, parentId) => ProcoreApi.supportsUpdatedSince(procoreResource(type, parentId)),
      unserved: () => undefined,
      readsByParent: true,
    }
  }
  const records = await erpRecords(ctx, companyId)
  return {
    get: (type, id) => records.get(type, id),
    list: (type, { parentId, updatedSince }) =>
      records.list(type, { updatedSince, ...(parentId === null ? {} : { jobId: parentId }) }),
    incremental: () => true,
    // Records under a parent are listed per parent (job cost codes per job): the agent must serve both lists.
    unserved: (type, underParent) => {
      const needed = underParent ? ['job-cost-codes', 'jobs'] : [entity(type).erp.resource]
      const missing = needed.find((r) => !records.serves(r))
      return missing === undefined ? undefined : `the agent does not serve ${missing}`
    },
    readsByParent: false,
  }
}

// ---- one record ------------------------------------------------------------------------------

/**
 * Re-reads one record and upserts its snapshot; a 404 marks it deleted. `parentId` undefined:
 * the snapshot remembers it. Returns `skipped` when nothing changed.
 */
export async function ingestRecord(
  ctx: AppContext,
  side: Side,
  companyId: string,
  type: RecordType,
  id: string,
  parentId?: string | null,
): Promise<'processed' | 'skipped'> {
  return ingestOne(ctx, await readerFor(ctx, side, companyId), side, companyId, type, id, parentId)
}

async function ingestOne(
  ctx: AppContext,
  reader: SideReader,
  side: Side,
  companyId: string,
  type: RecordType,
  id: string,
  parentId?: string | null,
): Promise<'processed' | 'skipped'> {
  let parent = parentId ?? null
  if (parentId === undefined && entity(type).parent) {
    const snapshot = await getSnapshot(ctx.db, companyId, side, type, id)
    if (!snapshot && reader.readsByParent) {
      throw new Error(
        `${entity(type).noun} ${id}: nothing names its ${entity(type).parent?.type} ` +
          'and no snapshot remembers one; it cannot be read',
      )
    }
    parent = snapshot?.parent_id ?? null
  }
  const json = await reader.get(type, id, parent)
  if (json === null) {
    const gone = await markDeleted(ctx.db, companyId, side, type, [id])
    return gone.length > 0 ? 'processed' : 'skipped'
  }
  const [change] = await upsertSnapshots(ctx.db, companyId, side, type, [
    { ...entity(type)[side].from(json), raw: json },
  ])
  return change?.change === 'created' || change?.change === 'changed' ? 'processed' : 'skipped'
}

/** What re-reading one record of a batch came to: as `ingestRecord`, or the error that stopped it. */
export type IngestOutcome = 'processed' | 'skipped' | { error: unknown }

/** Requests one `ingestRecords` call made to the side: lists by id and single reads. */
export interface IngestCalls {
  lists: number
  gets: number
}

/**
 * Re-reads many records of one type of one side (the events of a drained inbox) and upserts their
 * snapshots in one write. Where the side reads many by id in one request (Procore lists taking
 * `filters[id][]`, records without a parent), `ID_BATCH` records cost one request; a record missing
 * from that answer is read alone, since only a single read tells deleted (404) from inactive or out of
 * reach. The others are read one by one, `concurrency` at a time. A failure is that record's outcome
 * (or its batch's), never the others'.
 */
export async function ingestRecords(
  ctx: AppContext,
  side: Side,
  companyId: string,
  type: RecordType,
  items: ReadonlyArray<{ id: string; parentId?: string | null | undefined }>,
  options: { concurrency?: number; calls?: IngestCalls } = {},
): Promise<Map<string, IngestOutcome>> {
  const outcomes = new Map<string, IngestOutcome>()
  const calls = options.calls ?? { lists: 0, gets: 0 }
  let reader: SideReader
  try {
    reader = await readerFor(ctx, side, companyId)
  } catch (error) {
    for (const item of items) outcomes.set(item.id, { error })
    return outcomes
  }
  const def = entity(type)[side]
  const found: Array<Mapped & { raw: Json }> = []
  const gone: string[] = []
  const single: Array<{ id: string; parentId?: string | null | undefined }> = []
  // A record read by itself is worth no batch: one request either way, and a 404 says what an absence cannot.
  const batched = !entity(type).parent && items.length > 1 ? items : []
  if (batched.length === 0) single.push(...items)
  const chunks: string[][] = []
  for (let i = 0; i < batched.length; i += ID_BATCH) chunks.push(batched.slice(i, i + ID_BATCH).map((x) => x.id))
  await inParallel(chunks, options.concurrency ?? 1, async (ids) => {
    let listed: Json[]
    try {
      const request = reader.getMany?.(type, ids)
      if (request === undefined) {
        single.push(...ids.map((id) => ({ id, parentId: null })))
        return
      }
      calls.lists++
      listed = await request
    } catch (error) {
      for (const id of ids) outcomes.set(id, { error })
      return
    }
    const byId = new Map(listed.map((json) => [String(json.id), json]))
    for (const id of ids) {
      const json = byId.get(id)
      if (json === undefined) single.push({ id, parentId: null })
      else found.push({ ...def.from(json), raw: json })
    }
  })
  await inParallel(single, options.concurrency ?? 1, async ({ id, parentId }) => {
    try {
      let parent = parentId ?? null
      if (parentId === undefined && entity(type).parent) {
        const snapshot = await getSnapshot(ctx.db, companyId, side, type, id)
        if (!snapshot && reader.readsByParent) {
          throw new Error(
            `${entity(type).noun} ${id}: nothing names its ${entity(type).parent?.type} ` +
              'and no snapshot remembers one; it cannot be read',
          )
        }
        parent = snapshot?.parent_id ?? null
      }
      calls.gets++
      const json = await reader.get(type, id, parent)
      if (json === null) gone.push(id)
      else found.push({ ...def.from(json), raw: json })
    } catch (error) {
      outcomes.set(id, { error })
    }
  })
  try {
    const deleted = new Set(await markDeleted(ctx.db, companyId, side, type, gone))
    for (const id of gone) outcomes.set(id, deleted.has(id) ? 'processed' : 'skipped')
    for (const change of await upsertSnapshots(ctx.db, companyId, side, type, found))
      outcomes.set(
        change.externalId,
        change.change === 'created' || change.change === 'changed' ? 'processed' : 'skipped',
      )
  } catch (error) {
    for (const id of [...gone, ...found.map((f) => f.externalId)]) outcomes.set(id, { error })
  }
  return outcomes
}

/** Runs `work` over the items, at most `limit` at a time. */
async function inParallel<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const lane = async () => {
    while (next < items.length) await work(items[next++]!)
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane))
}

// ---- listings ----------------------------------------------------------------------------------

const emptyTally = (mode: TypeTally['mode']): TypeTally => ({
  status: 'succeeded',
  mode,
  listed: 0,
  pages: 0,
  created: 0,
  changed: 0,
  unchanged: 0,
  stale: 0,
  deleted: 0,
  checked: 0,
})

/**
 * Lists one record type of one side into snapshots: the company-level list and, for types with
 * a parent in the registry, the list under each known parent. A listing since `since` reads what
 * changed; a full one also re-reads every snapshot it did not show, and marks deleted those the
 * side answers 404 for (a record can slip between pages while a list shifts).
 */
async function ingestType(
  ctx: AppContext,
  reader: SideReader,
  side: Side,
  companyId: string,
  type: RecordType,
  since: Date | undefined,
  full: boolean,
  progress: () => Promise<void>,
  scope: IngestScope | undefined,
): Promise<TypeTally> {
  // Where this side lists the type (registry parent.lists): only under parents, only company-wide, or both.
  const lists = entity(type).parent?.lists?.[side]
  const unserved = scope === 'project' && lists !== 'company' ? undefined : reader.unserved(type, false)
  if (unserved !== undefined) return { ...emptyTally('full'), status: 'skipped', reason: unserved }
  const tally = emptyTally(since !== undefined && reader.incremental(type, null) ? 'incremental' : 'full')
  const parents =
    scope === 'company' || lists === 'company'
      ? undefined
      : await followedParents(ctx.db, reader, side, companyId, type, full)
  if (parents !== undefined) tally.parents = 0
  // A project-level run lists only under parents; a company-level one only the company's own list.
  const scopes =
    lists === 'company'
      ? [null]
      : scope === 'project' || lists === 'parent'
        ? (parents ?? [])
        : [null, ...(parents ?? [])]
  for (const parentId of scopes) {
    await ingestScope(ctx, reader, side, companyId, type, parentId, since, tally, progress)
    if (parentId !== null) tally.parents = (tally.parents ?? 0) + 1
  }
  if (parents !== undefined) tally.deleted += await orphansDeleted(ctx.db, side, companyId, type)
  return tally
}

/**
 * Records inside a deleted parent (a deleted job's cost codes) are deleted with it: the parent's
 * list is no longer read, so nothing else would ever notice.
 */
async function orphansDeleted(db: Db, side: Side, companyId: string, type: RecordType): Promise<number> {
  const parent = entity(type).parent
  if (!parent) return 0
  const orphans = await db
    .selectFrom('record_snapshots as c')
    .innerJoin('record_snapshots as p', (j) =>
      j
        .onRef('p.company_id', '=', 'c.company_id')
        .onRef('p.side', '=', 'c.side')
        .on('p.type', '=', parent.type)
        .onRef('p.external_id', '=', 'c.parent_id'),
    )
    .select('c.external_id')
    .where('c.company_id', '=', companyId)
    .where('c.side', '=', side)
    .where('c.type', '=', type)
    .where('c.deleted_at', 'is', null)
    .where('p.deleted_at', 'is not', null)
    .execute()
  let deleted = 0
  for (let i = 0; i < orphans.length; i += 500)
    deleted += (
      await markDeleted(
        db,
        companyId,
        side,
        type,
        orphans.slice(i, i + 500).map((o) => o.external_id),
      )
    ).length
  return deleted
}

async function ingestScope(
  ctx: AppContext,
  reader: SideReader,
  side: Side,
  companyId: string,
  type: RecordType,
  parentId: string | null,
  since: Date | undefined,
  tally: TypeTally,
  progress: () => Promise<void>,
): Promise<void> {
  const incremental = since !== undefined && reader.incremental(type, parentId)
  // The database's clock, as `seen_at` is set by it: no skew between this process and PostgreSQL.
  const listingStartedAt = await dbNow(ctx.db)
  const store = async (records: Array<Mapped & { raw: Json }>) => {
    for (const change of await upsertSnapshots(ctx.db, companyId, side, type, newestOf(records))) tally[change.change]++
  }
  const def = entity(type)[side]
  for await (const page of reader.list(type, { parentId, ...(incremental ? { updatedSince: since } : {}) })) {
    tally.listed += page.length
    tally.pages++
    await store(page.map((json) => ({ ...def.from(json), raw: json })))
    await progress()
  }
  if (incremental) return

  let unseen = ctx.db
    .selectFrom('record_snapshots')
    .select('external_id')
    .where('company_id', '=', companyId)
    .where('side', '=', side)
    .where('type', '=', type)
    .where('deleted_at', 'is', null)
    .where('seen_at', '<', listingStartedAt)
  unseen = parentId === null ? unseen.where('parent_id', 'is', null) : unseen.where('parent_id', '=', parentId)
  // Read one by one, written in batches: one transaction per 500 records, not one per record.
  let gone: string[] = []
  let found: Array<Mapped & { raw: Json }> = []
  const flush = async () => {
    tally.deleted += (await markDeleted(ctx.db, companyId, side, type, gone)).length
    await store(found)
    gone = []
    found = []
  }
  for (const { external_id: id } of await unseen.execute()) {
    tally.checked++
    const json = await reader.get(type, id, parentId)
    if (json === null) gone.push(id)
    else found.push({ ...def.from(json), raw: json })
    if (gone.length + found.length >= 500) await flush()
  }
  await flush()
}

/** A record listed twice in one page (it changed mid-walk) keeps its newest state. */
function newestOf<R extends { externalId: string; raw: Json }>(records: R[]): R[] {
  const newest = new Map<string, R>()
  const version = (r: R) => (typeof r.raw.version === 'number' ? r.raw.version : -Infinity)
  for (const record of records) {
    const known = newest.get(record.externalId)
    if (known === undefined || version(record) >= version(known)) newest.set(record.externalId, record)
  }
  return [...newest.values()]
}

/**
 * The parents whose lists of this type are read, from the registry's parent relation and this
 * side's snapshots of the parent type; undefined when the type has no parent or the side does not
 * serve lists under one. Only a run asked to be full follows every parent; the others follow the
 * parents the registry marks followed.
 */
async function followedParents(
  db: Db,
  reader: SideReader,
  side: Side,
  companyId: string,
  type: RecordType,
  full: boolean,
): Promise<string[] | undefined> {
  const parent = entity(type).parent
  if (!parent || reader.unserved(type, true) !== undefined) return undefined
  let query = db
    .selectFrom('record_snapshots')
    .select('external_id')
    .where('company_id', '=', companyId)
    .where('side', '=', side)
    .where('type', '=', parent.type)
    .where('deleted_at', 'is', null)
  const flag = parent.followedIf?.[side]
  if (!full && flag !== undefined) query = query.where(sql<boolean>`raw->>${flag} = 'true'`)
  return (await query.orderBy('external_id').execute()).map((r) => r.external_id)
}

// ---- runs ------------------------------------------------------------------------------------

export const IngestKinds = {
  procore: RunKinds.procore_reconcile.name,
  erp: RunKinds.erp_refresh.name,
} as const satisfies Record<Side, string>
export const IngestTasks = { procore: 'procore-reconcile', erp: 'erp-refresh' } as const satisfies Record<Side, string>
/** Listings run in this many serial lanes per side, so they never take every worker from webhook processing. */
const LANES = 2
/** The other side's clock is not ours: incremental listings overlap the previous run by this much. */
const OVERLAP_MS = 10 * 60_000
const MAX_ATTEMPTS = 5

export type IngestParams = RunParams<typeof RunKinds.procore_reconcile>

/**
 * Queues a listing run of one side (or returns the one already queued, widened to cover this
 * request): the run row and its job commit together. A company's listings of one side run one
 * at a time (a job key for the pending one, a serial lane for the running one).
 */
export async function requestIngest(
  db: Db,
  side: Side,
  companyId: string,
  params: IngestParams,
  requestedBy: string,
): Promise<Run> {
  return transaction(db, async (tx) => (await requestIngestInTx(tx, side, companyId, params, requestedBy)).run)
}

/** Who asked for a listing: the sync type of the schedule it serves (one unfinished run each) and the trigger. */
export interface IngestOrigin {
  syncType?: string
  trigger?: string
}

/**
 * requestIngest in the caller's transaction. A run for a sync type is never merged: while one is queued or
 * running, that one is returned with `created: false`.
 */
export async function requestIngestInTx(
  tx: Tx,
  side: Side,
  companyId: string,
  params: IngestParams,
  requestedBy: string,
  origin: IngestOrigin = {},
): Promise<{ run: Run; created: boolean }> {
  const kind = IngestKinds[side]
  await sql`select pg_advisory_xact_lock(hashtext(${`${kind}:${companyId}`}))`.execute(tx)
  if (origin.syncType !== undefined) {
    const active = await tx
      .selectFrom('sync_runs')
      .selectAll()
      .where('company_id', '=', companyId)
      .where('sync_type', '=', origin.syncType)
      .where('status', 'in', ['queued', 'running'])
      .executeTakeFirst()
    if (active) return { run: toRun(active), created: false }
    const run = await createRun(tx, RunKinds[kind], companyId, { ...params }, requestedBy, origin)
    await enqueue(
      tx,
      ingestTasks[side],
      { companyId, runId: run.id },
      { jobKey: `${IngestTasks[side]}:${companyId}:${origin.syncType}` },
    )
    return { run: toRun(run), created: true }
  }
  const queued = await tx
    .selectFrom('sync_runs')
    .select(['id', 'params'])
    .where('company_id', '=', companyId)
    .where('kind', '=', kind)
    .where('sync_type', 'is', null)
    .where('status', '=', 'queued')
    .orderBy('created_at', 'desc')
    .executeTakeFirst()
  if (queued) {
    const before = queued.params as Partial<IngestParams>
    const merged: IngestParams = {
      full: before.full === true || params.full,
      types: RecordTypes.filter((t) => params.types.includes(t) || before.types?.includes(t)),
      // Two scopes merged cover both: no scope.
      ...(before.scope !== undefined && before.scope === params.scope ? { scope: params.scope } : {}),
    }
    await tx
      .updateTable('sync_runs')
      .set({ params: JSON.stringify(merged) })
      .where('id', '=', queued.id)
      .execute()
    return { run: await getRun(tx, companyId, queued.id), created: false }
  }
  const run = await createRun(tx, RunKinds[kind], companyId, { ...params }, requestedBy, origin)
  await enqueue(tx, ingestTasks[side], { companyId, runId: run.id })
  return { run: toRun(run), created: true }
}

/** `POST …/procore/reconcile`: 404 without the company, 409 without a working Procore connection. */
export async function requestReconcile(
  ctx: AppContext,
  companyId: string,
  options: { full?: boolean; types?: RecordType[] },
  requestedBy: string,
) {
  await connectedCompany(ctx, companyId)
  const types = options.types?.length ? options.types : [...RecordTypes]
  return requestIngest(ctx.db, 'procore', companyId, { full: options.full ?? false, types }, requestedBy)
}

/** `POST …/erp/refresh`: a full listing of one type or all; 404 without an ERP connection. */
export async function requestRefresh(
  ctx: AppContext,
  companyId: string,
  type: RecordType | undefined,
  requestedBy: string,
) {
  if (!(await hasConnection(ctx.db, companyId))) throw new ErpNotConnectedError(companyId)
  return requestIngest(
    ctx.db,
    'erp',
    companyId,
    { full: true, types: type === undefined ? [...RecordTypes] : [type] },
    requestedBy,
  )
}

type IngestKind = (typeof RunKinds)[(typeof IngestKinds)[Side]]

/**
 * Performs a listing run: each requested type in registry order (parents before children). A
 * failure the side may get over (network, 429, 5xx) interrupts the run, which the job retries with
 * backoff; any other failure ends that type, and the run goes on with the next.
 */
async function ingest(ctx: AppContext, side: Side, run: JobRun<IngestKind>): Promise<RunResult<IngestKind>> {
  const { companyId, params } = run
  const types = RecordTypes.filter((t) => params.types.includes(t))
  const tallies: Partial<Record<RecordType, TypeTally>> = {}
  const counted = () => ({
    types: tallies,
    progress: { done: Object.keys(tallies).length, total: types.length },
    apiCalls: apiCalls(side, tallies),
  })
  run.onFailure(() => counted())
  let reported = 0
  const progress = async (force = false) => {
    // Every page is a safe point: a cancelled run stops here, with what it stored so far.
    await run.checkCancelled()
    if (!force && Date.now() - reported < 1000) return
    reported = Date.now()
    await run.progress(counted())
    if (side === 'procore') await observeProcoreBudget(ctx, companyId)
  }
  const reader = await readerFor(ctx, side, companyId)
  const since = params.full ? undefined : await watermark(ctx.db, side, companyId, run.id)
  for (const type of types) {
    try {
      tallies[type] = await ingestType(ctx, reader, side, companyId, type, since, params.full, progress, params.scope)
    } catch (error) {
      if (error instanceof RunCancelled) throw error
      if (isRetryable(error) && !run.job.lastAttempt) throw error
      const skipped = error instanceof AppError && error.code === 'procore_no_erp_cost_code_list'
      const status = skipped ? 'skipped' : 'failed'
      tallies[type] = { ...emptyTally(since ? 'incremental' : 'full'), status, reason: failureMessage(error) }
      if (!skipped) run.log.warn({ type, err: { message: failureMessage(error) } }, 'listing a record type failed')
    }
    await progress(true)
  }
  const failed = Object.entries(tallies).filter(([, o]) => o.status === 'failed')
  // A type that failed fails the run, with what every type did.
  if (failed.length > 0) throw new Error(failed.map(([t, o]) => `${t}: ${o.reason ?? 'failed'}`).join('; '))
  if (side === 'procore') await observeProcoreBudget(ctx, companyId)
  run.log.info({ types: tallies }, 'listing done')
  return { ...counted(), since: since?.toISOString() ?? null }
}

/** Requests a listing made, from its own tallies: one per page listed and one per record re-read alone. */
function apiCalls(side: Side, tallies: Partial<Record<RecordType, TypeTally>>): Record<Side, number> {
  const calls = Object.values(tallies).reduce((n, t) => n + t.pages + t.checked, 0)
  return { procore: side === 'procore' ? calls : 0, erp: side === 'erp' ? calls : 0 }
}

/**
 * Stores the Procore rate-limit budget this process last saw for the company (X-Rate-Limit-Remaining and
 * X-Rate-Limit-Reset of its latest response), so the scheduler of any instance can defer a Procore listing.
 */
async function observeProcoreBudget(ctx: AppContext, companyId: string): Promise<void> {
  const budget = procoreHttp(ctx).api.rateBudget(companyId)
  if (budget === undefined) return
  const values = { remaining: budget.remaining, reset_at: new Date(budget.resetAt), observed_at: new Date() }
  await ctx.db
    .insertInto('procore_rate_observations')
    .values({ company_id: companyId, ...values })
    .onConflict((oc) => oc.column('company_id').doUpdateSet(values))
    .execute()
}

/**
 * Where the last successful run of this side and sync type started, minus the overlap; none means a full
 * listing. Per sync type: the vendor list's watermark is not moved by a run that listed other types.
 */
async function watermark(db: Db, side: Side, companyId: string, runId: string): Promise<Date | undefined> {
  const last = await db
    .selectFrom('sync_runs')
    .select('started_at')
    .where('company_id', '=', companyId)
    .where('kind', '=', IngestKinds[side])
    .where('status', '=', 'succeeded')
    .where(sql<boolean>`sync_type is not distinct from (select r.sync_type from sync_runs r where r.id = ${runId})`)
    .where('id', '!=', runId)
    .where('started_at', 'is not', null)
    .orderBy('started_at', 'desc')
    .executeTakeFirst()
  return last?.started_at ? new Date(last.started_at.getTime() - OVERLAP_MS) : undefined
}

/** Performs a listing run of one side. */
const ingestTask = (side: Side) =>
  defineTask({
    name: IngestTasks[side],
    payload: RunPayload,
    maxAttempts: MAX_ATTEMPTS,
    // One pending run per company and side (job key), one running in each serial lane.
    jobKey: ({ companyId }) => `${IngestTasks[side]}:${companyId}`,
    jobKeyMode: 'preserve_run_at',
    queueName: ({ companyId }) => `${IngestTasks[side]}-${BigInt(companyId) % BigInt(LANES)}`,
    run: (ctx, { runId }, job) => runJob(ctx, RunKinds[IngestKinds[side]], runId, job, (run) => ingest(ctx, side, run)),
  })

export const ingestTasks = { procore: ingestTask('procore'), erp: ingestTask('erp') } as const
