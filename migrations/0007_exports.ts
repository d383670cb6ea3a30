import { sql, type Kysely } from 'kysely'

// Frozen: never edit after it has shipped; add a new migration instead.
export async function up(db: Kysely<any>): Promise<void> {
  // A Procore record sent to the ERP for an accounting approver's decision. The record as sent is
  // frozen in sent_fields; a re-send is a new row pointing at the one before (previous_id).
  await db.schema
    .createTable('export_requests')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('company_id', 'bigint', (c) => c.notNull().references('companies.id').onDelete('restrict'))
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('procore_id', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) =>
      c.notNull().check(sql`status in ('pending_acceptance', 'exporting', 'failed_to_export', 'exported', 'rejected', 'retrieved', 'withdrawn')`),
    )
    .addColumn('version', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('note', 'text')
    .addColumn('sent_by', 'jsonb', (c) => c.notNull())
    .addColumn('sent_fields', 'jsonb', (c) => c.notNull())
    .addColumn('previous_id', 'uuid', (c) => c.references('export_requests.id'))
    // What the approver chose on accept; the attempt numbers each accept (Idempotency-Key).
    .addColumn('erp_code', 'text')
    .addColumn('company_type', 'text')
    .addColumn('overrides', 'jsonb')
    .addColumn('attempt', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('run_id', 'uuid')
    .addColumn('erp_id', 'text')
    .addColumn('link_id', 'uuid')
    // The ERP's messages of a failed export, the reason of a rejection or withdrawal.
    .addColumn('messages', 'jsonb')
    .addColumn('reason', 'text')
    .addColumn('sent_by_key', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()
  // At most one open request per record: this is the hold.
  await sql`create unique index export_requests_open on export_requests (company_id, type, procore_id)
    where status in ('pending_acceptance', 'exporting', 'failed_to_export')`.execute(db)
  await db.schema.createIndex('export_requests_list_idx').on('export_requests').columns(['company_id', 'created_at', 'id']).execute()
  await db.schema.createIndex('export_requests_record_idx').on('export_requests').columns(['company_id', 'type', 'procore_id', 'created_at']).execute()

  // Every transition of a request, in order: its history.
  await db.schema
    .createTable('export_transitions')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('request_id', 'uuid', (c) => c.notNull().references('export_requests.id').onDelete('cascade'))
    .addColumn('at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('from_status', 'text')
    .addColumn('to_status', 'text', (c) => c.notNull())
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('person', 'text')
    .addColumn('detail', 'text')
    .execute()
  await db.schema.createIndex('export_transitions_request_idx').on('export_transitions').columns(['request_id', 'id']).execute()

  // Per company and record type: whether a request waits for an approver (default) or exports at once.
  await db.schema
    .createTable('export_settings')
    .addColumn('company_id', 'bigint', (c) => c.notNull().references('companies.id').onDelete('restrict'))
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('require_approval', 'boolean', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('export_settings_pk', ['company_id', 'type'])
    .execute()

  // Outbound webhooks to the company's own systems; the signing secret is sealed (SecretBox).
  await db.schema
    .createTable('webhook_subscriptions')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('company_id', 'bigint', (c) => c.notNull().references('companies.id').onDelete('restrict'))
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('events', 'jsonb', (c) => c.notNull())
    .addColumn('secret', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('deleted_at', 'timestamptz')
    .execute()
  await db.schema.createIndex('webhook_subscriptions_company_idx').on('webhook_subscriptions').columns(['company_id', 'created_at', 'id']).execute()

  // One row per event and subscription: the message as signed and sent, and how its delivery went.
  await db.schema
    .createTable('webhook_deliveries')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('subscription_id', 'uuid', (c) => c.notNull().references('webhook_subscriptions.id').onDelete('cascade'))
    .addColumn('company_id', 'bigint', (c) => c.notNull())
    .addColumn('event', 'text', (c) => c.notNull())
    .addColumn('payload', 'jsonb', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('pending', 'delivered', 'failed')`))
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_status', 'integer')
    .addColumn('last_error', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('finished_at', 'timestamptz')
    .execute()
  await db.schema.createIndex('webhook_deliveries_sub_idx').on('webhook_deliveries').columns(['subscription_id', 'created_at', 'id']).execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('webhook_deliveries').execute()
  await db.schema.dropTable('webhook_subscriptions').execute()
  await db.schema.dropTable('export_settings').execute()
  await db.schema.dropTable('export_transitions').execute()
  await db.schema.dropTable('export_requests').execute()
}
