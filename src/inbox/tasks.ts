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
  databaseClock,
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
 * This process's last read of each record for the inbox, per company and side, on the database's clock (see
 * `databaseClock`): when it started, so an event stored before then is known to be covered by it, and when it
 * ended, so an event stored while it was in flight shows a burst under way. Kept in memory: several instances
 * each know their own reads, so a record another instance read is read again here (one read more, never a lost
 * event).
 */
interface LastRead {
  startedAt: number
  endedAt: number
}
type RecentReads = Map<string, LastRead>
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
/** Reads are remembered at least this long, so events that arrived just before one started find it. */
const REMEMBER_READS_MS = 2 * SWEEP_AFTER_MS

/**
 * The job behind every stored webhook or notification, one per company and side. A record's events
 * are read for at once, unless a burst of them is under way: then they ride on one read at the end of
 * the coalescing window (see `planRecord`). Records are read many per request where the side can
 * (src/sync/ingest.ts `ingestRecords`). Whatever the outcome, the events a run read for are settled:
 * processed, skipped, back in the queue with the error (the job retries with backoff), or failed with
 * the reason once the attempts are used up.
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
  const clock = await databaseClock(ctx.db)
  const { records, more } = await pendingRecords(ctx.db, companyId, source, DRAIN_BATCH)
  const reads = recentReads(ctx, companyId, source)
  const now = clock.now()
  const remember = Math.max(windowMs, REMEMBER_READS_MS)
  for (const [key, read] of reads) if (now - read.startedAt >= remember) reads.delete(key)
  let wakeAt = Infinity
  const due: PendingRecord[] = []
  const covered: string[] = []
  for (const record of records) {
    const plan = planRecord(record, reads.get(recordKey(record)), now, windowMs)
    if (plan === 'covered') covered.push(...record.events.map((e) => e.id))
    else if (plan <= now) due.push(record)
    else wakeAt = Math.min(wakeAt, plan)
  }
  // Settled by a read that started after they were stored: nothing left to learn from them.
  await settleEvents(ctx.db, covered, { status: 'skipped' })
  const failed = due.length === 0 ? 0 : await drain(ctx, companyId, source, due, job, clock)
  if (failed > 0) throw new Error(`${failed} of ${due.length} records could not be read; they are retried`)
  const sweepAt = clock.now() + SWEEP_AFTER_MS
  if (more) await scheduleDrain(ctx.db, companyId, source)
  // Never later than the sweep: the wake-up stands in for it, and must find what this run missed (see storeEvent).
  else if (wakeAt < Infinity) await scheduleDrain(ctx.db, companyId, source, new Date(Math.min(wakeAt, sweepAt)))
  // A sweep that found nothing ends the chain; any other run is followed by one (see storeEvent).
  else if (!sweep || records.length > 0) await scheduleDrain(ctx.db, companyId, source, new Date(sweepAt), true)
}

/**
 * What a record's waiting events need, given this process's last read of it: `covered` when every one of them was
 * stored before that read started (the read saw their changes), else the time to read it. At once for a quiet
 * record, and for an isolated change: every event the last read settled had arrived before it started, and none
 * came while it was in flight. An event stored while it was in flight means a burst is under way: the events ride
 * on one read when the coalescing window that read opened ends, so a storm costs one read per record per window.
 */
function planRecord(
  record: PendingRecord,
  last: LastRead | undefined,
  now: number,
  windowMs: number,
): 'covered' | number {
  if (!last) return now
  const open = record.events.filter((e) => e.receivedAt.getTime() >= last.startedAt)
  if (open.length === 0) return 'covered'
  const first = Math.min(...open.map((e) => e.receivedAt.getTime()))
  return first < last.endedAt ? last.startedAt + windowMs : now
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
  clock: { now(): number },
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
    const startedAt = clock.now()
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
    const endedAt = clock.now()
    for (const { record } of items) {
      const outcome = results.get(record.resourceId) ?? { error: new Error('the record was not read') }
      outcomes.set(record, outcome)
      if (typeof outcome === 'string') reads.set(recordKey(record), { startedAt, endedAt })
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
