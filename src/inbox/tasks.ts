import type { Task } from 'graphile-worker'
import type { AppContext } from '../context.js'
import type { Side } from '../db/tables/records.js'
import { PROCESS_TASK, pendingEvents, settleEvents, type PendingEvent, type ProcessRecordPayload } from './inbox.js'

/**
 * Acts on the events of one record: re-reads it from its side and updates the snapshot.
 * Returns `skipped` when the events need no re-read (e.g. our own write echoing back).
 */
export type RecordProcessor = (ctx: AppContext, record: ProcessRecordPayload, events: PendingEvent[]) => Promise<'processed' | 'skipped'>

/**
 * The job behind every stored webhook or notification. Whatever the outcome, the events it
 * saw are settled: processed, skipped, back in the queue with the error (the job retries with
 * backoff), or failed with the reason once the attempts are used up.
 */
export function inboxTasks(ctx: AppContext, processors: Partial<Record<Side, RecordProcessor>>): Record<string, Task> {
  return {
    [PROCESS_TASK]: async (payload, helpers) => {
      const record = payload as ProcessRecordPayload
      const events = await pendingEvents(ctx.db, record)
      if (events.length === 0) return
      const ids = events.map((e) => e.id)
      const processor = processors[record.source]
      try {
        if (!processor) throw new Error(`no processor for ${record.source} events`)
        await settleEvents(ctx.db, ids, { status: await processor(ctx, record, events) })
      } catch (error) {
        const lastAttempt = helpers.job.attempts >= helpers.job.max_attempts
        const message = error instanceof Error ? error.message : String(error)
        await settleEvents(ctx.db, ids, { status: lastAttempt ? 'failed' : 'queued', error: message })
        throw error
      }
    },
  }
}
