// What the HTTP routes ask of the Procore connector: connect (service account or OAuth), the
// OAuth callback, the connection's state, disconnect, webhook installation and reconciliation.
// Procore's failures reach the error handler as they are; it answers them naming Procore.
import type { AppContext } from '../context.js'
import { etagOf } from '../api/etag.js'
import { AppError, badRequest, notFound, NotConnectedError, preconditionFailed } from '../errors.js'
import { UpstreamError } from '../http/errors.js'
import type { ProcoreConnectBody } from '../schemas/procore.js'
import {
  connectionView,
  loadConnection,
  markDisconnected,
  storeCredentials,
  unseal,
  type ConnectionView,
} from './connection.js'
import { procoreHttp } from './http.js'
import {
  appClient,
  callbackUrl,
  consumeState,
  requestToken,
  revokeToken,
  startAuthorization,
  TokenRejectedError,
  type TokenSet,
} from './oauth.js'
import { procoreTokens } from './tokens.js'
import { installWebhook, removeWebhook, type WebhookOptions } from './webhooks.js'

async function companyMustExist(ctx: AppContext, companyId: string): Promise<void> {
  const found = await ctx.db.selectFrom('companies').select('id').where('id', '=', companyId).executeTakeFirst()
  if (!found) throw notFound('company', companyId)
}

export async function getConnection(
  ctx: AppContext,
  companyId: string,
): Promise<{ connection: ConnectionView; etag: string }> {
  await companyMustExist(ctx, companyId)
  const [row, hook] = await Promise.all([
    loadConnection(ctx.db, companyId),
    ctx.db.selectFrom('procore_webhooks').selectAll().where('company_id', '=', companyId).executeTakeFirst(),
  ])
  return { connection: connectionView(ctx, companyId, row, hook), etag: etagOf(row?.version ?? 0) }
}

/** With the fresh token: can these credentials act for this company at all? (DMSAs need the app installed there.) */
async function checkAccess(ctx: AppContext, companyId: string, tokens: TokenSet): Promise<void> {
  try {
    await procoreHttp(ctx).api.request({
      method: 'GET',
      path: '/rest/v1.0/me',
      headers: { authorization: `Bearer ${tokens.accessToken}`, 'procore-company-id': companyId },
      concurrencyKey: companyId,
    })
  } catch (error) {
    if (error instanceof UpstreamError && (error.reason === 'forbidden' || error.reason === 'unauthorized')) {
      throw new AppError(
        422,
        'procore_company_not_accessible',
        'Procore company not accessible',
        `These credentials cannot act for Procore company ${companyId} (Procore answered ${error.status}). ` +
          "Install the app for this company in Procore's App Management, or check the company id.",
      )
    }
    throw error
  }
}

export type ConnectRequest = ProcoreConnectBody

/**
 * Service account: exchanges the client credentials for a token right away (proving they work
 * for this company) and stores them sealed. Authorization code: returns Procore's authorize URL
 * for a person to open; the callback completes the connection.
 */
export async function connect(ctx: AppContext, companyId: string, request: ConnectRequest, requestedBy: string) {
  await companyMustExist(ctx, companyId)
  if (request.mode === 'authorization_code') {
    const { authorizeUrl, expiresAt } = await startAuthorization(ctx, companyId, requestedBy)
    return { connection: (await getConnection(ctx, companyId)).connection, authorizeUrl, stateExpiresAt: expiresAt }
  }
  let tokens: TokenSet
  try {
    tokens = await requestToken(ctx, {
      grant_type: 'client_credentials',
      client_id: request.clientId,
      client_secret: request.clientSecret,
    })
  } catch (error) {
    if (!(error instanceof TokenRejectedError)) throw error
    throw new AppError(
      422,
      'procore_credentials_rejected',
      'Procore rejected the credentials',
      `Procore refused this client id and secret (${error.oauthError}). ` +
        "Copy them again from the service account in Procore's Developer Portal.",
    )
  }
  await checkAccess(ctx, companyId, tokens)
  await storeCredentials(ctx, companyId, {
    mode: 'client_credentials',
    clientId: request.clientId,
    clientSecret: request.clientSecret,
    accessToken: tokens.accessToken,
    expiresAt: tokens.expiresAt,
    refreshToken: null,
    connectedBy: requestedBy,
  })
  procoreTokens(ctx).forget(companyId)
  ctx.log.info({ component: 'procore', companyId, mode: 'client_credentials' }, 'Procore connected')
  return { connection: (await getConnection(ctx, companyId)).connection, authorizeUrl: null, stateExpiresAt: null }
}

