import type { Kysely, Transaction } from 'kysely'
import type { ApiKeyCompaniesTable, ApiKeysTable } from './tables/api-keys.js'
import type { CompaniesTable } from './tables/companies.js'
import type { ErpConnectionsTable } from './tables/erp.js'
import type { IdempotencyKeysTable } from './tables/idempotency-keys.js'
import type { ProcoreConnectionsTable, ProcoreOauthStatesTable, ProcoreWebhooksTable } from './tables/procore.js'
import type { InboxEventsTable, RecordSnapshotsTable, SyncRunsTable, WorkerHeartbeatsTable } from './tables/records.js'
import type { AuditEntriesTable, DiscrepanciesTable, RecordFlagsTable, RecordKeysTable, RecordLinksTable, SyncCreatesTable, SyncDirtyTable, SyncSettingsTable } from './tables/sync.js'

/** The one source of row types. Add a table: a file in tables/ and a line here. */
export interface Database {
  companies: CompaniesTable
  api_keys: ApiKeysTable
  api_key_companies: ApiKeyCompaniesTable
  idempotency_keys: IdempotencyKeysTable
  record_snapshots: RecordSnapshotsTable
  inbox_events: InboxEventsTable
  sync_runs: SyncRunsTable
  worker_heartbeats: WorkerHeartbeatsTable
  erp_connections: ErpConnectionsTable
  procore_connections: ProcoreConnectionsTable
  procore_oauth_states: ProcoreOauthStatesTable
  procore_webhooks: ProcoreWebhooksTable
  record_links: RecordLinksTable
  record_keys: RecordKeysTable
  record_flags: RecordFlagsTable
  discrepancies: DiscrepanciesTable
  sync_settings: SyncSettingsTable
  audit_entries: AuditEntriesTable
  sync_creates: SyncCreatesTable
  sync_dirty: SyncDirtyTable
}

export type Db = Kysely<Database>
export type Tx = Transaction<Database>

/** Runs `fn` in the caller's transaction, or in a new one. */
export async function inTransaction<T>(db: Db, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return db.isTransaction ? fn(db as Tx) : db.transaction().execute(fn)
}
