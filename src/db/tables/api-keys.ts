import type { ColumnType, Generated } from 'kysely'

export const Roles = ['admin', 'approver', 'operator', 'viewer'] as const
export type Role = (typeof Roles)[number]

export interface ApiKeysTable {
  id: Generated<string>
  name: string
  /** Public part of the key, used to find the row; the secret part is only stored as a hash. */
  lookup: string
  secret_hash: Buffer
  role: Role
  /** True: every company. False: only the companies in api_key_companies. */
  all_companies: boolean
  created_at: ColumnType<Date, never, never>
  last_used_at: Date | null
  revoked_at: Date | null
}

export interface ApiKeyCompaniesTable {
  api_key_id: string
  company_id: ColumnType<string, string | bigint, never>
}
