import type { AppContext } from '../context.js'
import { defineTask, type TaskDefinition } from '../jobs/task.js'
import {
  pendingEvents,
  ProcessRecordTask,
  settleEvents,
  type PendingEvent,
  type ProcessRecordPayload,
} from './inbox.js'

/**
 * Acts on the events of one record (either side): re-reads it and updates the snapshot.
 * Returns `skipped` when the events need no re-read (e.g. our own write echoing back).
 */
export type RecordProcessor = (
  ctx: AppContext,
  record: ProcessRecordPayload,
  events: PendingEvent[],
) => Promise<'processed' | 'skipped'>

/**
 * The job behind every stored webhook or notification, with the processor that acts on them. Whatever
 * the outcome, the events it saw are settled: processed, skipped, back in the queue with the
 * error (the job retries with backoff), or failed with the reason once the attempts are used up.
 */
export function processRecordTask(processor: RecordProcessor): TaskDefinition<typeof ProcessRecordPayload> {
  return defineTask({
    ...ProcessRecordTask,
    async run(ctx, record, job) {
      const events = await pendingEvents(ctx.db, record)
      if (events.length === 0) return
      const ids = events.map((e) => e.id)
      try {
        await settleEvents(ctx.db, ids, { status: await processor(ctx, record, events) })
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error)
        await settleEvents(ctx.db, ids, { status: job.lastAttempt ? 'failed' : 'queued', error: message })
        throw error
      }
    },
  })
}
