import type { Kysely, Transaction } from 'kysely'
import type { ApiKeyCompaniesTable, ApiKeysTable } from './tables/api-keys.js'
import type { CompaniesTable } from './tables/companies.js'
import type { ErpConnectionsTable } from './tables/erp.js'
import type {
  ExportRequestsTable,
  ExportSettingsTable,
  ExportTransitionsTable,
  WebhookDeliveriesTable,
  WebhookSubscriptionsTable,
} from './tables/exports.js'
import type { IdempotencyKeysTable } from './tables/idempotency-keys.js'
import type { JobCostProjectsTable, JobCostRowsTable } from './tables/job-costs.js'
import type { InvoicePaymentsTable } from './tables/financials.js'
import type { OnboardingStepsTable } from './tables/onboarding.js'
import type { ProcoreConnectionsTable, ProcoreOauthStatesTable, ProcoreWebhooksTable } from './tables/procore.js'
import type { ProcoreRateObservationsTable, SyncScheduleSettingsTable, SyncSchedulesTable } from './tables/schedules.js'
import type { InboxEventsTable, RecordSnapshotsTable, SyncRunsTable, WorkerHeartbeatsTable } from './tables/records.js'
import type {
  AuditEntriesTable,
  DiscrepanciesTable,
  ProcoreErpListsTable,
  RecordFlagsTable,
  RecordItemCountsTable,
  RecordItemDirtyTable,
  RecordItemsTable,
  RecordKeysTable,
  RecordLinksTable,
  SyncCreatesTable,
  SyncDirtyTable,
  SyncSettingsTable,
} from './tables/sync.js'
import type { TimeEntriesTable } from './tables/timecards.js'

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
  record_items: RecordItemsTable
  record_item_counts: RecordItemCountsTable
  record_item_dirty: RecordItemDirtyTable
  discrepancies: DiscrepanciesTable
  sync_settings: SyncSettingsTable
  audit_entries: AuditEntriesTable
  sync_creates: SyncCreatesTable
  sync_dirty: SyncDirtyTable
  sync_schedule_settings: SyncScheduleSettingsTable
  sync_schedules: SyncSchedulesTable
  procore_rate_observations: ProcoreRateObservationsTable
  procore_erp_lists: ProcoreErpListsTable
  export_requests: ExportRequestsTable
  export_transitions: ExportTransitionsTable
  export_settings: ExportSettingsTable
  webhook_subscriptions: WebhookSubscriptionsTable
  webhook_deliveries: WebhookDeliveriesTable
  job_cost_rows: JobCostRowsTable
  job_cost_projects: JobCostProjectsTable
  invoice_payments: InvoicePaymentsTable
  onboarding_steps: OnboardingStepsTable
  time_entries: TimeEntriesTable
}

export type Db = Kysely<Database>

/**
 * A handle inside an open transaction. A function that takes row locks, or whose writes must
 * commit or roll back with its caller's, takes a `Tx`: a plain `Db` is refused at compile time.
 * A function that opens its own transaction takes a `Db` and calls `transaction`.
 */
export type Tx = Transaction<Database>

type AfterCommit = () => void | Promise<void>

const afterCommits = new WeakMap<Tx, AfterCommit[]>()
type LastInTx = () => Promise<void>
const lastInTxs = new WeakMap<Tx, Map<string, LastInTx>>()

/**
 * Runs `fn` in a new transaction: committed when `fn` resolves, rolled back when it throws.
 * Work registered with `afterCommit` runs once the commit succeeded, in order, before this
 * returns; after a rollback it never runs.
 */
export async function transaction<T>(db: Db, fn: (tx: Tx) => Promise<T>): Promise<T> {
  // Kysely has no nested transactions; joining silently would hide which function owns the commit.
  if (db.isTransaction) {
    throw new Error("transaction() was given a transaction: a function that joins its caller's transaction takes a Tx")
  }
  const callbacks: AfterCommit[] = []
  const result = await db.transaction().execute(async (tx) => {
    afterCommits.set(tx, callbacks)
    const last = new Map<string, LastInTx>()
    lastInTxs.set(tx, last)
    try {
      const value = await fn(tx)
      for (const key of [...last.keys()].sort()) await last.get(key)!()
      return value
    } finally {
      afterCommits.delete(tx)
      lastInTxs.delete(tx)
    }
  })
  const errors: unknown[] = []
  for (const callback of callbacks) {
    try {
      await callback()
    } catch (error) {
      errors.push(error)
    }
  }
  // The commit stands either way; a failed follow-up is reported, and the others still ran.
  if (errors.length === 1) throw errors[0]
  if (errors.length > 1) throw new AggregateError(errors, 'work after the commit failed')
  return result
}

/**
 * Follow-up work for after `tx` commits (a network call, a cache to forget): never inside the
 * transaction, never after a rollback. `tx` must come from `transaction`.
 */
export function afterCommit(tx: Tx, callback: AfterCommit): void {
  const callbacks = afterCommits.get(tx)
  if (!callbacks) throw new Error('afterCommit() needs a transaction opened by transaction() that is still open')
  callbacks.push(callback)
}

/**
 * Work for the end of `tx`, inside it, once per key, in key order: what every writer of a company takes (a keyed
 * job's row) is then taken last and in one order, so two transactions that each hold a record the other wants
 * next cannot also wait on each other for it (a deadlock). Runs at once when `db` is not a transaction opened
 * by `transaction`.
 */
export async function lastInTransaction(db: Db, key: string, work: (db: Db) => Promise<void>): Promise<void> {
  const last = db.isTransaction ? lastInTxs.get(db as Tx) : undefined
  if (last) last.set(key, () => work(db))
  else await work(db)
}
