import type { ColumnType, Generated } from 'kysely'
import type { Side } from './records.js'

type Json<T> = ColumnType<T, string, string>
type Now = ColumnType<Date, Date | undefined, Date>

export const OriginStates = ['pending', 'set', 'clearing', 'cleared', 'failed'] as const
export type OriginState = (typeof OriginStates)[number]

/** A Procore record paired with its ERP twin; unlinked rows stay as history. */
export interface RecordLinksTable {
  id: Generated<string>
  company_id: ColumnType<string, string, never>
  type: string
  procore_id: string
  erp_id: string
  /** Whether Procore's origin_id/origin_code reflect the link (or its removal) yet. */
  origin_state: OriginState
  origin_error: string | null
  version: Generated<number>
  created_by: string
  created_at: ColumnType<Date, Date | undefined, never>
  unlinked_by: string | null
  unlinked_at: Date | null
}

/** Normalised match keys of live records (maintained with the snapshots). */
export interface RecordKeysTable {
  company_id: string
  type: string
  side: Side
  external_id: string
  key: string
  value: string
  parent_id: string | null
}

export interface RecordFlagsTable {
  company_id: string
  type: string
  side: Side
  external_id: string
  ignored_at: Date | null
  ignored_by: string | null
  failed_at: Date | null
  failed_action: string | null
  failure: string | null
}

export const DiscrepancyStatuses = ['open', 'resolved', 'dismissed'] as const
export type DiscrepancyStatus = (typeof DiscrepancyStatuses)[number]

/** One differing field of a linked pair, with both sides' values as stored. */
export interface DiscrepancyField {
  field: string
  label: string
  procore: string | boolean | null
  erp: string | boolean | null
}

export interface DiscrepanciesTable {
  id: Generated<string>
  company_id: ColumnType<string, string, never>
  type: string
  link_id: string
  status: DiscrepancyStatus
  fields: Json<DiscrepancyField[]>
  version: Generated<number>
  created_at: ColumnType<Date, Date | undefined, never>
  updated_at: Now
  resolved_at: Date | null
  resolved_by: string | null
}

export interface SyncSettingsTable {
  company_id: ColumnType<string, string, never>
  settings: Json<Record<string, unknown>>
  version: Generated<number>
  updated_by: string
  updated_at: Now
}

export interface AuditEntriesTable {
  id: ColumnType<string, never, never>
  company_id: ColumnType<string, string, never>
  at: ColumnType<Date, Date | undefined, never>
  /** An API key id, or `system:<job>`. */
  actor: string
  action: string
  type: string | null
  procore_id: string | null
  erp_id: string | null
  link_id: string | null
  before: ColumnType<unknown, string | null, never>
  after: ColumnType<unknown, string | null, never>
  /** `{api?, procore?, erp?}`: our request id and the upstream ones behind the change. */
  request_ids: Json<Record<string, string>>
  detail: string | null
}

export interface SyncCreatesTable {
  company_id: string
  type: string
  target: Side
  source_id: string
  idempotency_key: string
  body: Json<Record<string, unknown>>
  parent_id: string | null
  status: 'pending' | 'created'
  target_id: string | null
  run_id: string | null
  created_at: ColumnType<Date, Date | undefined, never>
  updated_at: Now
}

/** Append-only marks of changed records, drained by the evaluation job. */
export interface SyncDirtyTable {
  seq: ColumnType<string, never, never>
  company_id: string
  type: string
  side: Side
  external_id: string
}

/** The company's ERP standard cost code list in Procore, as last read (link prerequisites read it). */
export interface ProcoreErpListsTable {
  company_id: string
  list_id: string
  seen_at: ColumnType<Date, Date | undefined, Date>
}

/** One listed item (a linked pair, or a record on one side only) with its status: the record list's index. */
export interface RecordItemsTable {
  company_id: string
  type: string
  /** `link:<id>`, `procore:<id>` or `erp:<id>`. */
  k: string
  sort_key: string
  status: string
  /** False for an inactive ERP record of an archivable type (not ready to import). */
  active: boolean
  link_id: string | null
  procore_id: string | null
  erp_id: string | null
}

/** Listed items per status, kept with the items. */
export interface RecordItemCountsTable {
  company_id: string
  type: string
  status: string
  active: boolean
  n: ColumnType<string, number, number>
}

/** Append-only marks of records whose listed item may have changed (written by triggers). */
export interface RecordItemDirtyTable {
  seq: ColumnType<string, never, never>
  company_id: string
  type: string
  side: Side
  external_id: string
}
