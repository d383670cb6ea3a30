import { sql, type Kysely } from 'kysely'

// Frozen: never edit after it has shipped; add a new migration instead.
export async function up(db: Kysely<any>): Promise<void> {
  // Procore types a timecard entry's origin_id as an integer, while time-keeping systems name
  // entries with text: each entry gets a number from this sequence once, kept for good.
  await sql`create sequence time_entry_origin_ids as bigint start 1`.execute(db)
  await db.schema
    .createTable('time_entries')
    .addColumn('company_id', 'bigint', (c) => c.notNull().references('companies.id').onDelete('cascade'))
    .addColumn('external_id', 'text', (c) => c.notNull())
    .addColumn('origin_id', 'bigint', (c) =>
      c
        .notNull()
        .unique()
        .defaultTo(sql`nextval('time_entry_origin_ids')`),
    )
    // What the caller sent, and the Procore references it resolved to when it was accepted.
    .addColumn('entry', 'jsonb', (c) => c.notNull())
    .addColumn('procore_body', 'jsonb', (c) => c.notNull())
    .addColumn('content_hash', 'text', (c) => c.notNull())
    .addColumn('entry_date', 'text', (c) => c.notNull())
    .addColumn('party_id', 'text', (c) => c.notNull())
    .addColumn('approved_at', 'timestamptz', (c) => c.notNull())
    // present: Procore should hold the entry as sent; absent: voided, Procore should not hold it.
    .addColumn('wanted', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('error', 'text')
    .addColumn('procore_id', 'text')
    .addColumn('sent_hash', 'text')
    // Set before a create is sent: after a crash or a lost answer, the twin is looked up by origin_id first.
    .addColumn('create_sent_at', 'timestamptz')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('version', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('sent_at', 'timestamptz')
    .addPrimaryKeyConstraint('time_entries_pkey', ['company_id', 'external_id'])
    .execute()
  await db.schema
    .createIndex('time_entries_pending')
    .on('time_entries')
    .columns(['company_id', 'updated_at'])
    .where(sql.ref('status'), '=', 'pending')
    .execute()
  await db.schema
    .createIndex('time_entries_list')
    .on('time_entries')
    .columns(['company_id', 'status', 'entry_date'])
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('time_entries').execute()
  await sql`drop sequence time_entry_origin_ids`.execute(db)
}
