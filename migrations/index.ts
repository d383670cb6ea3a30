import type { Migration } from 'kysely'
import * as m0001 from './0001_foundation.js'
import * as m0002 from './0002_records_inbox_runs.js'

/**
 * Every migration, in order. A static list (not a folder scan) so that the same code runs from
 * TypeScript sources and from the compiled build. Names are frozen once shipped.
 */
export const migrations: Record<string, Migration> = {
  '0001_foundation': m0001,
  '0002_records_inbox_runs': m0002,
}
