import { sql, type Kysely } from 'kysely'

// Frozen: never edit after it has shipped; add a new migration instead.
export async function up(db: Kysely<any>): Promise<void> {
  // One Procore connection per company. Secrets are AES-256-GCM sealed by the app (key id inside
  // each value, bound to company and column), never stored in clear.
  await db.schema
    .createTable('procore_connections')
    .addColumn('company_id', 'bigint', (c) => c.primaryKey().references('companies.id').onDelete('restrict'))
    .addColumn('mode', 'text', (c) => c.notNull().check(sql`mode in ('client_credentials', 'authorization_code')`))
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('connected', 'needs_reauth', 'disconnected')`))
    .addColumn('client_id', 'text')
    .addColumn('client_secret', 'text')
    .addColumn('access_token', 'text')
    .addColumn('access_token_expires_at', 'timestamptz')
    .addColumn('refresh_token', 'text')
    // Bumped by every token change; a refresh is only stored over the version it started from.
    .addColumn('token_version', 'integer', (c) => c.notNull().defaultTo(0))
    // Cross-process single flight: whoever holds the lease talks to the token endpoint.
    .addColumn('refresh_lease_until', 'timestamptz')
    .addColumn('reauth_reason', 'text')
    .addColumn('connected_by', 'text')
    .addColumn('connected_at', 'timestamptz')
    .addColumn('refreshed_at', 'timestamptz')
    .addColumn('version', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()

  // OAuth `state` values handed out by connect: signed and expiring, and single use through this row.
  await db.schema
    .createTable('procore_oauth_states')
    .addColumn('nonce', 'text', (c) => c.primaryKey())
    .addColumn('company_id', 'bigint', (c) => c.notNull().references('companies.id').onDelete('cascade'))
    .addColumn('requested_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz')
    .execute()
  await db.schema.createIndex('procore_oauth_states_expires_idx').on('procore_oauth_states').column('expires_at').execute()

  // Our hook in Procore per company. The webhook secret is kept only as a SHA-256 hash of the
  // Authorization header value Procore sends (which names the company, so lookups are by key);
  // the previous one stays valid for a grace period.
  await db.schema
    .createTable('procore_webhooks')
    .addColumn('company_id', 'bigint', (c) => c.primaryKey().references('companies.id').onDelete('restrict'))
    .addColumn('hook_id', 'text')
    .addColumn('namespace', 'text', (c) => c.notNull())
    .addColumn('api_version', 'text', (c) => c.notNull())
    .addColumn('destination_url', 'text', (c) => c.notNull())
    .addColumn('secret_hash', 'text', (c) => c.notNull())
    .addColumn('previous_secret_hash', 'text')
    .addColumn('previous_valid_until', 'timestamptz')
    .addColumn('secret_rotated_at', 'timestamptz', (c) => c.notNull())
    .addColumn('triggers', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('installed_at', 'timestamptz')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('procore_webhooks').execute()
  await db.schema.dropTable('procore_oauth_states').execute()
  await db.schema.dropTable('procore_connections').execute()
}
