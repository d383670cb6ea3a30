import { sql, type Kysely } from 'kysely'

// Frozen: never edit after it has shipped; add a new migration instead.
export async function up(db: Kysely<any>): Promise<void> {
  // The last known state of every record on each side; all comparison runs on these rows.
  await db.schema
    .createTable('record_snapshots')
    .addColumn('company_id', 'bigint', (c) => c.notNull().references('companies.id').onDelete('restrict'))
    .addColumn('side', 'text', (c) => c.notNull().check(sql`side in ('procore', 'erp')`))
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('external_id', 'text', (c) => c.notNull())
    .addColumn('parent_id', 'text')
    .addColumn('fields', 'jsonb', (c) => c.notNull())
    .addColumn('raw', 'jsonb', (c) => c.notNull())
    .addColumn('content_hash', 'text', (c) => c.notNull())
    .addColumn('source_updated_at', 'timestamptz')
    .addColumn('first_seen_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('changed_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('seen_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('deleted_at', 'timestamptz')
    .addPrimaryKeyConstraint('record_snapshots_pk', ['company_id', 'side', 'type', 'external_id'])
    .execute()
  await db.schema.createIndex('record_snapshots_changed_idx').on('record_snapshots').columns(['company_id', 'type', 'changed_at']).execute()

  // Every webhook or notification we acknowledged, raw, with its processing state.
  await db.schema
    .createTable('inbox_events')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('company_id', 'bigint', (c) => c.notNull().references('companies.id').onDelete('restrict'))
    .addColumn('source', 'text', (c) => c.notNull().check(sql`source in ('procore', 'erp')`))
    .addColumn('dedupe_key', 'text', (c) => c.notNull())
    .addColumn('received_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('headers', 'jsonb', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('event_type', 'text')
    .addColumn('record_type', 'text')
    .addColumn('resource_id', 'text')
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('queued', 'processed', 'skipped', 'quarantined', 'failed')`))
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_error', 'text')
    .addColumn('processed_at', 'timestamptz')
    .addUniqueConstraint('inbox_events_dedupe', ['company_id', 'source', 'dedupe_key'])
    .execute()
  await db.schema.createIndex('inbox_events_status_idx').on('inbox_events').columns(['company_id', 'status', 'id']).execute()

  // Long-running work a caller can poll: refreshes, reconciliations, bulk creates.
  await db.schema
    .createTable('sync_runs')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('company_id', 'bigint', (c) => c.notNull().references('companies.id').onDelete('restrict'))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('queued', 'running', 'succeeded', 'failed')`))
    .addColumn('params', 'jsonb', (c) => c.notNull())
    .addColumn('result', 'jsonb')
    .addColumn('error', 'text')
    .addColumn('requested_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('started_at', 'timestamptz')
    .addColumn('finished_at', 'timestamptz')
    .execute()
  await db.schema.createIndex('sync_runs_company_idx').on('sync_runs').columns(['company_id', 'kind', 'created_at']).execute()

  // Liveness of background workers: jobs held by a worker that stopped beating are released.
  await db.schema
    .createTable('worker_heartbeats')
    .addColumn('worker_id', 'text', (c) => c.primaryKey())
    .addColumn('beat_at', 'timestamptz', (c) => c.notNull())
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('worker_heartbeats').execute()
  await db.schema.dropTable('sync_runs').execute()
  await db.schema.dropTable('inbox_events').execute()
  await db.schema.dropTable('record_snapshots').execute()
}
