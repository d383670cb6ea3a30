import { sql, type Kysely } from 'kysely'

// Frozen: never edit after it has shipped; add a new migration instead.
export async function up(db: Kysely<any>): Promise<void> {
  // One ERP agent per company. Secrets are AES-GCM sealed by the app (bound to company and column);
  // the agent's self-description from the last successful connection test is kept in `info`.
  await db.schema
    .createTable('erp_connections')
    .addColumn('company_id', 'bigint', (c) => c.primaryKey().references('companies.id').onDelete('restrict'))
    .addColumn('base_url', 'text', (c) => c.notNull())
    .addColumn('token_sealed', 'text', (c) => c.notNull())
    .addColumn('system', 'text', (c) => c.notNull())
    .addColumn('company_name', 'text', (c) => c.notNull())
    .addColumn('protocol_version', 'text', (c) => c.notNull())
    .addColumn('info', 'jsonb', (c) => c.notNull())
    .addColumn('notification_secret_sealed', 'text', (c) => c.notNull())
    .addColumn('secret_created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('previous_notification_secret_sealed', 'text')
    .addColumn('previous_secret_expires_at', 'timestamptz')
    .addColumn('last_checked_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('last_check_failure', 'jsonb')
    .addColumn('version', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addCheckConstraint('erp_connections_previous_secret', sql`(previous_notification_secret_sealed is null) = (previous_secret_expires_at is null)`)
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('erp_connections').execute()
}
