import type { ColumnType } from 'kysely'

type Json<T> = ColumnType<T, string, string>

/** Amounts of one job cost total, decimal strings with two decimals as the ERP sends them. */
export interface JobCostAmounts {
  budget: string
  actual: string
  committed: string
}

/** The last job cost total Procore accepted, per ERP job, cost code and cost type, with its hash. */
export interface JobCostRowsTable {
  company_id: ColumnType<string, string, never>
  erp_job_id: string
  cost_code: string
  cost_type: string
  procore_project_id: string
  hash: string
  amounts: Json<JobCostAmounts>
  sent_at: ColumnType<Date, Date | undefined, Date>
  run_id: string | null
}

/** Procore projects whose ERP job-cost syncing setting was turned on by the service. */
export interface JobCostProjectsTable {
  company_id: ColumnType<string, string, never>
  procore_project_id: string
  syncing_enabled_at: ColumnType<Date, Date | undefined, Date>
}
