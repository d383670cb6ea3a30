import { sql, type Kysely } from 'kysely'

// Frozen: never edit after it has shipped; add a new migration instead.
export async function up(db: Kysely<any>): Promise<void> {
  // Each ERP payment of a linked invoice as last issued on its Procore commitment: what was sent (its
  // fingerprint) and Procore's id, so a payments run sends only what changed and never issues one twice.
  await db.schema
    .createTable('invoice_payments')
    .addColumn('company_id', 'bigint', (c) => c.notNull().references('companies.id').onDelete('cascade'))
    .addColumn('erp_payment_id', 'text', (c) => c.notNull())
    .addColumn('procore_payment_id', 'text', (c) => c.notNull())
    .addColumn('procore_invoice_id', 'text', (c) => c.notNull())
    .addColumn('commitment_id', 'text', (c) => c.notNull())
    .addColumn('fingerprint', 'text', (c) => c.notNull())
    .addColumn('erp_updated_at', 'text', (c) => c.notNull())
    .addColumn('synced_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('invoice_payments_pkey', ['company_id', 'erp_payment_id'])
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('invoice_payments').execute()
}