/** Procore sent the user back: exchange the code, store the tokens. */
export async function completeAuthorization(
  ctx: AppContext,
  query: {
    code?: string | undefined
    state?: string | undefined
    error?: string | undefined
    error_description?: string | undefined
  },
) {
  if (!query.state)
    throw badRequest(
      'oauth_state_missing',
      'The callback carries no state. Start the connection again with POST /v1/companies/{id}/procore/connect.',
    )
  const { companyId, requestedBy } = await consumeState(ctx, query.state)
  if (query.error !== undefined || !query.code) {
    throw badRequest(
      'oauth_denied',
      `Procore did not authorize the connection (${(query.error ?? 'no code').slice(0, 100)}` +
        `${query.error_description ? `: ${query.error_description.slice(0, 200)}` : ''}). ` +
        'Start again and approve access.',
    )
  }
  const code = query.code
  const client = appClient(ctx)
  let tokens: TokenSet
  try {
    tokens = await requestToken(ctx, {
      grant_type: 'authorization_code',
      client_id: client.id,
      client_secret: client.secret,
      code,
      redirect_uri: callbackUrl(ctx),
    })
  } catch (error) {
    if (!(error instanceof TokenRejectedError)) throw error
    throw badRequest(
      'oauth_code_rejected',
      `Procore refused the authorization code (${error.oauthError}): ` +
        'codes are single use and expire after 10 minutes. Start the connection again.',
    )
  }
  if (tokens.refreshToken === null) {
    throw new AppError(
      502,
      'procore_request_failed',
      'Procore request failed',
      'Procore issued no refresh token for the authorization code. Start the connection again.',
    )
  }
  await checkAccess(ctx, companyId, tokens)
  const row = await storeCredentials(ctx, companyId, {
    mode: 'authorization_code',
    clientId: null,
    clientSecret: null,
    accessToken: tokens.accessToken,
    expiresAt: tokens.expiresAt,
    refreshToken: tokens.refreshToken,
    connectedBy: requestedBy,
  })
  procoreTokens(ctx).forget(companyId)
  ctx.log.info({ component: 'procore', companyId, mode: 'authorization_code' }, 'Procore connected')
  return { companyId, status: row.status, mode: row.mode, connectedAt: row.connected_at?.toISOString() ?? null }
}

/** Deletes our hook, revokes the tokens at Procore (best effort) and forgets every secret. */
export async function disconnect(ctx: AppContext, companyId: string, expectedVersion: number): Promise<void> {
  const row = await loadConnection(ctx.db, companyId)
  if (!row || row.status === 'disconnected') throw notFound('Procore connection of company', companyId)
  if (row.version !== expectedVersion) throw preconditionFailed(etagOf(row.version))
  const hook = await ctx.db
    .selectFrom('procore_webhooks')
    .select('company_id')
    .where('company_id', '=', companyId)
    .executeTakeFirst()
  if (hook) await removeWebhook(ctx, companyId, { remote: row.status === 'connected' })
  try {
    if (row.mode === 'authorization_code' && row.refresh_token) {
      await revokeToken(ctx, unseal(ctx, companyId, 'refresh_token', row.refresh_token), appClient(ctx))
    } else if (row.mode === 'client_credentials' && row.access_token && row.client_id && row.client_secret) {
      await revokeToken(ctx, unseal(ctx, companyId, 'access_token', row.access_token), {
        id: row.client_id,
        secret: unseal(ctx, companyId, 'client_secret', row.client_secret),
      })
    }
  } catch (error) {
    ctx.log.warn(
      { component: 'procore', companyId, err: { message: (error as Error).message } },
      'could not revoke the Procore token; it expires by itself',
    )
  }
  await markDisconnected(ctx.db, companyId)
  procoreTokens(ctx).forget(companyId)
}

export async function putWebhook(ctx: AppContext, companyId: string, options: WebhookOptions) {
  await companyMustExist(ctx, companyId)
  return installWebhook(ctx, companyId, options)
}

export async function deleteWebhook(ctx: AppContext, companyId: string): Promise<void> {
  await companyMustExist(ctx, companyId)
  await removeWebhook(ctx, companyId)
}

/** 404 when the company does not exist, 409 when its Procore connection does not work. */
export async function connectedCompany(ctx: AppContext, companyId: string): Promise<void> {
  await companyMustExist(ctx, companyId)
  const connection = await loadConnection(ctx.db, companyId)
  if (connection?.status !== 'connected') {
    throw new NotConnectedError(
      'procore',
      'procore_not_connected',
      'Procore not connected',
      `Company ${companyId} has no working Procore connection (${connection?.status ?? 'not connected'}). ` +
        `Connect it first: POST /v1/companies/${companyId}/procore/connect.`,
    )
  }
}
