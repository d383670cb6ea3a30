// ERP change notifications: verified by their Standard Webhooks signature over the raw bytes
// (before anything is parsed or written), stored in the shared inbox with the job that acts on
// them, then processed by re-reading the record from the agent into its ERP-side snapshot.
import type { AppContext } from '../context.js'
import { isCompanyId } from '../companies/companies.js'
import { AppError } from '../errors.js'
import { storeEvent } from '../inbox/inbox.js'
import type { RecordProcessor } from '../inbox/tasks.js'
import { markDeleted, upsertSnapshots } from '../sync/snapshots.js'
import { entity, typeForErpResource } from '../sync/registry.js'
import { notificationSecrets } from './connections.js'
import { parseRecordChanged } from './protocol.js'
import { connectedClient } from './records.js'
import { verify } from './signature.js'

export interface NotificationHeaders {
  'webhook-id'?: string | undefined
  'webhook-timestamp'?: string | undefined
  'webhook-signature'?: string | undefined
}

const unauthorized = (message: string) =>
  new AppError(401, 'invalid_signature', 'Notification not authenticated', `${message} Nothing was stored; fix the agent and let it retry.`)

/**
 * Authenticates and stores one notification. Returns whether it was new or a duplicate
 * delivery (same `webhook-id`). An authentic body that is not a notification we can act on is
 * stored as quarantined (the sender gets 2xx: retrying would not change it). Throws 401 when
 * the signature fails, 503 when the inbox could not commit (the sender's retry is wanted).
 */
export async function receiveNotification(ctx: AppContext, companyId: string, headers: NotificationHeaders, body: Buffer, now = Date.now()) {
  // No connection means no secret: the same answer as a wrong signature, nothing revealed.
  const secrets = isCompanyId(companyId) ? await notificationSecrets(ctx, companyId) : []
  const result = verify({ id: headers['webhook-id'], timestamp: headers['webhook-timestamp'], signature: headers['webhook-signature'], body, secrets, now })
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
    ctx.log.error({ component: 'erp', companyId, err: error }, 'could not store an ERP notification; the agent will retry')
    throw new AppError(503, 'inbox_unavailable', 'Service unavailable', 'The notification could not be stored. Retry after the Retry-After delay; nothing was lost.', {
      headers: { 'retry-after': '30' },
    })
  }
}

/**
 * The inbox processor for ERP events: re-reads the record (whatever the events said, in
 * whatever order they came) and upserts its ERP-side snapshot; a 404 marks it deleted.
 */
export const processErpRecord: RecordProcessor = async (ctx, record) => {
  const { client } = await connectedClient(ctx, record.companyId)
  const def = entity(record.recordType)
  const json = await client.get(def.erp.resource, record.resourceId)
  if (json === null) {
    await markDeleted(ctx.db, record.companyId, 'erp', record.recordType, [record.resourceId])
    return 'processed'
  }
  await upsertSnapshots(ctx.db, record.companyId, 'erp', record.recordType, [{ ...def.erp.from(json), raw: json }])
  return 'processed'
}
