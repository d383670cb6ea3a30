import { setTimeout as sleep } from 'node:timers/promises'
import { sql } from 'kysely'
import { component, type AppContext } from '../context.js'
import { markNeedsReauth, seal, unseal, usableConnection, type ConnectionRow } from './connection.js'
import { needsReauth, notConnected } from './errors.js'
import { appClient, callbackUrl, requestToken, TokenRejectedError, type Grant, type TokenSet } from './oauth.js'

/** Renew this long before expiry (Procore's tokens live 90 min). */
const RENEW_BEFORE_MS = 5 * 60_000
/** How long one process may hold the right to call the token endpoint for a company. */
const LEASE_SECONDS = 30
const LEASE_POLL_MS = 200
const PERSIST_ATTEMPTS = 4

export interface AccessToken {
  token: string
  /** procore_connections.token_version it was stored under */
  version: number
  expiresAt: number
}

/**
 * Access tokens per company. Within a process, concurrent callers share one in-flight fetch
 * (single flight); across processes a short lease in the connection row decides who calls
 * Procore's token endpoint while the others wait for the stored result. A new refresh token is
 * committed before the new access token is handed out: Procore's refresh tokens are single
 * use, so one lost in memory is a logged-out company.
 */
export class ProcoreTokens {
  readonly #ctx: AppContext
  readonly #cache = new Map<string, AccessToken>()
  readonly #inflight = new Map<string, Promise<AccessToken>>()

  constructor(ctx: AppContext) {
    this.#ctx = ctx
  }

  /** A token valid for at least a few more minutes. */
  async current(companyId: string): Promise<AccessToken> {
    const cached = this.#cache.get(companyId)
    if (cached && cached.expiresAt - RENEW_BEFORE_MS > Date.now()) return cached
    return this.#once(companyId, () => this.#obtain(companyId, cached?.version ?? -1, false))
  }

  /** Procore answered 401 to `rejected`: get a newer token, once for all callers that saw it. */
  async renew(companyId: string, rejected: AccessToken): Promise<AccessToken> {
    for (let round = 0; round < 2; round++) {
      const cached = this.#cache.get(companyId)
      if (cached && cached.version > rejected.version) return cached
      this.#cache.delete(companyId)
      const token = await this.#once(companyId, () => this.#obtain(companyId, rejected.version, true))
      if (token.version > rejected.version) return token
    }
    throw new Error(`Procore keeps refusing the access token of company ${companyId}`)
  }

  /** After a reconnect or disconnect. */
  forget(companyId: string): void {
    this.#cache.delete(companyId)
  }

  #once(companyId: string, fetch: () => Promise<AccessToken>): Promise<AccessToken> {
    let running = this.#inflight.get(companyId)
    if (!running) {
      running = fetch()
        .then((token) => {
          this.#cache.set(companyId, token)
          return token
        })
        .finally(() => this.#inflight.delete(companyId))
      this.#inflight.set(companyId, running)
    }
    return running
  }

