// Webhook intake, for both sides: an authenticated delivery is stored in the inbox together with
// the job that acts on it, in one transaction, before the sender gets its 2xx. What authenticates
// a delivery is each connector's business (Procore: our Authorization header; the ERP agent:
// Standard Webhooks signatures); what we keep and how it is classified is the inbox's.
import type { AppContext } from '../context.js'
import { isCompanyId } from '../companies/companies.js'
import { notificationSecrets } from '../erp/connections.js'
import { parseRecordChanged } from '../erp/protocol.js'
import { verify } from '../erp/signature.js'
import { AppError } from '../errors.js'
import { parseEvent } from '../procore/events.js'
import type { ReceivedWebhook } from '../schemas/webhook-events.js'
import { unauthorizedWebhook, webhookUnavailable, withinAckBudget } from '../procore/intake.js'
import { typeForErpResource, typeForProcoreResource } from '../sync/registry.js'
import { storeEvent } from './inbox.js'

/** Headers worth keeping with an event (never Authorization). */
const KEPT_HEADERS = ['content-type', 'user-agent', 'x-request-id'] as const

export type Received = ReceivedWebhook

/**
 * Stores one authenticated delivery and its processing job in one transaction, then returns:
 * only then may the caller answer 2xx. A delivery we cannot use (malformed, or a resource we do
 * not consume) is stored quarantined and still acknowledged, so it never blocks Procore's queue.
 * When the insert fails or is too slow: 503 with Retry-After, and Procore delivers again.
 */
export async function receiveWebhook(
  ctx: AppContext,
  companyId: string,
  body: string,
  headers: Record<string, string | string[] | undefined>,
  startedAt = Date.now(),
): Promise<Received> {
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

  try {
    const stored = await withinAckBudget(
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
      startedAt,
      'the inbox insert',
    )
    return { id: stored.id, status: stored.duplicate ? 'duplicate' : stored.status }
  } catch (error) {
    throw webhookUnavailable(ctx, companyId, error)
  }
}

export interface NotificationHeaders {
  'webhook-id'?: string | undefined
  'webhook-timestamp'?: string | undefined
  'webhook-signature'?: string | undefined
}

const unauthorized = (message: string) =>
  new AppError(
    401,
    'invalid_signature',
    'Notification not authenticated',
    `${message} Nothing was stored; fix the agent and let it retry.`,
  )

/**
 * Authenticates and stores one notification. Returns whether it was new or a duplicate
 * delivery (same `webhook-id`). An authentic body that is not a notification we can act on is
 * stored as quarantined (the sender gets 2xx: retrying would not change it). Throws 401 when
 * the signature fails, 503 when the inbox could not commit (the sender's retry is wanted).
 */
export async function receiveNotification(
  ctx: AppContext,
  companyId: string,
  headers: NotificationHeaders,
  body: Buffer,
  now = Date.now(),
) {
  // No connection means no secret: the same answer as a wrong signature, nothing revealed.
  const secrets = isCompanyId(companyId) ? await notificationSecrets(ctx, companyId) : []
  const result = verify({
    id: headers['webhook-id'],
    timestamp: headers['webhook-timestamp'],
    signature: headers['webhook-signature'],
    body,
    secrets,
    now,
  })
  if (!result.ok) throw unauthorized(secrets.length === 0 ? 'No webhook-signature matches.' : result.message)

  const text = body.toString('utf8')
  let parsed: unknown
  let quarantineReason: string | undefined
  try {
    parsed = JSON.parse(text)
  } catch {
    quarantineReason = 'the body is not JSON'
  }
  const event = quarantineReason === undefined ? parseRecordChanged(parsed) : undefined
  if (event && !event.ok) quarantineReason = event.reason
  const notification = event?.ok ? event.event : undefined
  const recordType = notification ? (typeForErpResource(notification.resource) ?? null) : null

  try {
    const stored = await storeEvent(ctx.db, {
      companyId,
      source: 'erp',
      dedupeKey: result.id,
      headers: { 'webhook-id': result.id, 'webhook-timestamp': String(result.timestamp) },
      body: text,
      eventType: notification?.type ?? null,
      recordType,
      resourceId: notification?.id ?? null,
      ...(quarantineReason !== undefined && { quarantineReason }),
    })
    return stored
  } catch (error) {
    ctx.log.error(
      { component: 'erp', companyId, err: error },
      'could not store an ERP notification; the agent will retry',
    )
    throw new AppError(
      503,
      'inbox_unavailable',
      'Service unavailable',
      'The notification could not be stored. Retry after the Retry-After delay; nothing was lost.',
      {
        headers: { 'retry-after': '30' },
      },
    )
  }
}
