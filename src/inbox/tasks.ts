import type { AppContext } from '../context.js'
import { defineTask } from '../jobs/task.js'
import { applicationId, loadConnection } from '../procore/connection.js'
import { parseEvent, type ProcoreEvent } from '../procore/events.js'
import { ingestRecord } from '../sync/ingest.js'
import { entity, type RecordType } from '../sync/registry.js'
import {
  pendingEvents,
  ProcessRecordTask,
  settleEvents,
  type PendingEvent,
  type ProcessRecordPayload,
} from './inbox.js'

/**
 * The job behind every stored webhook or notification. Whatever the outcome, the events it saw are
 * settled: processed, skipped, back in the queue with the error (the job retries with backoff), or
 * failed with the reason once the attempts are used up.
 */
export const processRecordTask = defineTask({
  ...ProcessRecordTask,
  async run(ctx, record, job) {
    const events = await pendingEvents(ctx.db, record)
    if (events.length === 0) return
    const ids = events.map((e) => e.id)
    try {
      await settleEvents(ctx.db, ids, { status: await processEvents(ctx, record, events) })
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error)
      await settleEvents(ctx.db, ids, { status: job.lastAttempt ? 'failed' : 'queued', error: message })
      throw error
    }
  },
})

/**
 * The events of one record (a coalesced burst, either side) lead to one re-read through the ingest
 * engine, whatever they said and in whatever order they came. Procore events caused by our own
 * writes (our OAuth client id as `metadata.source_application_id`) are skipped without a read.
 */
async function processEvents(
  ctx: AppContext,
  record: ProcessRecordPayload,
  events: PendingEvent[],
): Promise<'processed' | 'skipped'> {
  const { companyId, source: side, recordType: type, resourceId: id } = record
  if (side === 'erp') return ingestRecord(ctx, side, companyId, type, id)
  const parsed = events.map((e) => parseEvent(e.body)).flatMap((p) => (p.ok ? [p.event] : []))
  const ours = applicationId(ctx, await loadConnection(ctx.db, companyId))
  if (ours !== null && parsed.length > 0 && parsed.every((e) => e.sourceApplicationId === ours)) return 'skipped'
  return ingestRecord(ctx, side, companyId, type, id, procoreParentOf(type, parsed))
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
