import { sql, type Selectable } from 'kysely'
import { Type, type Static } from 'typebox'
import { transaction, type Db } from '../db/database.js'
import { Sides, type InboxEventsTable, type InboxStatus, type Side } from '../db/tables/records.js'
import { conflict, notFound } from '../errors.js'
import { keyset, type Page, type PageRequest } from '../api/pagination.js'
import { enqueue } from '../jobs/queue.js'
import { declareTask } from '../jobs/task.js'
import type { InboxEvent } from '../schemas/webhook-events.js'
import { RecordTypes, type RecordType } from '../sync/registry.js'

/** How long events of one record are gathered before one job re-reads it. */
export const COALESCE_MS = 500

export const ProcessRecordPayload = Type.Object({
  companyId: Type.String(),
  source: Type.Enum([...Sides]),
  recordType: Type.Enum([...RecordTypes]),
  resourceId: Type.String(),
})
export type ProcessRecordPayload = Static<typeof ProcessRecordPayload>

/**
 * The job behind every stored webhook or notification: one per record (job key), run once the
 * events of a burst have gathered (the key keeps the first one's run time). Its work is in
 * src/inbox/tasks.ts, given the processor of each side.
 */
export const ProcessRecordTask = declareTask({
  name: 'process-record',
  payload: ProcessRecordPayload,
  maxAttempts: 8,
  jobKey: (p) => `record:${p.companyId}:${p.source}:${p.recordType}:${p.resourceId}`,
  jobKeyMode: 'preserve_run_at',
})

export interface IncomingEvent {
  companyId: string
  source: Side
  /** Unique per delivery attempt group: Procore's event id/ulid, the ERP's webhook-id. */
  dedupeKey: string
  /** Safe headers only: never Authorization or signatures. */
  headers: Record<string, string>
  body: string
  eventType: string | null
  recordType: RecordType | null
  resourceId: string | null
  /** Set when the event is authentic but unusable: stored for people to see, never processed. */
  quarantineReason?: string
}

/**
 * Stores an authenticated event and, in the same transaction, the job that will act on it.
 * A duplicate delivery (same dedupe key) stores nothing and schedules nothing. Events of one
 * record arriving together share one job (job key per record), so one burst is one re-read.
 */
export async function storeEvent(
  db: Db,
  event: IncomingEvent,
): Promise<{ id: string | null; duplicate: boolean; status: InboxStatus }> {
  event = storable(event)
  const status: InboxStatus =
    event.quarantineReason || !event.recordType || !event.resourceId ? 'quarantined' : 'queued'
  return transaction(db, async (tx) => {
    const row = await tx
      .insertInto('inbox_events')
      .values({
        company_id: event.companyId,
        source: event.source,
        dedupe_key: event.dedupeKey,
        headers: JSON.stringify(event.headers),
        body: event.body,
        event_type: event.eventType,
        record_type: event.recordType,
        resource_id: event.resourceId,
        status,
        last_error: status === 'quarantined' ? (event.quarantineReason ?? 'no record type or id we consume') : null,
        processed_at: null,
      })
      .onConflict((oc) => oc.columns(['company_id', 'source', 'dedupe_key']).doNothing())
      .returning('id')
      .executeTakeFirst()
    if (!row) return { id: null, duplicate: true, status }
    if (status === 'queued')
      await scheduleProcessing(tx, event.companyId, event.source, event.recordType!, event.resourceId!)
    return { id: row.id, duplicate: false, status }
  })
}

const NUL_ESCAPE = '\\u0000'

/**
 * PostgreSQL text and jsonb cannot hold U+0000. An authentic event carrying it (in its body, id or
 * any field we keep) is still stored, so the sender is not told to retry what can never succeed:
 * with every NUL written as the six characters `\u0000`, quarantined, never processed.
 */
function storable(event: IncomingEvent): IncomingEvent {
  const texts = [event.dedupeKey, event.body, event.eventType, event.resourceId, event.quarantineReason]
  const hasNul =
    texts.some((v) => v?.includes('\u0000')) || Object.values(event.headers).some((v) => v.includes('\u0000'))
  if (!hasNul) return event
  const clean = (v: string) => v.replaceAll('\u0000', NUL_ESCAPE)
  return {
    ...event,
    dedupeKey: clean(event.dedupeKey),
    body: clean(event.body),
    eventType: event.eventType === null ? null : clean(event.eventType),
    resourceId: event.resourceId === null ? null : clean(event.resourceId),
    headers: Object.fromEntries(Object.entries(event.headers).map(([k, v]) => [k, clean(v)])),
    quarantineReason:
      'the event contains the NUL character (U+0000), which cannot be stored as text; kept with each NUL written ' +
      `as \\u0000${event.quarantineReason ? ` (also: ${clean(event.quarantineReason)})` : ''}`,
  }
}

