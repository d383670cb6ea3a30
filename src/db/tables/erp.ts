import type { ColumnType, Generated } from 'kysely'

type Json<T> = ColumnType<T, string, string>

/** What a connection test found wrong, for GET to show. */
export interface ErpCheckFailure {
  code: string
  message: string
}

/** One company's ERP agent (ERP Connector Protocol). `*_sealed` columns hold SecretBox values. */
export interface ErpConnectionsTable {
  company_id: ColumnType<string, string, never>
  base_url: string
  token_sealed: string
  /** The ERP the agent reported at the last successful test (`/v1/info` `system`). */
  system: string
  /** The ERP company the agent serves (`company_name`). */
  company_name: string
  protocol_version: string
  /** The whole `/v1/info` answer of the last successful test: capabilities and limits. */
  info: Json<Record<string, unknown>>
  notification_secret_sealed: string
  secret_created_at: ColumnType<Date, Date | undefined, Date>
  /** Still accepted until previous_secret_expires_at, after a rotation. */
  previous_notification_secret_sealed: string | null
  previous_secret_expires_at: Date | null
  last_checked_at: ColumnType<Date, Date | undefined, Date>
  last_check_failure: ColumnType<ErpCheckFailure | null, string | null, string | null>
  version: Generated<number>
  created_at: ColumnType<Date, never, never>
  updated_at: ColumnType<Date, Date | undefined, Date>
}
