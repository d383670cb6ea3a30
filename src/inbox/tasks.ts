import { sql } from 'kysely'
import { component, type AppContext } from '../context.js'
import type { Side } from '../db/tables/records.js'
import { defineTask, type JobInfo } from '../jobs/task.js'
import { applicationId, loadConnection } from '../procore/connection.js'
import { parseEvent, type ProcoreEvent } from '../procore/events.js'
import { MAX_IN_FLIGHT, procoreHttp } from '../procore/http.js'
import { ingestRecords, type IngestCalls, type IngestOutcome } from '../sync/ingest.js'
import { entity, type RecordType } from '../sync/registry.js'
import {
  DrainInboxTask,
  pendingRecords,
  ProcessRecordPayload,
  scheduleDrain,
  settleEvents,
  SWEEP_AFTER_MS,
  type PendingRecord,
} from './inbox.js'

/** Events one run takes; more are left to the next run, queued at once. */
const DRAIN_BATCH = 5000
/** A failing record's events are marked failed after this many reads (or the job's last attempt). */
const MAX_EVENT_ATTEMPTS = 8

/**
 * When this process last started reading each record for the inbox, per company and side: a record
 * read less than the coalescing window ago waits for the window's end, so a burst of its events
 * rides on one more read instead of one each. Kept in memory: several instances each know their own
 * reads, so a burst split between two of them costs at most one read more per window, never a lost event.
 */
type RecentReads = Map<string, number>
const recentReads = (ctx: AppContext, companyId: string, side: Side): RecentReads => {
  const all = component(ctx, 'inbox.recentReads', () => new Map<string, RecentReads>())
  const key = `${companyId}:${side}`
  let reads = all.get(key)
  if (!reads) {
    reads = new Map()
    all.set(key, reads)
  }
  return reads
}

/**
 * The job behind every stored webhook or notification, one per company and side. The first event of
 * a quiet record is read at once (no window to wait out); events of a record read within the
 * coalescing window wait until its end and are then settled by one more read. Records are read many
 * per request where the side can (src/sync/ingest.ts `ingestRecords`). Whatever the outcome, the
 * events a run read for are settled: processed, skipped, back in the queue with the error (the job
 * retries with backoff), or failed with the reason once the attempts are used up.
 */
export const drainInboxTask = defineTask({
  ...DrainInboxTask,
  async run(ctx, payload, job) {
    // One run per company and side at a time, whatever happens to the queue (a job released as its worker's
    // while that worker still runs it): a session lock on a connection of its own, gone with the process.
    const lockKey = `inbox:${payload.companyId}:${payload.source}`
    await ctx.db.connection().execute(async (conn) => {
      const { rows } = await sql<{ ok: boolean }>`select pg_try_advisory_lock(hashtext(${lockKey})) as ok`.execute(conn)
      if (!rows[0]?.ok) {
        await scheduleDrain(ctx.db, payload.companyId, payload.source, new Date(Date.now() + 1000))
        return
      }
      try {
        await drainOnce(ctx, payload, job)
      } finally {
        await sql`select pg_advisory_unlock(hashtext(${lockKey}))`.execute(conn)
      }
    })
  },
})

async function drainOnce(
  ctx: AppContext,
  { companyId, source, sweep }: { companyId: string; source: Side; sweep?: boolean | undefined },
  job: JobInfo,
): Promise<void> {
  const windowMs = ctx.config.inbox.coalesceMs
  const { records, more } = await pendingRecords(ctx.db, companyId, source, DRAIN_BATCH)
  const reads = recentReads(ctx, companyId, source)
  const now = Date.now()
  for (const [key, at] of reads) if (now - at >= windowMs) reads.delete(key)
  let wakeAt = Infinity
  const due: PendingRecord[] = []
  for (const record of records) {
    const at = reads.get(recordKey(record))
    if (at === undefined) due.push(record)
    else wakeAt = Math.min(wakeAt, at + windowMs)
  }
  const failed = due.length === 0 ? 0 : await drain(ctx, companyId, source, due, job)
  if (failed > 0) throw new Error(`${failed} of ${due.length} records could not be read; they are retried`)
  if (more) await scheduleDrain(ctx.db, companyId, source)
  else if (wakeAt < Infinity) await scheduleDrain(ctx.db, companyId, source, new Date(wakeAt))
  // A sweep that found nothing ends the chain; any other run is followed by one (see storeEvent).
  else if (!sweep || records.length > 0)
    await scheduleDrain(ctx.db, companyId, source, new Date(Date.now() + SWEEP_AFTER_MS), true)
}

const recordKey = (r: { recordType: string; resourceId: string }) => `${r.recordType}:${r.resourceId}`

