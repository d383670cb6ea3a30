import type { ColumnType } from 'kysely'

export interface IdempotencyKeysTable {
  api_key_id: string
  key: string
  method: string
  route: string
  fingerprint: string
  /** Until then a request holding this key is considered in flight; afterwards it may be taken over. */
  locked_until: Date | null
  response_status: number | null
  response_headers: ColumnType<Record<string, string> | null, string | null, string | null>
  response_body: string | null
  created_at: ColumnType<Date, Date | undefined, never>
  completed_at: Date | null
}
