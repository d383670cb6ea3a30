// Procore's OAuth 2.0 server (src/procore/README.md §4), Doorkeeper-style: client credentials (DMSA),
// authorization code (single use, 10 min) and rotating single-use refresh tokens.
import { randomBytes } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { ApiError, bodyOf, queryOf, str } from './http.js'

export type Grant = 'client_credentials' | 'authorization_code'

export interface User {
  id: string
  login: string
  name: string
}

/** Who a valid access token acts for. */
export interface Principal {
  clientId: string
  user: User
  grant: Grant
}

interface AccessToken extends Principal {
  createdAt: number
  expiresAt: number
  refreshToken: string | undefined
  revoked: boolean
}

interface RefreshToken extends Principal {
  accessToken: string
  used: boolean
}

interface AuthorizationCode {
  clientId: string
  redirectUri: string
  expiresAt: number
  used: boolean
}

const CODE_TTL_MS = 10 * 60 * 1000
const OOB = 'urn:ietf:wg:oauth:2.0:oob'

const oauthError = (status: number, error: string, description: string): ApiError =>
  new ApiError(status, { error, error_description: description })
const invalidGrant = (): ApiError =>
  oauthError(
    400,
    'invalid_grant',
    'The provided authorization grant is invalid, expired, revoked, does not match the redirection URI ' +
      'used in the authorization request, or was issued to another client.',
  )

export class OAuthServer {
  refreshCalls = 0
  tokenCalls = 0
  private readonly accessTokens = new Map<string, AccessToken>()
  private readonly refreshTokens = new Map<string, RefreshToken>()
  private readonly codes = new Map<string, AuthorizationCode>()

  constructor(
    readonly client: { id: string; secret: string },
    private readonly ttlSeconds: number,
    /** The DMSA's service account (client credentials) and the person who approves auth codes. */
    readonly users: { service: User; person: User },
  ) {}

  /** The token's principal; `expired` and `invalid` name why there is none. */
  verify(token: string | undefined): Principal | 'expired' | 'invalid' {
    const entry = token === undefined ? undefined : this.accessTokens.get(token)
    if (!entry || entry.revoked) return 'invalid'
    if (Date.now() >= entry.expiresAt) return 'expired'
    return entry
  }

  /** A client-credentials token, issued without a round trip (not counted in tokenCalls). */
  accessToken(): string {
    return this.issue({ clientId: this.client.id, user: this.users.service, grant: 'client_credentials' }).access_token
  }

  revokeAll(): void {
    for (const t of this.accessTokens.values()) t.revoked = true
    for (const t of this.refreshTokens.values()) t.used = true
  }

  /** Makes every current access token expired (refresh tokens stay usable). */
  expireAll(): void {
    for (const t of this.accessTokens.values()) t.expiresAt = Math.min(t.expiresAt, Date.now())
  }

  token(body: Record<string, unknown>, basic: { id: string; secret: string } | undefined): Record<string, unknown> {
    this.tokenCalls++
    const clientId = str(body.client_id) ?? basic?.id
    const secret = str(body.client_secret) ?? basic?.secret
    if (clientId !== this.client.id || secret !== this.client.secret) {
      throw oauthError(
        401,
        'invalid_client',
        'Client authentication failed due to unknown client, no client authentication included, ' +
          'or unsupported authentication method.',
      )
    }
    switch (str(body.grant_type)) {
      case 'client_credentials':
        return this.issue({ clientId, user: this.users.service, grant: 'client_credentials' })
      case 'authorization_code': {
        const code = this.codes.get(str(body.code) ?? '')
        if (
          !code ||
          code.used ||
          code.clientId !== clientId ||
          Date.now() >= code.expiresAt ||
          code.redirectUri !== str(body.redirect_uri)
        )
          throw invalidGrant()
        code.used = true
        return this.issue({ clientId, user: this.users.person, grant: 'authorization_code' }, true)
      }
      case 'refresh_token': {
        this.refreshCalls++
        const refresh = this.refreshTokens.get(str(body.refresh_token) ?? '')
        // Single use: the first exchange burns it, even if its response never arrives.
        if (!refresh || refresh.used || refresh.clientId !== clientId) throw invalidGrant()
        refresh.used = true
        return this.issue(refresh, true)
      }
      default:
        throw oauthError(
          400,
          'unsupported_grant_type',
          'The authorization grant type is not supported by the authorization server.',
        )
    }
  }

