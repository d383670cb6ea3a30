import { sql, type Kysely } from 'kysely'

// Frozen: never edit after it has shipped; add a new migration instead.
export async function up(db: Kysely<any>): Promise<void> {
  // The company's ERP standard cost code list in Procore, as last read from Procore: link
  // prerequisites are checked against it inside database transactions, where Procore is not called.
  await db.schema
    .createTable('procore_erp_lists')
    .addColumn('company_id', 'bigint', (c) => c.primaryKey().references('companies.id').onDelete('cascade'))
    .addColumn('list_id', 'text', (c) => c.notNull())
    .addColumn('seen_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('procore_erp_lists').execute()
}
