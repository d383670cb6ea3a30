import { sql, type Kysely } from 'kysely'

// Frozen: never edit after it has shipped; add a new migration instead.
export async function up(db: Kysely<any>): Promise<void> {
  // What the last successful send of each job cost total put in Procore: one row per ERP job, cost code and
  // cost type, with the hash of what was sent. A run sends only rows whose hash changed; a row is written
  // after Procore accepted it, so a crash between the two resends it (Procore's totals replace, never add).
  await db.schema
    .createTable('job_cost_rows')
    .addColumn('company_id', 'bigint', (c) => c.notNull().references('companies.id').onDelete('cascade'))
    .addColumn('erp_job_id', 'text', (c) => c.notNull())
    .addColumn('cost_code', 'text', (c) => c.notNull())
    .addColumn('cost_type', 'text', (c) => c.notNull())
    .addColumn('procore_project_id', 'text', (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull())
    // Decimal strings as the ERP sent them (never floats): budget, actual, committed.
    .addColumn('amounts', 'jsonb', (c) => c.notNull())
    .addColumn('sent_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('run_id', 'uuid')
    .addPrimaryKeyConstraint('job_cost_rows_pk', ['company_id', 'erp_job_id', 'cost_code', 'cost_type'])
    .execute()
  await db.schema
    .createIndex('job_cost_rows_project_idx')
    .on('job_cost_rows')
    .columns(['company_id', 'procore_project_id'])
    .execute()

  // Procore projects whose ERP job-cost syncing setting the service turned on (once per project).
  await db.schema
    .createTable('job_cost_projects')
    .addColumn('company_id', 'bigint', (c) => c.notNull().references('companies.id').onDelete('cascade'))
    .addColumn('procore_project_id', 'text', (c) => c.notNull())
    .addColumn('syncing_enabled_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('job_cost_projects_pk', ['company_id', 'procore_project_id'])
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('job_cost_projects').execute()
  await db.schema.dropTable('job_cost_rows').execute()
}
