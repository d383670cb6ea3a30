import { sql } from 'kysely'
import type { Task, TaskList } from 'graphile-worker'
import type { AppContext } from '../context.js'
import { transaction, type Db } from '../db/database.js'
import { AppError } from '../errors.js'
import { enqueue } from '../jobs/queue.js'
import { entity, RecordTypes, type Mapped, type RecordType } from '../sync/registry.js'
import { createRun, finishRun, getRun, startRun, updateRunResult, type Run } from '../sync/runs.js'
import type { Json, ProcoreRecords } from '../sync/sides.js'
import { dbNow, markDeleted, upsertSnapshots } from '../sync/snapshots.js'
import { procoreRecords } from './records.js'
import { ProcoreApi } from './resources.js'

export const RECONCILE_KIND = 'procore_reconcile'
export const RECONCILE_TASK = 'procore-reconcile'
export const RECONCILE_ALL_TASK = 'procore-reconcile-all'
/** Hourly, once per tick across all instances; the task fans out one run per connected company. */
export const RECONCILE_CRONTAB = `0 * * * * ${RECONCILE_ALL_TASK} ?max=1`
/** Reconciliations run in this many serial lanes, so they never take every worker from webhook processing. */
const LANES = 2
/** Procore's clock is not ours: incremental listings overlap the previous run by this much. */
const OVERLAP_MS = 10 * 60_000

export interface ReconcileParams {
  /** Re-list everything (and find deletions) instead of what changed since the last successful run. */
  full: boolean
  types: RecordType[]
}

interface TypeOutcome {
  status: 'succeeded' | 'failed' | 'skipped'
  mode: 'full' | 'incremental'
  listed: number
  created: number
  changed: number
  deleted: number
  checked: number
  reason?: string
}

/**
 * Queues a reconciliation run (or returns the one already queued, widened to cover this request):
 * the run row and its job commit together. One company's runs execute one at a time (a job key
 * for the pending one, a serial queue lane for the running one).
 */
export async function requestReconcile(db: Db, companyId: string, params: ReconcileParams, requestedBy: string): Promise<Run> {
  return transaction(db, async (tx) => {
    await sql`select pg_advisory_xact_lock(hashtext(${`procore-reconcile:${companyId}`}))`.execute(tx)
    const queued = await tx.selectFrom('sync_runs').select(['id', 'params']).where('company_id', '=', companyId).where('kind', '=', RECONCILE_KIND)
      .where('status', '=', 'queued').orderBy('created_at', 'desc').executeTakeFirst()
    if (queued) {
      const before = queued.params as Partial<ReconcileParams>
      const merged: ReconcileParams = { full: before.full === true || params.full, types: RecordTypes.filter((t) => params.types.includes(t) || before.types?.includes(t)) }
      await tx.updateTable('sync_runs').set({ params: JSON.stringify(merged) }).where('id', '=', queued.id).execute()
      return getRun(tx, companyId, queued.id)
    }
    const run = await createRun(tx, companyId, RECONCILE_KIND, { ...params }, requestedBy)
    await enqueue(tx, RECONCILE_TASK, { companyId, runId: run.id }, {
      jobKey: `procore-reconcile:${companyId}`,
      jobKeyMode: 'preserve_run_at',
      queueName: `procore-reconcile-${BigInt(companyId) % BigInt(LANES)}`,
      maxAttempts: 3,
    })
    return run
  })
}

/**
 * Re-lists each record type from Procore and updates the snapshots, so a change whose webhook
 * was lost is still caught. Types with `filters[updated_at]` list only what changed since the
 * last successful run; departments and cost codes (no such filter) are always listed in full, and
 * a full listing also finds deletions: a snapshot not seen is re-read, and 404 marks it deleted.
 */
export async function reconcile(ctx: AppContext, companyId: string, runId: string): Promise<void> {
  const run = await getRun(ctx.db, companyId, runId)
  if (run.status === 'succeeded' || run.status === 'failed') return // a re-run after a crash that came after the end
  await startRun(ctx.db, runId)
  const params = run.params as Partial<ReconcileParams>
  const types = RecordTypes.filter((t) => params.types?.includes(t) ?? true)
  const log = ctx.log.child({ component: 'procore', companyId, runId })
  const outcomes: Record<string, TypeOutcome> = {}
  try {
    const records = await procoreRecords(ctx, companyId)
    const since = params.full === true ? undefined : await watermark(ctx.db, companyId, runId)
    for (const type of types) {
      const scopes: Array<string | null> = type === 'cost_code' ? [null, ...await projectsWithCostCodes(ctx.db, companyId, params.full === true)] : [null]
      for (const parentId of scopes) {
        const label = parentId === null ? type : `${type}:${parentId}`
        try {
          outcomes[label] = await reconcileType(ctx, records, companyId, type, parentId, since)
        } catch (error) {
          const skipped = error instanceof AppError && error.code === 'procore_no_erp_cost_code_list'
          outcomes[label] = { status: skipped ? 'skipped' : 'failed', mode: since ? 'incremental' : 'full', listed: 0, created: 0, changed: 0, deleted: 0, checked: 0, reason: (error as Error).message.slice(0, 500) }
          if (!skipped) log.warn({ type: label, err: { message: (error as Error).message } }, 'reconciling a record type failed')
        }
        await updateRunResult(ctx.db, runId, { types: outcomes })
      }
    }
    const failed = Object.entries(outcomes).filter(([, o]) => o.status === 'failed')
    await finishRun(ctx.db, runId, failed.length === 0
      ? { status: 'succeeded', result: { types: outcomes, since: since?.toISOString() ?? null } }
      : { status: 'failed', result: { types: outcomes }, error: failed.map(([t, o]) => `${t}: ${o.reason ?? 'failed'}`).join('; ').slice(0, 2000) })
  } catch (error) {
    await finishRun(ctx.db, runId, { status: 'failed', result: { types: outcomes }, error: (error as Error).message.slice(0, 2000) })
  }
}