  authorize(query: Record<string, unknown>): { redirect: string } | { code: string } {
    if (str(query.client_id) !== this.client.id)
      throw oauthError(401, 'invalid_client', 'Client authentication failed due to unknown client.')
    if (str(query.response_type) !== 'code')
      throw oauthError(
        400,
        'unsupported_response_type',
        'The authorization server does not support this response type.',
      )
    const redirectUri = str(query.redirect_uri)
    if (!redirectUri)
      throw oauthError(400, 'invalid_request', 'The request is missing a required parameter: redirect_uri.')
    const code = secret()
    this.codes.set(code, { clientId: this.client.id, redirectUri, expiresAt: Date.now() + CODE_TTL_MS, used: false })
    if (redirectUri === OOB) return { code }
    const url = new URL(redirectUri)
    url.searchParams.set('code', code)
    const state = str(query.state)
    if (state !== undefined) url.searchParams.set('state', state)
    return { redirect: url.toString() }
  }

  info(token: string | undefined): Record<string, unknown> {
    const principal = this.verify(token)
    if (typeof principal === 'string')
      throw oauthError(401, 'invalid_token', `The access token is ${principal === 'expired' ? 'expired' : 'invalid'}`)
    const entry = this.accessTokens.get(token ?? '')
    return {
      resource_owner_id: principal.user.id,
      scope: [],
      expires_in: Math.max(0, Math.floor(((entry?.expiresAt ?? 0) - Date.now()) / 1000)),
      application: { uid: principal.clientId },
      created_at: entry?.createdAt ?? null,
    }
  }

  /** Revokes the token and its pair (access ↔ refresh); unknown tokens are fine (§4). */
  revoke(token: string | undefined): void {
    const access = this.accessTokens.get(token ?? '')
    const refresh = this.refreshTokens.get(token ?? '') ?? this.refreshTokens.get(access?.refreshToken ?? '')
    if (access) access.revoked = true
    if (refresh) {
      refresh.used = true
      const paired = this.accessTokens.get(refresh.accessToken)
      if (paired) paired.revoked = true
    }
  }

  private issue(principal: Principal, withRefresh = false): { access_token: string } & Record<string, unknown> {
    const now = Date.now()
    const access = secret()
    const refresh = withRefresh ? secret() : undefined
    const { clientId, user, grant } = principal
    this.accessTokens.set(access, {
      clientId,
      user,
      grant,
      createdAt: Math.floor(now / 1000),
      expiresAt: now + this.ttlSeconds * 1000,
      refreshToken: refresh,
      revoked: false,
    })
    if (refresh) this.refreshTokens.set(refresh, { clientId, user, grant, accessToken: access, used: false })
    return {
      access_token: access,
      token_type: 'bearer',
      expires_in: this.ttlSeconds,
      ...(refresh ? { refresh_token: refresh } : {}),
      created_at: Math.floor(now / 1000),
    }
  }
}

function secret(): string {
  return randomBytes(32).toString('hex')
}

export function bearerOf(request: FastifyRequest): string | undefined {
  const m = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')
  return m?.[1]
}

function basicOf(request: FastifyRequest): { id: string; secret: string } | undefined {
  const m = /^Basic\s+(\S+)$/i.exec(request.headers.authorization ?? '')
  if (!m?.[1]) return undefined
  const decoded = Buffer.from(m[1], 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  return colon < 0
    ? undefined
    : { id: decodeURIComponent(decoded.slice(0, colon)), secret: decodeURIComponent(decoded.slice(colon + 1)) }
}

export function oauthRoutes(app: FastifyInstance, oauth: OAuthServer): void {
  // Token responses must never be cached (RFC 6749 §5.1).
  app.post('/oauth/token', (request, reply) =>
    reply.header('cache-control', 'no-store').send(oauth.token(bodyOf(request), basicOf(request))),
  )
  app.get('/oauth/authorize', (request, reply) => {
    // Auto-approves, as if the user had clicked "Allow".
    const result = oauth.authorize(queryOf(request))
    return 'redirect' in result ? reply.redirect(result.redirect, 302) : result
  })
  app.get('/oauth/token/info', (request) => oauth.info(bearerOf(request)))
  app.post('/oauth/revoke', (request) => {
    oauth.revoke(str(bodyOf(request).token))
    return {}
  })
}