export async function scheduleProcessing(
  db: Db,
  companyId: string,
  source: Side,
  recordType: RecordType,
  resourceId: string,
): Promise<void> {
  const payload: ProcessRecordPayload = { companyId, source, recordType, resourceId }
  const options = { runAt: new Date(Date.now() + COALESCE_MS) }
  await enqueue(db, ProcessRecordTask, payload, options)
  // graphile-worker's add_job silently drops the add when the record's job is locked between its
  // two statements; that job started before this event and will not see it. Add again then: the
  // second call finds the job locked and detaches it from the key.
  const { rows } = await sql<{ waiting: boolean }>`select exists (select 1 from graphile_worker._private_jobs
    where key = ${ProcessRecordTask.jobKey!(payload)} and locked_at is null) as waiting`.execute(db)
  if (!rows[0]?.waiting) await enqueue(db, ProcessRecordTask, payload, options)
}

export interface PendingEvent {
  id: string
  eventType: string | null
  body: string
}

/** The queued or failed events of one record, oldest first: what a processing job acts on. */
export async function pendingEvents(db: Db, p: ProcessRecordPayload): Promise<PendingEvent[]> {
  return db
    .selectFrom('inbox_events')
    .select(['id', 'event_type as eventType', 'body'])
    .where('company_id', '=', p.companyId)
    .where('source', '=', p.source)
    .where('record_type', '=', p.recordType)
    .where('resource_id', '=', p.resourceId)
    .where('status', 'in', ['queued', 'failed'])
    .orderBy('id')
    .execute()
}

export async function settleEvents(
  db: Db,
  ids: readonly string[],
  outcome: { status: 'processed' | 'skipped' } | { status: 'queued' | 'failed'; error: string },
) {
  if (ids.length === 0) return
  await db
    .updateTable('inbox_events')
    .set({
      status: outcome.status,
      attempts: sql<number>`attempts + 1`,
      last_error: 'error' in outcome ? outcome.error.slice(0, 2000) : null,
      processed_at: outcome.status === 'processed' || outcome.status === 'skipped' ? new Date() : null,
    })
    .where('id', 'in', ids)
    .execute()
}

function toEvent(row: Pick<Selectable<InboxEventsTable>, (typeof eventColumns)[number]>): InboxEvent {
  return {
    id: row.id,
    source: row.source,
    dedupeKey: row.dedupe_key,
    receivedAt: row.received_at.toISOString(),
    eventType: row.event_type,
    recordType: row.record_type,
    resourceId: row.resource_id,
    status: row.status,
    attempts: row.attempts,
    lastError: row.last_error,
    processedAt: row.processed_at?.toISOString() ?? null,
    body: row.body.length > 20_000 ? `${row.body.slice(0, 20_000)}…` : row.body,
  }
}
export type { InboxEvent }

const eventColumns = [
  'id',
  'source',
  'dedupe_key',
  'received_at',
  'event_type',
  'record_type',
  'resource_id',
  'status',
  'attempts',
  'last_error',
  'processed_at',
  'body',
] as const

const eventsKeyset = keyset('webhook-events', 'desc', [{ column: 'id', type: 'bigint' }])

export async function listEvents(
  db: Db,
  companyId: string,
  filter: { status?: InboxStatus | undefined; source?: Side | undefined },
  page: PageRequest,
): Promise<Page<InboxEvent>> {
  let query = db.selectFrom('inbox_events').select(eventColumns).where('company_id', '=', companyId)
  if (filter.status) query = query.where('status', '=', filter.status)
  if (filter.source) query = query.where('source', '=', filter.source)
  return eventsKeyset.page(query, page, toEvent)
}

/** Puts a failed (or quarantined-then-fixed) event back in the queue. */
export async function retryEvent(db: Db, companyId: string, eventId: string): Promise<InboxEvent> {
  return transaction(db, async (tx) => {
    const row = await tx
      .selectFrom('inbox_events')
      .select(eventColumns)
      .where('company_id', '=', companyId)
      .where('id', '=', eventId)
      .forUpdate()
      .executeTakeFirst()
    if (!row) throw notFound('webhook event', eventId)
    if (!row.record_type || !row.resource_id) {
      throw conflict(
        'event_not_processable',
        'This event names no record type or id that this service consumes; retrying cannot help. ' +
          'Its body is kept for inspection.',
      )
    }
    const updated = await tx
      .updateTable('inbox_events')
      .set({ status: 'queued', last_error: null })
      .where('id', '=', eventId)
      .returning(eventColumns)
      .executeTakeFirstOrThrow()
    await scheduleProcessing(tx, companyId, row.source, row.record_type as RecordType, row.resource_id)
    return toEvent(updated)
  })
}
