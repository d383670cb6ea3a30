import type { ColumnType, Generated } from 'kysely'

export const Sides = ['procore', 'erp'] as const
export type Side = (typeof Sides)[number]

type Json<T> = ColumnType<T, string, string>
type Now = ColumnType<Date, Date | undefined, Date>

export interface RecordSnapshotsTable {
  company_id: ColumnType<string, string, never>
  side: Side
  /** A record type of the entity registry: department, user, project, cost_code, vendor. */
  type: string
  external_id: string
  /** The record's container, when it has one (a project cost code's project or job). */
  parent_id: string | null
  /** Canonical fields, as the entity registry maps them; comparable across sides. */
  fields: Json<Record<string, unknown>>
  raw: Json<unknown>
  content_hash: string
  source_updated_at: Date | null
  first_seen_at: Now
  changed_at: Now
  seen_at: Now
  deleted_at: Date | null
}

export const InboxStatuses = ['queued', 'processed', 'skipped', 'quarantined', 'failed'] as const
export type InboxStatus = (typeof InboxStatuses)[number]

export interface InboxEventsTable {
  id: ColumnType<string, never, never>
  company_id: ColumnType<string, string, never>
  source: Side
  dedupe_key: string
  received_at: ColumnType<Date, Date | undefined, never>
  headers: Json<Record<string, string>>
  body: string
  event_type: string | null
  record_type: string | null
  resource_id: string | null
  status: InboxStatus
  attempts: Generated<number>
  last_error: string | null
  processed_at: Date | null
}

export const RunStatuses = ['queued', 'running', 'succeeded', 'failed', 'interrupted', 'cancelled'] as const
/** A run in one of these states is over: its job, if it runs again, does nothing. */
export const FinishedRunStatuses = ['succeeded', 'failed', 'interrupted', 'cancelled'] as const
export type RunStatus = (typeof RunStatuses)[number]

export interface SyncRunsTable {
  id: Generated<string>
  company_id: ColumnType<string, string, never>
  kind: string
  status: RunStatus
  params: Json<Record<string, unknown>>
  result: ColumnType<Record<string, unknown> | null, string | null, string | null>
  error: string | null
  requested_by: string
  created_at: ColumnType<Date, never, never>
  started_at: Date | null
  finished_at: Date | null
  /** The sync type of the schedule it serves (scheduled or on demand); null for other runs. */
  sync_type: ColumnType<string | null, string | null | undefined, never>
  /** What started it: schedule, manual, webhook, accept… */
  trigger: ColumnType<string, string | undefined, never>
  cancel_requested_at: ColumnType<Date | null, never, Date | null>
}

export interface WorkerHeartbeatsTable {
  worker_id: string
  beat_at: Date
}
