import { sql, type Selectable } from 'kysely'
import { Type, type Static } from 'typebox'
import { transaction, type Db } from '../db/database.js'
import { preparedStatement } from '../db/pool.js'
import { Sides, type InboxEventsTable, type InboxStatus, type Side } from '../db/tables/records.js'
import { conflict, notFound } from '../errors.js'
import { keyset, type Page, type PageRequest } from '../api/pagination.js'
import { addKeyedJob, addKeyedJobExpression, job, keyedJobSpec, type JobSpec } from '../jobs/queue.js'
import { declareTask } from '../jobs/task.js'
import type { InboxEvent } from '../schemas/webhook-events.js'
import { RecordTypes, type RecordType } from '../sync/registry.js'

export const DrainInboxPayload = Type.Object({
  companyId: Type.String(),
  source: Type.Enum([...Sides]),
  /** A run queued by the previous one to catch events whose intake saw that one still waiting (see storeEvent). */
  sweep: Type.Optional(Type.Boolean()),
})
export type DrainInboxPayload = Static<typeof DrainInboxPayload>

/**
 * The job behind every stored webhook or notification: one per company and side (job key), run at
 * once, one at a time (a queue of its own). It takes every waiting event of the company, re-reads each
 * record they name once, many per request where the side can, and settles them. Its work is in
 * src/inbox/tasks.ts.
 */
export const DrainInboxTask = declareTask({
  name: 'drain-inbox',
  payload: DrainInboxPayload,
  maxAttempts: 8,
  jobKey: (p) => `inbox:${p.companyId}:${p.source}`,
  jobKeyMode: 'replace',
  queueName: (p) => `inbox:${p.companyId}:${p.source}`,
})

