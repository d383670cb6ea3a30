import type { ColumnType, Generated } from 'kysely'

type Json<T> = ColumnType<T, string, string>
type Now = ColumnType<Date, Date | undefined, Date>

export const TimeEntryStatuses = ['pending', 'sent', 'failed', 'voided'] as const
export type TimeEntryStatus = (typeof TimeEntryStatuses)[number]

/** An approved time entry from a time-keeping system and its Procore timecard entry. */
export interface TimeEntriesTable {
  company_id: ColumnType<string, string, never>
  external_id: ColumnType<string, string, never>
  /** Procore's timecard origin_id is an integer: allocated once per entry, never reused. */
  origin_id: ColumnType<string, never, never>
  entry: Json<Record<string, unknown>>
  procore_body: Json<Record<string, unknown>>
  content_hash: string
  /** YYYY-MM-DD */
  entry_date: string
  party_id: string
  approved_at: Date
  wanted: 'present' | 'absent'
  status: TimeEntryStatus
  error: string | null
  procore_id: string | null
  sent_hash: string | null
  create_sent_at: Date | null
  attempts: Generated<number>
  version: Generated<number>
  created_at: ColumnType<Date, Date | undefined, never>
  updated_at: Now
  sent_at: Date | null
}
