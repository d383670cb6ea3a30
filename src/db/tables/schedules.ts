import type { ColumnType } from 'kysely'

export const Intervals = ['hourly', 'every_2_hours', 'every_4_hours', 'daily', 'never'] as const
export type Interval = (typeof Intervals)[number]

/** A company's schedule as a whole: the time zone of daily times, and the version behind its ETag. */
export interface SyncScheduleSettingsTable {
  company_id: ColumnType<string, string, never>
  time_zone: string
  version: ColumnType<number, number | undefined, number>
  updated_by: string | null
  updated_at: ColumnType<Date, Date | undefined, Date>
}

/** One row per company and sync type: its interval and its next due time (null: never). */
export interface SyncSchedulesTable {
  company_id: ColumnType<string, string, never>
  sync_type: string
  interval: Interval
  /** HH:MM in the company's time zone, for daily. */
  time_of_day: string | null
  next_due_at: Date | null
  /** The due time last fired. */
  last_due_at: Date | null
  last_run_id: string | null
  /** Why the last due time was put off (rate-limit headroom), when it was. */
  deferred_reason: string | null
}

/** The last Procore rate-limit budget a listing observed for a company. */
export interface ProcoreRateObservationsTable {
  company_id: ColumnType<string, string, never>
  remaining: number
  reset_at: Date
  observed_at: ColumnType<Date, Date | undefined, Date>
}
