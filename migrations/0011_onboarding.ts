import { sql, type Kysely } from 'kysely'

// Frozen: never edit after it has shipped; add a new migration instead.
export async function up(db: Kysely<any>): Promise<void> {
  // The Procore company and standard cost code list an admin chose in onboarding's first step;
  // null: the company's own id and its ERP list (as before).
  await db.schema
    .alterTable('procore_connections')
    .addColumn('procore_company_id', 'text')
    .addColumn('cost_code_list_id', 'text')
    .execute()

  // Where each onboarding step of a company stands: what was asked last, the run performing it,
  // what it did. GET …/onboarding reads it; a step asked again replaces its row.
  await db.schema
    .createTable('onboarding_steps')
    .addColumn('company_id', 'bigint', (c) => c.notNull().references('companies.id').onDelete('cascade'))
    .addColumn('step', 'text', (c) =>
      c.notNull().check(sql`step in ('company', 'users', 'projects', 'cost_codes', 'settings')`),
    )
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('in_progress', 'done', 'skipped')`))
    .addColumn('options', 'jsonb', (c) => c.notNull())
    .addColumn('run_id', 'uuid', (c) => c.references('sync_runs.id').onDelete('set null'))
    .addColumn('result', 'jsonb')
    .addColumn('updated_by', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('onboarding_steps_pkey', ['company_id', 'step'])
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('onboarding_steps').execute()
  await db.schema.alterTable('procore_connections').dropColumn('procore_company_id').dropColumn('cost_code_list_id').execute()
}
