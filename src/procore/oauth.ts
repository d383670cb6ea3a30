import { randomBytes } from 'node:crypto'
import { sql } from 'kysely'
import type { AppContext } from '../context.js'
import { AppError, badRequest } from '../errors.js'
import { UpstreamError } from '../http/errors.js'
import { procoreHttp } from './http.js'

/** What Procore's token endpoint (`POST /oauth/token`) returns. */
export interface TokenSet {
  accessToken: string
  refreshToken: string | null
  expiresAt: Date
}

export type Grant =
  | { grant_type: 'client_credentials'; client_id: string; client_secret: string }
  | { grant_type: 'authorization_code'; client_id: string; client_secret: string; code: string; redirect_uri: string }
  | {
      grant_type: 'refresh_token'
      client_id: string
      client_secret: string
      refresh_token: string
      redirect_uri: string
    }

/** Procore's words for "these credentials are dead": retrying cannot help, a person must reconnect. */
const REJECTED = new Set(['invalid_grant', 'invalid_client', 'unauthorized_client'])

export class TokenRejectedError extends Error {
  override name = 'TokenRejectedError'
  constructor(
    readonly oauthError: string,
    description: string | undefined,
  ) {
    super(
      `Procore rejected the ${oauthError === 'invalid_client' ? 'client credentials' : 'grant'}: ` +
        `${oauthError}${description ? ` (${description})` : ''}`,
    )
  }
}

/**
 * One call to `POST /oauth/token`. Only client credentials may be retried by the HTTP layer: an
 * authorization code and a refresh token are single use, so a second attempt would burn nothing
 * but could never succeed.
 */
export async function requestToken(ctx: AppContext, grant: Grant): Promise<TokenSet> {
  const startedAt = Date.now()
  try {
    const res = await procoreHttp(ctx).login.request<Record<string, unknown>>({
      method: 'POST',
      path: '/oauth/token',
      body: grant,
      idempotent: grant.grant_type === 'client_credentials',
      parse: (body) => {
        if (body === null || typeof body !== 'object') throw new Error('token response is not an object')
        return body as Record<string, unknown>
      },
    })
    const { access_token: accessToken, refresh_token: refreshToken, expires_in: expiresIn } = res.body
    if (typeof accessToken !== 'string' || accessToken === '')
      throw new Error('Procore token response carries no access_token')
    const seconds = typeof expiresIn === 'number' && expiresIn > 0 ? expiresIn : 5400
    return {
      accessToken,
      refreshToken: typeof refreshToken === 'string' && refreshToken !== '' ? refreshToken : null,
      expiresAt: new Date(startedAt + seconds * 1000),
    }
  } catch (error) {
    if (
      error instanceof UpstreamError &&
      (error.status === 400 || error.status === 401) &&
      error.body &&
      typeof error.body === 'object'
    ) {
      const body = error.body as Record<string, unknown>
      if (typeof body.error === 'string' && REJECTED.has(body.error)) {
        throw new TokenRejectedError(
          body.error,
          typeof body.error_description === 'string' ? body.error_description.slice(0, 200) : undefined,
        )
      }
    }
    throw error
  }
}

/** Best effort: Procore revokes the access and the refresh token together (and answers 200 for unknown ones). */
export async function revokeToken(
  ctx: AppContext,
  token: string,
  client: { id: string; secret: string },
): Promise<void> {
  await procoreHttp(ctx).login.request({
    method: 'POST',
    path: '/oauth/revoke',
    body: { token, client_id: client.id, client_secret: client.secret },
    idempotent: true,
  })
}

// ---- authorization code flow --------------------------------------------------------------

const STATE_TTL_MS = 10 * 60_000
const STATE_PURPOSE = 'procore-oauth-state'

export const callbackUrl = (ctx: AppContext) => `${ctx.config.publicUrl}/oauth/procore/callback`

/** This app's OAuth client, needed for authorization-code connections. */
export function appClient(ctx: AppContext): { id: string; secret: string } {
  const { clientId, clientSecret } = ctx.config.procore
  if (!clientId || !clientSecret) {
    throw new AppError(
      409,
      'procore_oauth_not_configured',
      'OAuth not configured',
      "Authorization-code connections need this service's Procore app credentials: set PROCORE_CLIENT_ID and " +
        'PROCORE_CLIENT_SECRET, or connect with a service account (mode client_credentials).',
    )
  }
  return { id: clientId, secret: clientSecret }
}

/**
 * Procore's authorize URL for this company, with a `state` that is signed (nobody can forge
 * one), expiring (10 min, as Procore's codes) and single use (its nonce row is consumed by the
 * callback).
 */
export async function startAuthorization(
  ctx: AppContext,
  companyId: string,
  requestedBy: string,
): Promise<{ authorizeUrl: string; expiresAt: string }> {
  const client = appClient(ctx)
  const nonce = randomBytes(18).toString('base64url')
  const expiresAt = new Date(Date.now() + STATE_TTL_MS)
  await ctx.db
    .deleteFrom('procore_oauth_states')
    .where('expires_at', '<', new Date(Date.now() - 24 * 3600_000))
    .execute()
  await ctx.db
    .insertInto('procore_oauth_states')
    .values({ nonce, company_id: companyId, requested_by: requestedBy, expires_at: expiresAt, used_at: null })
    .execute()
  const data = `${companyId}.${nonce}.${expiresAt.getTime()}`
  const state = `${data}.${ctx.secrets.sign(STATE_PURPOSE, data)}`
  const url = new URL('/oauth/authorize', ctx.config.procore.loginUrl)
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: client.id,
    redirect_uri: callbackUrl(ctx),
    state,
  }).toString()
  return { authorizeUrl: url.toString(), expiresAt: expiresAt.toISOString() }
}

const invalidState = () =>
  badRequest(
    'oauth_state_invalid',
    'This authorization link is invalid, expired or already used. Start again: ' +
      'POST /v1/companies/{id}/procore/connect with mode authorization_code, and open the new ' +
      'authorizeUrl within 10 minutes.',
  )

/** Verifies and consumes a `state`; returns the company it was issued for and who asked. */
export async function consumeState(
  ctx: AppContext,
  state: string,
): Promise<{ companyId: string; requestedBy: string }> {
  const parts = state.split('.')
  const [companyId, nonce, expires, signature] = parts
  if (parts.length !== 4 || !companyId || !nonce || !expires || !signature) throw invalidState()
  if (!ctx.secrets.verify(STATE_PURPOSE, `${companyId}.${nonce}.${expires}`, signature)) throw invalidState()
  if (!/^\d+$/.test(expires) || Number(expires) <= Date.now()) throw invalidState()
  const row = await ctx.db
    .updateTable('procore_oauth_states')
    .set({ used_at: sql<Date>`now()` })
    .where('nonce', '=', nonce)
    .where('company_id', '=', companyId)
    .where('used_at', 'is', null)
    .where('expires_at', '>', sql<Date>`now()`)
    .returning(['company_id', 'requested_by'])
    .executeTakeFirst()
  if (!row) throw invalidState()
  return { companyId: row.company_id, requestedBy: row.requested_by }
}
