import type { ColumnType, Generated } from 'kysely'

type Json<T> = ColumnType<T, string, string>
type Now = ColumnType<Date, Date | undefined, Date>

export const ExportStatuses = [
  'pending_acceptance',
  'exporting',
  'failed_to_export',
  'exported',
  'rejected',
  'retrieved',
  'withdrawn',
] as const
export type ExportStatus = (typeof ExportStatuses)[number]
/** A request in one of these holds its record (one per record at a time). */
export const OpenExportStatuses = ['pending_acceptance', 'exporting', 'failed_to_export'] as const

export interface ExportRequestsTable {
  id: Generated<string>
  company_id: ColumnType<string, string, never>
  type: string
  procore_id: string
  status: ExportStatus
  version: Generated<number>
  note: string | null
  sent_by: Json<{ name: string; email?: string; procoreUserId?: string }>
  sent_fields: Json<Record<string, string | boolean | null>>
  previous_id: string | null
  erp_code: string | null
  company_type: string | null
  overrides: Json<Record<string, string | boolean | null>> | null
  attempt: Generated<number>
  run_id: string | null
  erp_id: string | null
  link_id: string | null
  messages: Json<Array<{ field: string | null; message: string }>> | null
  reason: string | null
  sent_by_key: string
  created_at: ColumnType<Date, Date | undefined, never>
  updated_at: Now
}

export interface ExportTransitionsTable {
  id: ColumnType<string, never, never>
  request_id: string
  at: ColumnType<Date, Date | undefined, never>
  from_status: ExportStatus | null
  to_status: ExportStatus
  actor: string
  person: string | null
  detail: string | null
}

export interface ExportSettingsTable {
  company_id: string
  type: string
  require_approval: boolean
  updated_at: Now
}

export interface WebhookSubscriptionsTable {
  id: Generated<string>
  company_id: ColumnType<string, string, never>
  url: string
  events: Json<string[]>
  /** Sealed with SecretBox. */
  secret: string
  created_by: string
  created_at: ColumnType<Date, Date | undefined, never>
  deleted_at: Date | null
}

export interface WebhookDeliveriesTable {
  id: Generated<string>
  subscription_id: string
  company_id: string
  event: string
  payload: Json<Record<string, unknown>>
  status: 'pending' | 'delivered' | 'failed'
  attempts: Generated<number>
  last_status: number | null
  last_error: string | null
  created_at: ColumnType<Date, Date | undefined, never>
  finished_at: Date | null
}