  /**
   * The stored token when it is good (and newer than `staleVersion` when forced), otherwise a
   * new one from Procore, obtained under the lease.
   */
  async #obtain(companyId: string, staleVersion: number, force: boolean): Promise<AccessToken> {
    const deadline = Date.now() + (LEASE_SECONDS + 10) * 1000
    for (;;) {
      const row = await usableConnection(this.#ctx.db, companyId)
      const stored = this.#stored(companyId, row)
      if (stored && (!force || stored.version > staleVersion)) return stored

      const leased = await this.#ctx.db
        .updateTable('procore_connections')
        .set({ refresh_lease_until: sql<Date>`now() + make_interval(secs => ${LEASE_SECONDS})` })
        .where('company_id', '=', companyId)
        .where('token_version', '=', row.token_version)
        .where('status', '=', 'connected')
        .where((eb) => eb.or([eb('refresh_lease_until', 'is', null), eb('refresh_lease_until', '<', sql<Date>`now()`)]))
        .returning('company_id')
        .executeTakeFirst()
      if (leased) return this.#fetchAndStore(companyId, row)
      // Another process is talking to Procore for this company: wait for what it stores.
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for another process to renew the Procore token of company ${companyId}`)
      await sleep(LEASE_POLL_MS)
    }
  }

  #stored(companyId: string, row: ConnectionRow): AccessToken | undefined {
    if (!row.access_token || !row.access_token_expires_at) return undefined
    const expiresAt = row.access_token_expires_at.getTime()
    if (expiresAt - RENEW_BEFORE_MS <= Date.now()) return undefined
    return {
      token: unseal(this.#ctx, companyId, 'access_token', row.access_token),
      version: row.token_version,
      expiresAt,
    }
  }

  async #fetchAndStore(companyId: string, row: ConnectionRow): Promise<AccessToken> {
    const ctx = this.#ctx
    let tokens: TokenSet
    try {
      tokens = await requestToken(ctx, this.#grant(companyId, row))
    } catch (error) {
      if (error instanceof TokenRejectedError) {
        await markNeedsReauth(ctx.db, companyId, row.token_version, error.message)
        ctx.log.warn(
          { component: 'procore', companyId, oauthError: error.oauthError },
          'Procore rejected the credentials; the company needs to reconnect',
        )
        this.#cache.delete(companyId)
        throw needsReauth(companyId, error.message)
      }
      await ctx.db
        .updateTable('procore_connections')
        .set({ refresh_lease_until: null })
        .where('company_id', '=', companyId)
        .where('token_version', '=', row.token_version)
        .execute()
        .catch(() => {}) // the lease runs out by itself
      throw error
    }

    const values = {
      access_token: seal(ctx, companyId, 'access_token', tokens.accessToken),
      access_token_expires_at: tokens.expiresAt,
      ...(tokens.refreshToken === null
        ? {}
        : { refresh_token: seal(ctx, companyId, 'refresh_token', tokens.refreshToken) }),
      ...(row.client_secret && ctx.secrets.isStale(row.client_secret)
        ? {
            client_secret: seal(
              ctx,
              companyId,
              'client_secret',
              unseal(ctx, companyId, 'client_secret', row.client_secret),
            ),
          }
        : {}),
      token_version: row.token_version + 1,
      refresh_lease_until: null,
      refreshed_at: new Date(),
      updated_at: new Date(),
    }
    // The new refresh token must be committed before the access token is used; retry briefly.
    for (let attempt = 1; ; attempt++) {
      try {
        const stored = await ctx.db
          .updateTable('procore_connections')
          .set(values)
          .where('company_id', '=', companyId)
          .where('token_version', '=', row.token_version)
          .where('status', '=', 'connected')
          .returning('token_version')
          .executeTakeFirst()
        // reconnected or disconnected meanwhile; the caller retries on the new row
        if (!stored) throw notConnected(companyId)
        return { token: tokens.accessToken, version: stored.token_version, expiresAt: tokens.expiresAt.getTime() }
      } catch (error) {
        if (attempt >= PERSIST_ATTEMPTS || !isTransientDbError(error)) {
          ctx.log.error(
            { component: 'procore', companyId, err: { message: (error as Error).message } },
            'could not store renewed Procore tokens',
          )
          throw error
        }
        await sleep(100 * attempt)
      }
    }
  }

  #grant(companyId: string, row: ConnectionRow): Grant {
    if (row.mode === 'client_credentials') {
      if (!row.client_id || !row.client_secret)
        throw needsReauth(companyId, 'the service account credentials are missing')
      return {
        grant_type: 'client_credentials',
        client_id: row.client_id,
        client_secret: unseal(this.#ctx, companyId, 'client_secret', row.client_secret),
      }
    }
    if (!row.refresh_token) throw needsReauth(companyId, 'no refresh token is stored')
    const client = appClient(this.#ctx)
    return {
      grant_type: 'refresh_token',
      client_id: client.id,
      client_secret: client.secret,
      refresh_token: unseal(this.#ctx, companyId, 'refresh_token', row.refresh_token),
      redirect_uri: callbackUrl(this.#ctx),
    }
  }
}

function isTransientDbError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  // Connection failures and serialization problems; anything else is not going to change.
  return typeof code === 'string' && (/^(08|40|57P)/.test(code) || code === 'ECONNRESET' || code === 'ECONNREFUSED')
}

export const procoreTokens = (ctx: AppContext): ProcoreTokens =>
  component(ctx, 'procore.tokens', () => new ProcoreTokens(ctx))
