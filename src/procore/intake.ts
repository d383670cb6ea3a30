import { createHash, timingSafeEqual } from 'node:crypto'
import type { AppContext } from '../context.js'
import { AppError } from '../errors.js'
import { storeEvent } from '../inbox/inbox.js'
import type { ReceivedWebhook } from '../schemas/webhook-events.js'
import { typeForProcoreResource } from '../sync/registry.js'
import { parseEvent } from './events.js'

/**
 * The Authorization header value we give Procore: `Bearer <company id>.<secret>`. The company id
 * is not secret; it only says whose stored secret to compare against.
 */
const HEADER = /^Bearer ([1-9]\d{0,18})\.([A-Za-z0-9_-]{32,128})$/

export const hashHeader = (value: string): string => createHash('sha256').update(value).digest('hex')
export const webhookHeader = (companyId: string, secret: string): string => `Bearer ${companyId}.${secret}`

/** Headers worth keeping with an event (never Authorization). */
const KEPT_HEADERS = ['content-type', 'user-agent', 'x-request-id'] as const

/** Longest we wait for the inbox insert before telling Procore to retry (its own timeout is 5 s). */
const STORE_DEADLINE_MS = 3000

export const unauthorizedWebhook = () =>
  new AppError(401, 'webhook_unauthorized', 'Unauthorized',
    'The Authorization header does not carry a current webhook secret for any company. Reinstall the webhook (PUT /v1/companies/{id}/procore/webhook) so Procore sends the current one.')

/**
 * Which company sent this, judged by the Authorization header alone, before the body is read:
 * the header's hash is compared in constant time with the company's current secret and, within
 * the grace period after a rotation, the previous one.
 */
export async function authenticateWebhook(ctx: AppContext, authorization: string | undefined): Promise<string> {
  const match = authorization === undefined ? null : HEADER.exec(authorization)
  const companyId = match?.[1]
  if (!authorization || !companyId) throw unauthorizedWebhook()
  const row = await ctx.db.selectFrom('procore_webhooks')
    .select(['secret_hash', 'previous_secret_hash', 'previous_valid_until'])
    .where('company_id', '=', companyId)
    .executeTakeFirst()
    .catch((error: unknown) => {
      throw storeUnavailable(ctx, companyId, error)
    })
  if (!row) throw unauthorizedWebhook()
  const presented = Buffer.from(hashHeader(authorization), 'hex')
  const current = timingSafeEqual(presented, Buffer.from(row.secret_hash, 'hex'))
  const previousValid = row.previous_secret_hash !== null && row.previous_valid_until !== null && row.previous_valid_until > new Date()
  // Both comparisons always run, so timing does not tell which secret matched.
  const previous = timingSafeEqual(presented, Buffer.from(previousValid ? row.previous_secret_hash! : row.secret_hash, 'hex')) && previousValid
  if (!current && !previous) throw unauthorizedWebhook()
  return companyId
}

/** The database did not answer: Procore must deliver again (it pauses and retries this endpoint). */
function storeUnavailable(ctx: AppContext, companyId: string, error: unknown): AppError {
  ctx.log.error({ component: 'procore', companyId, err: { message: (error as Error).message } }, 'could not check or store a Procore webhook; asking Procore to retry')
  return new AppError(503, 'inbox_unavailable', 'Service unavailable',
    'The event could not be stored right now. Nothing was acknowledged; deliver it again after Retry-After.', { headers: { 'retry-after': '5' } })
}

export type Received = ReceivedWebhook

/**
 * Stores one authenticated delivery and its processing job in one transaction, then returns:
 * only then may the caller answer 2xx. A delivery we cannot use (malformed, or a resource we do
 * not consume) is stored quarantined and still acknowledged, so it never blocks Procore's queue.
 * When the insert fails or is too slow: 503 with Retry-After, and Procore delivers again.
 */
export async function receiveWebhook(ctx: AppContext, companyId: string, body: string, headers: Record<string, string | string[] | undefined>): Promise<Received> {
  const parsed = parseEvent(body)
  const claimed = parsed.ok ? parsed.event.companyId : parsed.companyId
  // The secret is this company's; an event naming another company is not authenticated for it.
  if (claimed !== null && claimed !== companyId) throw unauthorizedWebhook()

  const kept: Record<string, string> = {}
  for (const name of KEPT_HEADERS) {
    const value = headers[name]
    if (typeof value === 'string') kept[name] = value.slice(0, 500)
  }
  const recordType = parsed.ok ? typeForProcoreResource(parsed.event.resourceName) : undefined
  const quarantineReason = !parsed.ok
    ? parsed.reason
    : recordType === undefined
      ? `resource "${parsed.event.resourceName.slice(0, 100)}" is not one this service consumes`
      : undefined

  let timer: NodeJS.Timeout | undefined
  try {
    const stored = await Promise.race([
      storeEvent(ctx.db, {
        companyId,
        source: 'procore',
        dedupeKey: parsed.ok ? parsed.event.dedupeKey : parsed.dedupeKey,
        headers: kept,
        body,
        eventType: parsed.ok ? parsed.event.eventType : parsed.eventType,
        recordType: recordType ?? null,
        resourceId: parsed.ok ? parsed.event.resourceId : null,
        ...(quarantineReason === undefined ? {} : { quarantineReason }),
      }),
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`inbox insert took longer than ${STORE_DEADLINE_MS} ms`)), STORE_DEADLINE_MS)
      }),
    ])
    return { id: stored.id, status: stored.duplicate ? 'duplicate' : stored.status }
  } catch (error) {
    throw storeUnavailable(ctx, companyId, error)
  } finally {
    clearTimeout(timer)
  }
}

