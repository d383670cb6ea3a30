import type { Migration } from 'kysely/migration'
import * as m0001 from './0001_foundation.js'
import * as m0002 from './0002_records_inbox_runs.js'
import * as m0003 from './0003_procore.js'
import * as m0004 from './0004_erp.js'
import * as m0005 from './0005_sync.js'
import * as m0006 from './0006_schedules.js'
import * as m0007 from './0007_exports.js'
import * as m0008 from './0008_project_links.js'
import * as m0009 from './0009_job_costs.js'
import * as m0010 from './0010_invoice_payments.js'
import * as m0011 from './0011_onboarding.js'
import * as m0012 from './0012_time_entries.js'
import * as m0013 from './0013_record_items.js'

/**
 * Every migration, in order. A static list (not a folder scan) so that the same code runs from
 * TypeScript sources and from the compiled build. Names are frozen once shipped.
 */
export const migrations: Record<string, Migration> = {
  '0001_foundation': m0001,
  '0002_records_inbox_runs': m0002,
  '0003_procore': m0003,
  '0004_erp': m0004,
  '0005_sync': m0005,
  '0006_schedules': m0006,
  '0007_exports': m0007,
  '0008_project_links': m0008,
  '0009_job_costs': m0009,
  '0010_invoice_payments': m0010,
  '0011_onboarding': m0011,
  '0012_time_entries': m0012,
  '0013_record_items': m0013,
}
