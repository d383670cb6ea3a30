import { sql, type Selectable } from 'kysely'
import type { AppContext } from '../context.js'
import type { Db } from '../db/database.js'
import type { ProcoreConnectionsTable, ProcoreMode, ProcoreWebhooksTable } from '../db/tables/procore.js'
import type { ProcoreConnection } from '../schemas/procore.js'
import { needsReauth, notConnected } from './errors.js'

export type ConnectionRow = Selectable<ProcoreConnectionsTable>
export type SealedField = 'client_secret' | 'access_token' | 'refresh_token'

/** Each sealed value is bound to its company and column: copied anywhere else, it fails to open. */
const aad = (companyId: string, field: SealedField) => `company:${companyId}:procore.${field}`

export const seal = (ctx: AppContext, companyId: string, field: SealedField, value: string): string =>
  ctx.secrets.seal(value, aad(companyId, field))
export const unseal = (ctx: AppContext, companyId: string, field: SealedField, sealed: string): string =>
  ctx.secrets.open(sealed, aad(companyId, field))

export async function loadConnection(db: Db, companyId: string): Promise<ConnectionRow | undefined> {
  return db.selectFrom('procore_connections').selectAll().where('company_id', '=', companyId).executeTakeFirst()
}

/** The connection, if calls can be made with it; otherwise the 409 that says to connect or to reconnect. */
export async function usableConnection(db: Db, companyId: string): Promise<ConnectionRow> {
  const connection = await loadConnection(db, companyId)
  if (!connection || connection.status === 'disconnected') throw notConnected(companyId)
  if (connection.status === 'needs_reauth') throw needsReauth(companyId, connection.reauth_reason)
  return connection
}

export interface NewCredentials {
  mode: ProcoreMode
  clientId: string | null
  clientSecret: string | null
  accessToken: string
  expiresAt: Date
  refreshToken: string | null
  connectedBy: string
}

/** Stores fresh credentials (a new connection, or a reconnect that replaces whatever was there). */
export async function storeCredentials(ctx: AppContext, companyId: string, c: NewCredentials): Promise<ConnectionRow> {
  const values = {
    mode: c.mode,
    status: 'connected' as const,
    client_id: c.clientId,
    client_secret: c.clientSecret === null ? null : seal(ctx, companyId, 'client_secret', c.clientSecret),
    access_token: seal(ctx, companyId, 'access_token', c.accessToken),
    access_token_expires_at: c.expiresAt,
    refresh_token: c.refreshToken === null ? null : seal(ctx, companyId, 'refresh_token', c.refreshToken),
    refresh_lease_until: null,
    reauth_reason: null,
    connected_by: c.connectedBy,
    connected_at: new Date(),
    refreshed_at: null,
    updated_at: new Date(),
  }
  return ctx.db
    .insertInto('procore_connections')
    .values({ company_id: companyId, ...values })
    .onConflict((oc) =>
      oc.column('company_id').doUpdateSet({
        ...values,
        token_version: sql<number>`procore_connections.token_version + 1`,
        version: sql<number>`procore_connections.version + 1`,
      }),
    )
    .returningAll()
    .executeTakeFirstOrThrow()
}

/** Procore refused the credentials: stop using them, with no retry loop, until someone reconnects. */
export async function markNeedsReauth(db: Db, companyId: string, tokenVersion: number, reason: string): Promise<void> {
  await db
    .updateTable('procore_connections')
    .set({
      status: 'needs_reauth',
      reauth_reason: reason.slice(0, 500),
      access_token: null,
      access_token_expires_at: null,
      refresh_token: null,
      refresh_lease_until: null,
      version: sql<number>`version + 1`,
      updated_at: new Date(),
    })
    .where('company_id', '=', companyId)
    .where('token_version', '=', tokenVersion)
    .execute()
}

export async function markDisconnected(db: Db, companyId: string): Promise<void> {
  await db
    .updateTable('procore_connections')
    .set({
      status: 'disconnected',
      client_secret: null,
      access_token: null,
      access_token_expires_at: null,
      refresh_token: null,
      refresh_lease_until: null,
      reauth_reason: null,
      token_version: sql<number>`token_version + 1`,
      version: sql<number>`version + 1`,
      updated_at: new Date(),
    })
    .where('company_id', '=', companyId)
    .execute()
}

/** The id Procore puts in `metadata.source_application_id` for changes made with these credentials. */
export function applicationId(
  ctx: AppContext,
  row: Pick<ConnectionRow, 'mode' | 'client_id'> | undefined,
): string | null {
  if (!row) return null
  return row.mode === 'client_credentials' ? row.client_id : (ctx.config.procore.clientId ?? null)
}

/** The connection as the API shows it: state and times, never a secret. */
export function connectionView(
  ctx: AppContext,
  companyId: string,
  row: ConnectionRow | undefined,
  hook: Selectable<ProcoreWebhooksTable> | undefined,
): ProcoreConnection {
  return {
    companyId,
    status: row?.status ?? ('not_connected' as const),
    mode: row?.mode ?? null,
    clientId: row?.mode === 'client_credentials' ? row.client_id : null,
    apiUrl: ctx.config.procore.apiUrl,
    accessTokenExpiresAt: row?.status === 'connected' ? (row.access_token_expires_at?.toISOString() ?? null) : null,
    connectedAt: row?.connected_at?.toISOString() ?? null,
    refreshedAt: row?.refreshed_at?.toISOString() ?? null,
    reauthReason: row?.reauth_reason ?? null,
    webhook: hook
      ? {
          hookId: hook.hook_id,
          namespace: hook.namespace,
          apiVersion: hook.api_version,
          destinationUrl: hook.destination_url,
          installedAt: hook.installed_at?.toISOString() ?? null,
          secretRotatedAt: hook.secret_rotated_at.toISOString(),
          previousSecretValidUntil:
            hook.previous_valid_until && hook.previous_valid_until > new Date()
              ? hook.previous_valid_until.toISOString()
              : null,
          triggers: hook.triggers,
        }
      : null,
  }
}
export type ConnectionView = ProcoreConnection

/**
 * Stores the Procore company and standard cost code list the company's calls use from now on
 * (onboarding's first step); the next client reads them.
 */
export async function storeChoice(
  db: Db,
  companyId: string,
  choice: { procoreCompanyId: string; costCodeListId: string },
): Promise<void> {
  await db
    .updateTable('procore_connections')
    .set({
      procore_company_id: choice.procoreCompanyId === companyId ? null : choice.procoreCompanyId,
      cost_code_list_id: choice.costCodeListId,
      updated_at: new Date(),
    })
    .where('company_id', '=', companyId)
    .execute()
}
