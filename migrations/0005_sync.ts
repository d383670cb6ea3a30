import { sql, type Kysely } from 'kysely'

// Frozen: never edit after it has shipped; add a new migration instead.
export async function up(db: Kysely<any>): Promise<void> {
  // Trigram similarity for match suggestions and search (a trusted extension since PostgreSQL 13,
  // so the database owner may create it; shipped with PostgreSQL 15 and the embedded 18). The
  // down migration leaves it: other schemas may use it, and it holds no data.
  await sql`create extension if not exists pg_trgm`.execute(db)

  // A Procore record paired with its ERP twin. At most one active link per record and side;
  // unlinking keeps the row (history), so the uniqueness is over active links only.
  await db.schema
    .createTable('record_links')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('company_id', 'bigint', (c) => c.notNull().references('companies.id').onDelete('restrict'))
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('procore_id', 'text', (c) => c.notNull())
    .addColumn('erp_id', 'text', (c) => c.notNull())
    // Whether Procore's origin_id/origin_code reflect this link yet: pending → set; on unlink clearing → cleared;
    // failed when Procore refused the write (origin_error says why).
    .addColumn('origin_state', 'text', (c) => c.notNull().check(sql`origin_state in ('pending', 'set', 'clearing', 'cleared', 'failed')`))
    .addColumn('origin_error', 'text')
    .addColumn('version', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('unlinked_by', 'text')
    .addColumn('unlinked_at', 'timestamptz')
    .execute()
  await sql`create unique index record_links_procore_active on record_links (company_id, type, procore_id) where unlinked_at is null`.execute(db)
  await sql`create unique index record_links_erp_active on record_links (company_id, type, erp_id) where unlinked_at is null`.execute(db)
  await sql`create index record_links_origin_pending on record_links (company_id, type) where origin_state in ('pending', 'clearing')`.execute(db)
  await db.schema.createIndex('record_links_company_idx').on('record_links').columns(['company_id', 'type', 'created_at']).execute()

  // Normalised match keys of every live record, one row per key: exact keys are joined by
  // (key, value); the `name` key is compared by trigram similarity. Written with the snapshot.
  await db.schema
    .createTable('record_keys')
    .addColumn('company_id', 'bigint', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('side', 'text', (c) => c.notNull())
    .addColumn('external_id', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('value', 'text', (c) => c.notNull())
    .addColumn('parent_id', 'text')
    // No foreign key to record_snapshots: the keys are written with the snapshot in one
    // transaction, and a per-row RI check on every bulk upsert cost more than the keys themselves.
    .addPrimaryKeyConstraint('record_keys_pk', ['company_id', 'type', 'side', 'external_id', 'key'])
    .execute()
  await db.schema.createIndex('record_keys_value_idx').on('record_keys').columns(['company_id', 'type', 'key', 'value', 'side']).execute()
  // A small pending list: inserts are batched into the index (one at a time they contend on the
  // posting lists of common trigrams), and a probe never scans more than 256 kB of unmerged entries.
  await sql`create index record_keys_name_trgm on record_keys using gin (value gin_trgm_ops) with (fastupdate = on, gin_pending_list_limit = 256) where key = 'name'`.execute(db)

  // Per-record marks: a person chose to ignore it, or the last action on it failed (and why).
  await db.schema
    .createTable('record_flags')
    .addColumn('company_id', 'bigint', (c) => c.notNull().references('companies.id').onDelete('restrict'))
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('side', 'text', (c) => c.notNull().check(sql`side in ('procore', 'erp')`))
    .addColumn('external_id', 'text', (c) => c.notNull())
    .addColumn('ignored_at', 'timestamptz')
    .addColumn('ignored_by', 'text')
    .addColumn('failed_at', 'timestamptz')
    .addColumn('failed_action', 'text')
    .addColumn('failure', 'text')
    .addPrimaryKeyConstraint('record_flags_pk', ['company_id', 'type', 'side', 'external_id'])
    .execute()

  // Linked pairs whose manual-owned fields differ: one open discrepancy per link at a time.
  await db.schema
    .createTable('discrepancies')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('company_id', 'bigint', (c) => c.notNull().references('companies.id').onDelete('restrict'))
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('link_id', 'uuid', (c) => c.notNull().references('record_links.id').onDelete('restrict'))
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('open', 'resolved', 'dismissed')`))
    .addColumn('fields', 'jsonb', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('resolved_at', 'timestamptz')
    .addColumn('resolved_by', 'text')
    .execute()
  await sql`create unique index discrepancies_open_link on discrepancies (link_id) where status = 'open'`.execute(db)
  await db.schema.createIndex('discrepancies_link_idx').on('discrepancies').column('link_id').execute()
  await db.schema.createIndex('discrepancies_company_idx').on('discrepancies').columns(['company_id', 'status', 'type', 'created_at']).execute()

  // Per company, per record type: direction, field owners, auto-import. No row: the defaults.
  await db.schema
    .createTable('sync_settings')
    .addColumn('company_id', 'bigint', (c) => c.primaryKey().references('companies.id').onDelete('restrict'))
    .addColumn('settings', 'jsonb', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('updated_by', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()

  // Who changed what, when, with before and after values and the request behind it.
  await db.schema
    .createTable('audit_entries')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('company_id', 'bigint', (c) => c.notNull().references('companies.id').onDelete('restrict'))
    .addColumn('at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('type', 'text')
    .addColumn('procore_id', 'text')
    .addColumn('erp_id', 'text')
    .addColumn('link_id', 'uuid')
    .addColumn('before', 'jsonb')
    .addColumn('after', 'jsonb')
    .addColumn('request_ids', 'jsonb', (c) => c.notNull())
    .addColumn('detail', 'text')
    .execute()
  await db.schema.createIndex('audit_entries_company_idx').on('audit_entries').columns(['company_id', 'id']).execute()
  // The history of one record (by Procore id, ERP id or link id) is one bitmap OR over these.
  await db.schema.createIndex('audit_entries_procore_idx').on('audit_entries').columns(['company_id', 'procore_id']).execute()
  await db.schema.createIndex('audit_entries_erp_idx').on('audit_entries').columns(['company_id', 'erp_id']).execute()
  await db.schema.createIndex('audit_entries_link_idx').on('audit_entries').columns(['company_id', 'link_id']).execute()

  // Creates on the other side, recorded before the call: the body sent and its key are frozen
  // here, so a rerun after a crash sends the identical request (the ERP replays it, Procore
  // matches it by origin_id) and never makes a second record.
  await db.schema
    .createTable('sync_creates')
    .addColumn('company_id', 'bigint', (c) => c.notNull().references('companies.id').onDelete('restrict'))
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('target', 'text', (c) => c.notNull().check(sql`target in ('procore', 'erp')`))
    .addColumn('source_id', 'text', (c) => c.notNull())
    .addColumn('idempotency_key', 'text', (c) => c.notNull())
    .addColumn('body', 'jsonb', (c) => c.notNull())
    .addColumn('parent_id', 'text')
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('pending', 'created')`))
    .addColumn('target_id', 'text')
    .addColumn('run_id', 'uuid')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('sync_creates_pk', ['company_id', 'type', 'target', 'source_id'])
    .execute()

  // Records whose snapshot changed and that the evaluation job has not looked at since: an
  // append-only log, one row per mark. Writers only insert (a refresh marking thousands of records
  // never waits on the evaluation job), and the job deletes exactly the rows it read, by seq, so a
  // mark added while it worked stays for the next pass.
  await db.schema
    .createTable('sync_dirty')
    .addColumn('seq', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('company_id', 'bigint', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('side', 'text', (c) => c.notNull())
    .addColumn('external_id', 'text', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('sync_dirty_company_idx').on('sync_dirty').columns(['company_id', 'type', 'seq']).execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('sync_dirty').execute()
  await db.schema.dropTable('sync_creates').execute()
  await db.schema.dropTable('audit_entries').execute()
  await db.schema.dropTable('sync_settings').execute()
  await db.schema.dropTable('discrepancies').execute()
  await db.schema.dropTable('record_flags').execute()
  await db.schema.dropTable('record_keys').execute()
  await db.schema.dropTable('record_links').execute()
}
