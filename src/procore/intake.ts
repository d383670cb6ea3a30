import { hash, timingSafeEqual } from 'node:crypto'
import { component, type AppContext } from '../context.js'
import { AppError } from '../errors.js'

/**
 * The Authorization header value we give Procore: `Bearer <company id>.<secret>`. The company id
 * is not secret; it only says whose stored secret to compare against.
 */
const HEADER = /^Bearer ([1-9]\d{0,18})\.([A-Za-z0-9_-]{32,128})$/

export const hashHeader = (value: string): string => hash('sha256', value, 'hex')
export const webhookHeader = (companyId: string, secret: string): string => `Bearer ${companyId}.${secret}`

export const unauthorizedWebhook = () =>
  new AppError(
    401,
    'webhook_unauthorized',
    'Unauthorized',
    'The Authorization header does not carry a current webhook secret for any company. Reinstall the webhook ' +
      '(PUT /v1/companies/{id}/procore/webhook) so Procore sends the current one.',
  )

/** How long a company's current secret hash is trusted from memory before it is read again. */
export const SECRET_CACHE_TTL_MS = 10_000
const SECRET_CACHE_MAX = 10_000

/**
 * The current secret hash of each company, as last read, most recently used last. Only the current
 * secret is served from memory; anything else (the previous secret in its grace period, a secret
 * this process has not seen yet) is checked against the table, so a rotation made by another
 * instance is honoured at once for the new secret, and within SECRET_CACHE_TTL_MS for the old one.
 */
const secretCache = (ctx: AppContext) =>
  component(ctx, 'procore.webhookSecrets', () => new Map<string, { hash: Buffer; loadedAt: number }>())

/** Forgets a company's cached secret: call after its secrets change (rotation, removal). */
export function forgetWebhookSecret(ctx: AppContext, companyId: string): void {
  secretCache(ctx).delete(companyId)
}

/**
 * Which company sent this, judged by the Authorization header alone, before the body is read:
 * the header's hash is compared in constant time with the company's current secret and, within
 * the grace period after a rotation, the previous one. The current secret's hash is cached in
 * memory, so an authentic delivery costs no database round trip here: then the answer is given
 * at once, not as a promise (every delivery passes here).
 */
export function authenticateWebhook(
  ctx: AppContext,
  authorization: string | undefined,
  startedAt = Date.now(),
): string | Promise<string> {
  const match = authorization === undefined ? null : HEADER.exec(authorization)
  const companyId = match?.[1]
  if (!authorization || !companyId) return Promise.reject(unauthorizedWebhook())
  const presented = hash('sha256', authorization, 'buffer')
  const cache = secretCache(ctx)
  const cached = cache.get(companyId)
  if (cached && Date.now() - cached.loadedAt < SECRET_CACHE_TTL_MS && timingSafeEqual(presented, cached.hash)) {
    // Most recently used last: the oldest entry is the first to go.
    cache.delete(companyId)
    cache.set(companyId, cached)
    return companyId
  }
  return authenticateStored(ctx, companyId, presented, startedAt)
}

/** authenticateWebhook against the table: the previous secret, a secret not cached (yet), or a stale cache entry. */
async function authenticateStored(
  ctx: AppContext,
  companyId: string,
  presented: Buffer,
  startedAt: number,
): Promise<string> {
  const cache = secretCache(ctx)
  const row = await withinAckBudget(
    ctx.db
      .selectFrom('procore_webhooks')
      .select(['secret_hash', 'previous_secret_hash', 'previous_valid_until'])
      .where('company_id', '=', companyId)
      .executeTakeFirst(),
    startedAt,
    'the secret lookup',
  ).catch((error: unknown) => {
    throw webhookUnavailable(ctx, companyId, error)
  })
  cache.delete(companyId)
  if (!row) throw unauthorizedWebhook()
  const currentHash = Buffer.from(row.secret_hash, 'hex')
  cache.set(companyId, { hash: currentHash, loadedAt: Date.now() })
  if (cache.size > SECRET_CACHE_MAX) cache.delete(cache.keys().next().value!)
  const current = timingSafeEqual(presented, currentHash)
  const previousValid =
    row.previous_secret_hash !== null && row.previous_valid_until !== null && row.previous_valid_until > new Date()
  // Both comparisons always run, so timing does not tell which secret matched.
  const previous =
    timingSafeEqual(presented, Buffer.from(previousValid ? row.previous_secret_hash! : row.secret_hash, 'hex')) &&
    previousValid
  if (!current && !previous) throw unauthorizedWebhook()
  return companyId
}

/**
 * Procore gives up on a delivery after 5 s. Everything before our answer (waiting for a pool
 * connection, the secret lookup, the insert) shares this budget, counted from the request's
 * arrival; past it we answer 503 and Procore delivers again, rather than answering too late.
 */
export const ACK_BUDGET_MS = 3000

export function withinAckBudget<T>(work: Promise<T>, startedAt: number, what: string): Promise<T> {
  const left = Math.max(ACK_BUDGET_MS - (Date.now() - startedAt), 0)
  // One promise and one timer per call (every delivery makes one): no race of two promises, no async frame.
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ACK_BUDGET_MS} ms`)), left)
    work.then(resolve, reject).finally(() => clearTimeout(timer))
  })
}

/** The database did not answer: Procore must deliver again (it pauses and retries this endpoint). */
export function webhookUnavailable(ctx: AppContext, companyId: string, error: unknown): AppError {
  ctx.log.error(
    { component: 'procore', companyId, err: { message: (error as Error).message } },
    'could not check or store a Procore webhook; asking Procore to retry',
  )
  return new AppError(
    503,
    'inbox_unavailable',
    'Service unavailable',
    'The event could not be stored right now. Nothing was acknowledged; deliver it again after Retry-After.',
    { headers: { 'retry-after': '5' } },
  )
}