async function reconcileType(ctx: AppContext, records: ProcoreRecords, companyId: string, type: RecordType, parentId: string | null, since: Date | undefined): Promise<TypeOutcome> {
  const incremental = since !== undefined && ProcoreApi.supportsUpdatedSince(type, parentId)
  const outcome: TypeOutcome = { status: 'succeeded', mode: incremental ? 'incremental' : 'full', listed: 0, created: 0, changed: 0, deleted: 0, checked: 0 }
  const def = entity(type)
  const listingStartedAt = await dbNow(ctx.db)
  for await (const page of records.list(type, { parentId, ...(incremental ? { updatedSince: since } : {}) })) {
    outcome.listed += page.length
    const changes = await upsertSnapshots(ctx.db, companyId, 'procore', type, page.map((json) => ({ ...def.procore.from(json), raw: json })))
    for (const c of changes) {
      if (c.change === 'created') outcome.created++
      else if (c.change === 'changed') outcome.changed++
    }
  }
  if (incremental) return outcome

  // Whatever the full listing did not show is re-read one by one: a record can slip between
  // pages while Procore's list shifts, and only a 404 proves a deletion.
  let unseenQuery = ctx.db.selectFrom('record_snapshots').select('external_id')
    .where('company_id', '=', companyId).where('side', '=', 'procore').where('type', '=', type)
    .where('deleted_at', 'is', null).where('seen_at', '<', listingStartedAt)
  unseenQuery = parentId === null ? unseenQuery.where('parent_id', 'is', null) : unseenQuery.where('parent_id', '=', parentId)
  // Read one by one, written in batches: one transaction per 500 records, not one per record.
  let gone: string[] = []
  let found: Array<Mapped & { raw: Json }> = []
  const flush = async () => {
    outcome.deleted += (await markDeleted(ctx.db, companyId, 'procore', type, gone)).length
    await upsertSnapshots(ctx.db, companyId, 'procore', type, found)
    gone = []
    found = []
  }
  for (const { external_id: id } of await unseenQuery.execute()) {
    outcome.checked++
    const json = await records.get(type, id, parentId)
    if (json === null) gone.push(id)
    else found.push({ ...def.procore.from(json), raw: json })
    if (gone.length + found.length >= 500) await flush()
  }
  await flush()
  return outcome
}

/** Where the last successful run started, minus the overlap; none means a full listing. */
async function watermark(db: Db, companyId: string, runId: string): Promise<Date | undefined> {
  const last = await db.selectFrom('sync_runs').select('started_at').where('company_id', '=', companyId).where('kind', '=', RECONCILE_KIND)
    .where('status', '=', 'succeeded').where('id', '!=', runId).where('started_at', 'is not', null).orderBy('started_at', 'desc').executeTakeFirst()
  return last?.started_at ? new Date(last.started_at.getTime() - OVERLAP_MS) : undefined
}

/**
 * Projects whose cost codes we follow: the ERP-integrated ones (their codes follow the linked
 * job), or every known project on a full run. Procore has no updated_at filter for cost codes.
 */
async function projectsWithCostCodes(db: Db, companyId: string, all: boolean): Promise<string[]> {
  let query = db.selectFrom('record_snapshots').select('external_id')
    .where('company_id', '=', companyId).where('side', '=', 'procore').where('type', '=', 'project').where('deleted_at', 'is', null)
  if (!all) query = query.where(sql<boolean>`raw->>'is_erp_integrated' = 'true'`)
  return (await query.orderBy('external_id').execute()).map((r) => r.external_id)
}

/** Background tasks of the Procore connector (webhook processing is the inbox's task). */
export function reconcileTasks(ctx: AppContext): TaskList {
  const one: Task = async (payload) => {
    const { companyId, runId } = payload as { companyId: string; runId: string }
    await reconcile(ctx, companyId, runId)
  }
  const all: Task = async () => {
    const companies = await ctx.db.selectFrom('procore_connections').select('company_id').where('status', '=', 'connected').execute()
    for (const { company_id: companyId } of companies) {
      await requestReconcile(ctx.db, companyId, { full: false, types: [...RecordTypes] }, 'schedule')
    }
  }
  return { [RECONCILE_TASK]: one, [RECONCILE_ALL_TASK]: all }
}