/**
 * Reads the due records and settles their events; returns how many records failed. Procore events
 * caused by our own writes (our OAuth client id as `metadata.source_application_id`) are skipped
 * without a read.
 */
async function drain(
  ctx: AppContext,
  companyId: string,
  side: Side,
  due: PendingRecord[],
  job: JobInfo,
): Promise<number> {
  const outcomes = new Map<PendingRecord, IngestOutcome>()
  const toRead = new Map<RecordType, Array<{ record: PendingRecord; parentId: string | null | undefined }>>()
  const ours = side === 'procore' ? applicationId(ctx, await loadConnection(ctx.db, companyId)) : null
  for (const record of due) {
    if (side === 'procore') {
      const parsed = record.events.map((e) => parseEvent(e.body)).flatMap((p) => (p.ok ? [p.event] : []))
      if (ours !== null && parsed.length > 0 && parsed.every((e) => e.sourceApplicationId === ours)) {
        outcomes.set(record, 'skipped')
        continue
      }
      const list = toRead.get(record.recordType) ?? []
      list.push({ record, parentId: procoreParentOf(record.recordType, parsed) })
      toRead.set(record.recordType, list)
    } else {
      const list = toRead.get(record.recordType) ?? []
      list.push({ record, parentId: undefined })
      toRead.set(record.recordType, list)
    }
  }
  const reads = recentReads(ctx, companyId, side)
  const calls: IngestCalls = { lists: 0, gets: 0 }
  const concurrency = side === 'procore' ? procoreConcurrency(ctx, companyId) : MAX_IN_FLIGHT
  for (const [type, items] of toRead) {
    const startedAt = Date.now()
    const results = await ingestRecords(
      ctx,
      side,
      companyId,
      type,
      items.map(({ record, parentId }) =>
        parentId === undefined ? { id: record.resourceId } : { id: record.resourceId, parentId },
      ),
      { concurrency, calls },
    )
    for (const { record } of items) {
      const outcome = results.get(record.resourceId) ?? { error: new Error('the record was not read') }
      outcomes.set(record, outcome)
      if (typeof outcome === 'string') reads.set(recordKey(record), startedAt)
    }
  }

  const settled: Record<'processed' | 'skipped', string[]> = { processed: [], skipped: [] }
  let failed = 0
  for (const [record, outcome] of outcomes) {
    const ids = record.events.map((e) => e.id)
    if (typeof outcome === 'string') {
      settled[outcome].push(...ids)
      continue
    }
    failed++
    const error = outcome.error
    const message = error instanceof Error ? error.message : String(error)
    const attempts = Math.max(...record.events.map((e) => e.attempts)) + 1
    const status = job.lastAttempt || attempts >= MAX_EVENT_ATTEMPTS ? 'failed' : 'queued'
    await settleEvents(ctx.db, ids, { status, error: message })
  }
  await settleEvents(ctx.db, settled.processed, { status: 'processed' })
  await settleEvents(ctx.db, settled.skipped, { status: 'skipped' })
  ctx.log.debug({ component: 'inbox', companyId, side, records: due.length, failed, ...calls }, 'inbox drained')
  return failed
}

/**
 * Reads in flight for one company's drain, from the rate-limit budget Procore last reported: the
 * shared limit (MAX_IN_FLIGHT) while the budget is ample, fewer as it runs low, one when nearly spent
 * (the HTTP layer then waits for the reset rather than earn 429s).
 */
function procoreConcurrency(ctx: AppContext, companyId: string): number {
  const budget = procoreHttp(ctx).api.rateBudget(companyId)
  if (budget === undefined) return MAX_IN_FLIGHT
  return Math.max(1, Math.min(MAX_IN_FLIGHT, Math.floor(budget.remaining / 10)))
}

/**
 * The parent a Procore event names for a record of a type that may have one: the latest event's
 * resource says whether the record lives in a project, the events name the project. Undefined:
 * the snapshot must tell.
 */
function procoreParentOf(type: RecordType, events: ProcoreEvent[]): string | null | undefined {
  const parent = entity(type).parent
  if (!parent) return null
  const latest = events.at(-1)
  if (latest && latest.resourceName !== parent.procoreWebhookResource) return null
  const inParent = events.filter((e) => e.resourceName === parent.procoreWebhookResource && e.projectId !== null)
  const named = inParent.at(-1)
  return named?.projectId ?? undefined
}

/**
 * Jobs queued before the inbox was drained per company named one record each: such a job now only
 * queues its company's drain, which finds the record's events among the others.
 */
export const processRecordTask = defineTask({
  name: 'process-record',
  payload: ProcessRecordPayload,
  maxAttempts: 8,
  async run(ctx, { companyId, source }) {
    await scheduleDrain(ctx.db, companyId, source)
  },
})
