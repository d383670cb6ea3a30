import type { ColumnType, Generated } from 'kysely'

export const ProcoreModes = ['client_credentials', 'authorization_code'] as const
export type ProcoreMode = (typeof ProcoreModes)[number]

export const ProcoreConnectionStatuses = ['connected', 'needs_reauth', 'disconnected'] as const
export type ProcoreConnectionStatus = (typeof ProcoreConnectionStatuses)[number]

type Now = ColumnType<Date, Date | undefined, Date>

/**
 * A company's Procore credentials. `client_secret`, `access_token` and `refresh_token` hold
 * SecretBox values sealed for `company:<id>:procore.<column>`; they never leave src/procore.
 */
export interface ProcoreConnectionsTable {
  company_id: ColumnType<string, string, never>
  mode: ProcoreMode
  status: ProcoreConnectionStatus
  /** Service account (client credentials): its client id. Authorization code: null (the app's). */
  client_id: string | null
  client_secret: string | null
  access_token: string | null
  access_token_expires_at: Date | null
  refresh_token: string | null
  token_version: Generated<number>
  refresh_lease_until: Date | null
  reauth_reason: string | null
  connected_by: string | null
  connected_at: Date | null
  refreshed_at: Date | null
  /** The Procore company chosen in onboarding; null: the company's own id. */
  procore_company_id: ColumnType<string | null, string | null | undefined, string | null>
  /** The standard cost code list chosen in onboarding; null: the company's ERP list. */
  cost_code_list_id: ColumnType<string | null, string | null | undefined, string | null>
  version: Generated<number>
  created_at: ColumnType<Date, never, never>
  updated_at: Now
}

export interface ProcoreOauthStatesTable {
  nonce: string
  company_id: ColumnType<string, string, never>
  requested_by: string
  created_at: ColumnType<Date, never, never>
  expires_at: Date
  used_at: Date | null
}

export interface ProcoreTriggerState {
  resourceName: string
  eventType: string
  /** active: installed; unsupported: Procore refused it (see message). */
  status: 'active' | 'unsupported'
  message: string | null
}

export interface ProcoreWebhooksTable {
  company_id: ColumnType<string, string, never>
  hook_id: string | null
  namespace: string
  api_version: string
  destination_url: string
  /** SHA-256 (hex) of the Authorization header value Procore sends. */
  secret_hash: string
  previous_secret_hash: string | null
  previous_valid_until: Date | null
  secret_rotated_at: Date
  triggers: ColumnType<ProcoreTriggerState[], string | undefined, string>
  installed_at: Date | null
  updated_at: Now
}