/** The payload of jobs queued before the inbox was drained per company (one job per record). */
export const ProcessRecordPayload = Type.Object({
  companyId: Type.String(),
  source: Type.Enum([...Sides]),
  recordType: Type.Enum([...RecordTypes]),
  resourceId: Type.String(),
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
 * Stores an authenticated event and, in the same statement, makes sure a job will act on it: one
 * round trip, atomic without a transaction block, prepared once per connection. The job is per
 * company and side, run at once. When one is already due and not yet started, the event joins it
 * without touching it: under a burst most deliveries only insert (no row lock on the shared job, no
 * NOTIFY). Such a job may start before this statement commits and so miss the event; every run
 * therefore queues a sweep run a little after the acknowledgement budget (SWEEP_AFTER_MS), by when
 * every acknowledged event is committed. A duplicate delivery (same dedupe key) stores nothing, and
 * still makes sure of a job, so a redelivery of an event whose first delivery was answered 503 but
 * committed late is acted on.
 */
export async function storeEvent(
  db: Db,
  event: IncomingEvent,
): Promise<{ id: string | null; duplicate: boolean; status: InboxStatus }> {
  event = storable(event)
  const queued = !event.quarantineReason && !!event.recordType && !!event.resourceId
  const row: StoredRow = {
    companyId: event.companyId,
    source: event.source,
    dedupeKey: event.dedupeKey,
    headers: JSON.stringify(event.headers),
    body: event.body,
    eventType: event.eventType,
    recordType: event.recordType,
    resourceId: event.resourceId,
  }
  const { rows } = queued
    ? await storeQueued(db, {
        ...row,
        ...keyedJobSpec(job(DrainInboxTask, { companyId: event.companyId, source: event.source })),
      })
    : await storeQuarantined(db, {
        ...row,
        lastError: event.quarantineReason ?? 'no record type or id we consume',
      })
  const id = rows[0]?.id ?? null
  const status: InboxStatus = queued ? 'queued' : 'quarantined'
  return id === null ? { id: null, duplicate: true, status } : { id, duplicate: false, status }
}

interface StoredRow {
  companyId: string
  source: Side
  dedupeKey: string
  /** JSON text. */
  headers: string
  body: string
  eventType: string | null
  recordType: RecordType | null
  resourceId: string | null
}

/** The insert of storeEvent, the same text for every event of one status: built once, prepared per connection. */
const insertEvent = (p: StoredRow, status: InboxStatus, lastError: unknown) =>
  sql`insert into inbox_events (company_id, source, dedupe_key, headers, body, event_type, record_type, resource_id,
      status, last_error)
    values (${p.companyId}::bigint, ${p.source}, ${p.dedupeKey}, ${p.headers}::jsonb, ${p.body}, ${p.eventType},
      ${p.recordType}, ${p.resourceId}, ${status}, ${lastError})
    on conflict (company_id, source, dedupe_key) do nothing
    returning id`

/** A queued event's insert, and its company's drain job (its JobSpec) unless one is due and not yet started. */
const storeQueued = preparedStatement<StoredRow & JobSpec, { id: string | null; job_id: string | null }>(
  (p) => sql`with stored as (${insertEvent(p, 'queued', null)})
    select (select id::text from stored) as id,
      case when exists (select 1 from graphile_worker._private_jobs where key = ${p.jobKey}
        and locked_at is null and run_at <= now() and attempts < max_attempts and payload->>'sweep' is null)
      then null else ${addKeyedJobExpression(p)} end as job_id`,
)

const storeQuarantined = preparedStatement<StoredRow & { lastError: string }, { id: string | null }>(
  (p) => sql`with stored as (${insertEvent(p, 'quarantined', p.lastError)})
    select (select id::text from stored) as id`,
)

/** Deliveries are acknowledged within ACK_BUDGET_MS (3 s): a sweep this late finds every acknowledged event. */
export const SWEEP_AFTER_MS = 4000

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

/**
 * Queues the company's inbox job: at once (the default), or at `runAt` unless one is already due
 * sooner (a job re-scheduling itself for a burst's trailing read must not delay new events).
 */
export async function scheduleDrain(
  db: Db,
  companyId: string,
  source: Side,
  runAt?: Date,
  sweep = false,
): Promise<void> {
  const options = runAt === undefined ? {} : { runAt, jobKeyMode: 'preserve_run_at' as const }
  await addKeyedJob(db, job(DrainInboxTask, { companyId, source, ...(sweep ? { sweep } : {}) }, options))
}

/** A record's waiting events, oldest first: what one re-read settles. */
export interface PendingRecord {
  recordType: RecordType
  resourceId: string
  events: PendingEvent[]
}

export interface PendingEvent {
  id: string
  eventType: string | null
  body: string
  attempts: number
  /** When it was stored, on the database's clock: after the sender sent it, so after the change it announces. */
  receivedAt: Date
}

const eventFields = [
  'id',
  'event_type as eventType',
  'body',
  'attempts',
  'record_type as recordType',
  'resource_id',
  'received_at as receivedAt',
] as const

/**
 * The company's queued events of one side (at most `limit`, oldest first), by record, with the
 * failed events of the same records (a new read settles them too). `more`: others wait beyond the limit.
 */
export async function pendingRecords(
  db: Db,
  companyId: string,
  source: Side,
  limit: number,
): Promise<{ records: PendingRecord[]; more: boolean }> {
  const queued = await db
    .selectFrom('inbox_events')
    .select(eventFields)
    .where('company_id', '=', companyId)
    .where('status', '=', 'queued')
    .where('source', '=', source)
    .orderBy('id')
    .limit(limit + 1)
    .execute()
  const more = queued.length > limit
  const rows = queued.slice(0, limit)
  const keys = [...new Set(rows.map((r) => `${r.recordType}:${r.resource_id}`))]
  const failed =
    keys.length === 0
      ? []
      : await db
          .selectFrom('inbox_events')
          .select(eventFields)
          .where('company_id', '=', companyId)
          .where('status', '=', 'failed')
          .where('source', '=', source)
          .where(sql<boolean>`record_type || ':' || resource_id = any(${keys}::text[])`)
          .execute()
  const byRecord = new Map<string, PendingRecord>()
  for (const r of [...failed, ...rows].sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1))) {
    if (r.recordType === null || r.resource_id === null) continue
    const key = `${r.recordType}:${r.resource_id}`
    let record = byRecord.get(key)
    if (!record) {
      record = { recordType: r.recordType as RecordType, resourceId: r.resource_id, events: [] }
      byRecord.set(key, record)
    }
    record.events.push({
      id: r.id,
      eventType: r.eventType,
      body: r.body,
      attempts: r.attempts,
      receivedAt: r.receivedAt,
    })
  }
  return { records: [...byRecord.values()], more }
}

/**
 * The database's clock as seen from here: its time when asked, advanced by this process's monotonic clock since.
 * The reading is taken before the answer leaves the server, so `now()` never runs ahead of the database's clock:
 * an event stored before the `now()` taken just before a read was sent before that read, and is covered by it.
 */
export async function databaseClock(db: Db): Promise<{ now(): number }> {
  const { rows } = await sql<{ now: Date }>`select clock_timestamp() as now`.execute(db)
  const at = rows[0]!.now.getTime()
  const asked = performance.now()
  return { now: () => at + (performance.now() - asked) }
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
    await scheduleDrain(tx, companyId, row.source)
    return toEvent(updated)
  })
}
