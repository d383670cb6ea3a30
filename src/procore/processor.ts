import type { AppContext } from '../context.js'
import type { ProcessRecordPayload } from '../inbox/inbox.js'
import type { RecordProcessor } from '../inbox/tasks.js'
import { entity } from '../sync/registry.js'
import { getSnapshot, markDeleted, upsertSnapshots } from '../sync/snapshots.js'
import { applicationId, loadConnection } from './connection.js'
import { parseEvent, type ProcoreEvent } from './events.js'
import { procoreRecords } from './records.js'

/**
 * Acts on the webhook events of one Procore record (a coalesced burst): re-reads the record
 * once, whatever the events said and in whatever order they came, and upserts its snapshot;
 * 404 means deleted. Events caused by our own writes (our OAuth client id as
 * `metadata.source_application_id`) are skipped without a read; a re-read whose content hash
 * equals the snapshot's changes nothing and counts as skipped too.
 */
export const processProcoreRecord: RecordProcessor = async (ctx, record, events) => {
  const parsed = events.map((e) => parseEvent(e.body)).flatMap((p) => (p.ok ? [p.event] : []))
  const ours = applicationId(ctx, await loadConnection(ctx.db, record.companyId))
  if (ours !== null && parsed.length > 0 && parsed.every((e) => e.sourceApplicationId === ours)) return 'skipped'

  const type = record.recordType
  const parentId = await parentOf(ctx, record, parsed)
  const records = await procoreRecords(ctx, record.companyId)
  const json = await records.get(type, record.resourceId, parentId)
  if (json === null) {
    const gone = await markDeleted(ctx.db, record.companyId, 'procore', type, [record.resourceId])
    return gone.length > 0 ? 'processed' : 'skipped'
  }
  const mapped = entity(type).procore.from(json)
  const [change] = await upsertSnapshots(ctx.db, record.companyId, 'procore', type, [{ ...mapped, raw: json }])
  return change?.change === 'created' || change?.change === 'changed' ? 'processed' : 'skipped'
}

/**
 * Standard cost codes belong to the company; project cost codes need their project to be read.
 * The event names it; an older snapshot remembers it.
 */
async function parentOf(ctx: AppContext, record: ProcessRecordPayload, events: ProcoreEvent[]): Promise<string | null> {
  if (record.recordType !== 'cost_code') return null
  const latest = events.at(-1)
  if (latest?.resourceName === 'Standard Cost Codes') return null
  const fromEvent = [...events].reverse().find((e) => e.resourceName === 'Cost Codes' && e.projectId !== null)?.projectId
  if (fromEvent) return fromEvent
  const snapshot = await getSnapshot(ctx.db, record.companyId, 'procore', 'cost_code', record.resourceId)
  if (snapshot) return snapshot.parent_id
  throw new Error(`cost code ${record.resourceId}: the event names no project and no snapshot remembers one; it cannot be read`)
}

