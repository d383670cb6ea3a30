import { sql, type Kysely } from 'kysely'

// Frozen: never edit after it has shipped; add a new migration instead.
export async function up(db: Kysely<any>): Promise<void> {
  // A company's schedule as a whole: its time zone (for daily times) and the version behind its ETag.
  await db.schema
    .createTable('sync_schedule_settings')
    .addColumn('company_id', 'bigint', (c) => c.primaryKey().references('companies.id').onDelete('restrict'))
    .addColumn('time_zone', 'text', (c) => c.notNull().defaultTo('UTC'))
    .addColumn('version', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('updated_by', 'text')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()

  // One row per company and sync type: its interval and when it is due next. The scheduler claims due rows
  // with FOR UPDATE SKIP LOCKED and moves next_due_at on in the same transaction.
  await db.schema
    .createTable('sync_schedules')
    .addColumn('company_id', 'bigint', (c) => c.notNull().references('companies.id').onDelete('restrict'))
    .addColumn('sync_type', 'text', (c) => c.notNull())
    .addColumn('interval', 'text', (c) =>
      c.notNull().check(sql`interval in ('hourly', 'every_2_hours', 'every_4_hours', 'daily', 'never')`),
    )
    .addColumn('time_of_day', 'text')
    .addColumn('next_due_at', 'timestamptz')
    .addColumn('last_due_at', 'timestamptz')
    .addColumn('last_run_id', 'uuid')
    .addColumn('deferred_reason', 'text')
    .addPrimaryKeyConstraint('sync_schedules_pk', ['company_id', 'sync_type'])
    .execute()
  await db.schema
    .createIndex('sync_schedules_due_idx')
    .on('sync_schedules')
    .column('next_due_at')
    .where(sql.ref('next_due_at'), 'is not', null)
    .execute()

  // Runs learn which sync type and what started them, and can be cancelled or end interrupted.
  await db.schema
    .alterTable('sync_runs')
    .addColumn('sync_type', 'text')
    .addColumn('trigger', 'text', (c) => c.notNull().defaultTo('manual'))
    .addColumn('cancel_requested_at', 'timestamptz')
    .execute()
  await sql`alter table sync_runs drop constraint sync_runs_status_check`.execute(db)
  await sql`alter table sync_runs add constraint sync_runs_status_check
    check (status in ('queued', 'running', 'succeeded', 'failed', 'interrupted', 'cancelled'))`.execute(db)
  // At most one unfinished run per company and sync type, whichever instance asks.
  await sql`create unique index sync_runs_one_active_idx on sync_runs (company_id, sync_type)
    where sync_type is not null and status in ('queued', 'running')`.execute(db)
  await db.schema
    .createIndex('sync_runs_sync_type_idx')
    .on('sync_runs')
    .columns(['company_id', 'sync_type', 'created_at'])
    .execute()

  // The last Procore rate-limit headers a listing saw per company, so any instance's scheduler can defer.
  await db.schema
    .createTable('procore_rate_observations')
    .addColumn('company_id', 'bigint', (c) => c.primaryKey().references('companies.id').onDelete('restrict'))
    .addColumn('remaining', 'integer', (c) => c.notNull())
    .addColumn('reset_at', 'timestamptz', (c) => c.notNull())
    .addColumn('observed_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('procore_rate_observations').execute()
  await db.schema.dropIndex('sync_runs_sync_type_idx').execute()
  await db.schema.dropIndex('sync_runs_one_active_idx').execute()
  await sql`update sync_runs set status = 'failed' where status in ('interrupted', 'cancelled')`.execute(db)
  await sql`alter table sync_runs drop constraint sync_runs_status_check`.execute(db)
  await sql`alter table sync_runs add constraint sync_runs_status_check
    check (status in ('queued', 'running', 'succeeded', 'failed'))`.execute(db)
  await db.schema
    .alterTable('sync_runs')
    .dropColumn('cancel_requested_at')
    .dropColumn('trigger')
    .dropColumn('sync_type')
    .execute()
  await db.schema.dropTable('sync_schedules').execute()
  await db.schema.dropTable('sync_schedule_settings').execute()
}
