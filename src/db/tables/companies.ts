import type { ColumnType, Generated } from 'kysely'

export const ErpSystems = ['foundation', 'sage300', 'vista', 'spectrum', 'quickbooks_desktop', 'generic'] as const
export type ErpSystem = (typeof ErpSystems)[number]

/** One Procore company. Its id is Procore's 64-bit company id (pg returns int8 as a string). */
export interface CompaniesTable {
  id: ColumnType<string, string | bigint, never>
  name: string
  erp_system: ErpSystem
  version: Generated<number>
  created_at: ColumnType<Date, never, never>
  updated_at: ColumnType<Date, never, Date>
}
