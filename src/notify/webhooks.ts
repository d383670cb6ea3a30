import { randomUUID } from 'node:crypto'
import { sql } from 'kysely'
import { Type } from 'typebox'
import { request as httpRequest } from 'undici'
import type { AppContext } from '../context.js'
import { headers as signedHeaders, newNotificationSecret } from '../crypto/standard-webhooks.js'
import type { Db, Tx } from '../db/database.js'
import { transaction } from '../db/database.js'
import { badRequest, notFound } from '../errors.js'
import { keyset, type Page, type PageRequest } from '../api/pagination.js'
import { enqueue } from '../jobs/queue.js'
import { defineTask } from '../jobs/task.js'
import type { Delivery, Subscription } from '../schemas/notify.js'
import { NotifyEventNames, type NotifyEvent } from './events.js'

/**
 * Outbound webhooks to a company's own systems (Standard Webhooks 1.0, the scheme the ERP agent
 * signs with). An event is written as one delivery row per matching subscription in the
 * transaction of the change it reports, with the job that sends it: a change that rolls back
 * notifies nobody, and a committed one is delivered even after a crash. Failed sends retry with
 * backoff for 24 hours, then the delivery shows `failed`.
 */

/** How long a delivery is retried. */
export const RETRY_WINDOW_MS = 24 * 60 * 60 * 1000
const aad = (companyId: string, id: string) => `company:${companyId}:webhook_subscription:${id}`

type SubscriptionRow = { id: string; url: string; events: string[]; created_at: Date; created_by: string }
const toSubscription = (r: SubscriptionRow): Subscription => ({
  id: r.id,
  url: r.url,
  events: r.events as NotifyEvent[],
  createdBy: r.created_by,
  createdAt: r.created_at.toISOString(),
})

function checkUrl(url: string) {
  let u: URL | undefined
  try {
    u = new URL(url)
  } catch {
    u = undefined
  }
  if (!u || (u.protocol !== 'https:' && u.protocol !== 'http:') || u.username || u.password) {
    throw badRequest('invalid_url', 'url must be an absolute http(s) URL without credentials in it.', [
      { pointer: '/body/url', message: 'an absolute http(s) URL, e.g. https://hooks.example.com/erp-sync' },
    ])
  }
}

/** Subscribes a URL to events; the answer carries the signing secret, shown this once. */
export async function createSubscription(
  ctx: AppContext,
  companyId: string,
  input: { url: string; events: NotifyEvent[] },
  actorId: string,
): Promise<Subscription & { secret: string }> {
  checkUrl(input.url)
  const id = randomUUID()
  const secret = newNotificationSecret()
  const row = await ctx.db
    .insertInto('webhook_subscriptions')
    .values({
      id,
      company_id: companyId,
      url: input.url,
      events: JSON.stringify([...new Set(input.events)]),
      secret: ctx.secrets.seal(secret, aad(companyId, id)),
      created_by: actorId,
    })
    .returning(['id', 'url', 'events', 'created_at', 'created_by'])
    .executeTakeFirstOrThrow()
  return { ...toSubscription(row), secret }
}

const subscriptionsKeyset = keyset('subscriptions', 'desc', [
  { column: 'created_at', type: 'timestamp' },
  { column: 'id', type: 'uuid' },
])

export async function listSubscriptions(db: Db, companyId: string, page: PageRequest): Promise<Page<Subscription>> {
  const query = db
    .selectFrom('webhook_subscriptions')
    .select(['id', 'url', 'events', 'created_at', 'created_by'])
    .where('company_id', '=', companyId)
    .where('deleted_at', 'is', null)
  return subscriptionsKeyset.page(query, page, toSubscription)
}

async function liveSubscription(db: Db, companyId: string, id: string) {
  const row = await db
    .selectFrom('webhook_subscriptions')
    .selectAll()
    .where('company_id', '=', companyId)
    .where('id', '=', id)
    .where('deleted_at', 'is', null)
    .executeTakeFirst()
  if (!row) throw notFound('subscription', id)
  return row
}

export async function getSubscription(db: Db, companyId: string, id: string): Promise<Subscription> {
  return toSubscription(await liveSubscription(db, companyId, id))
}

/** Ends a subscription: nothing more is sent to it, pending deliveries included. Safe to repeat (404 after). */
export async function deleteSubscription(db: Db, companyId: string, id: string): Promise<void> {
  const done = await db
    .updateTable('webhook_subscriptions')
    .set({ deleted_at: new Date() })
    .where('company_id', '=', companyId)
    .where('id', '=', id)
    .where('deleted_at', 'is', null)
    .executeTakeFirst()
  if (Number(done.numUpdatedRows) === 0) throw notFound('subscription', id)
}

const deliveriesKeyset = keyset('deliveries', 'desc', [
  { column: 'created_at', type: 'timestamp' },
  { column: 'id', type: 'uuid' },
])

export async function listDeliveries(
  db: Db,
  companyId: string,
  subscriptionId: string,
  page: PageRequest,
): Promise<Page<Delivery>> {
  await liveSubscription(db, companyId, subscriptionId)
  const query = db
    .selectFrom('webhook_deliveries')
    .selectAll()
    .where('company_id', '=', companyId)
    .where('subscription_id', '=', subscriptionId)
  return deliveriesKeyset.page(query, page, (r) => ({
    id: r.id,
    event: r.event as NotifyEvent,
    status: r.status,
    attempts: r.attempts,
    lastStatus: r.last_status,
    lastError: r.last_error,
    payload: r.payload,
    createdAt: r.created_at.toISOString(),
    finishedAt: r.finished_at?.toISOString() ?? null,
  }))
}

/**
 * Records an event for every live subscription of the company that asked for it, with the job
 * that sends each, in the caller's transaction.
 */
export async function emit(
  tx: Tx,
  companyId: string,
  event: NotifyEvent,
  data: Record<string, unknown>,
  only?: string,
): Promise<void> {
  let subs = tx
    .selectFrom('webhook_subscriptions')
    .select('id')
    .where('company_id', '=', companyId)
    .where('deleted_at', 'is', null)
    .where(sql<boolean>`events ? ${event}`)
  if (only) subs = subs.where('id', '=', only)
  const rows = await subs.execute()
  for (const s of rows) {
    const id = randomUUID()
    const payload = { type: event, timestamp: new Date().toISOString(), data: { companyId, ...data } }
    await tx
      .insertInto('webhook_deliveries')
      .values({
        id,
        subscription_id: s.id,
        company_id: companyId,
        event,
        payload: JSON.stringify(payload),
        status: 'pending',
      })
      .execute()
    await enqueue(tx, deliverTask, { companyId, deliveryId: id })
  }
}

/** Sends a `webhook.test` message to one subscription (whatever events it asked for). */
export async function testSend(ctx: AppContext, companyId: string, subscriptionId: string): Promise<void> {
  await liveSubscription(ctx.db, companyId, subscriptionId)
  await transaction(ctx.db, async (tx) => {
    const id = randomUUID()
    await tx
      .insertInto('webhook_deliveries')
      .values({
        id,
        subscription_id: subscriptionId,
        company_id: companyId,
        event: 'webhook.test',
        payload: JSON.stringify({
          type: 'webhook.test',
          timestamp: new Date().toISOString(),
          data: { companyId, message: 'This is a test message from erp-sync.' },
        }),
        status: 'pending',
      })
      .execute()
    await enqueue(tx, deliverTask, { companyId, deliveryId: id })
  })
}

/** Sends one delivery, signed afresh per attempt; throws (retry with backoff) until 2xx or 24 hours. */
export const deliverTask = defineTask({
  name: 'notify:deliver',
  payload: Type.Object({ companyId: Type.String(), deliveryId: Type.String() }),
  // graphile-worker waits exp(min(attempt, 10)) s between attempts: 13 attempts span just over 24 hours.
  maxAttempts: 13,
  run: async (ctx, { companyId, deliveryId }, job) => {
    const d = await ctx.db
      .selectFrom('webhook_deliveries as d')
      .innerJoin('webhook_subscriptions as s', 's.id', 'd.subscription_id')
      .select(['d.id', 'd.payload', 'd.status', 'd.created_at', 's.id as sub_id', 's.url', 's.secret', 's.deleted_at'])
      .where('d.company_id', '=', companyId)
      .where('d.id', '=', deliveryId)
      .executeTakeFirst()
    if (!d || d.status !== 'pending') return
    const finish = (status: 'delivered' | 'failed', lastStatus: number | null, lastError: string | null) =>
      ctx.db
        .updateTable('webhook_deliveries')
        .set({
          status,
          last_status: lastStatus,
          last_error: lastError,
          finished_at: new Date(),
          attempts: sql<number>`attempts + 1`,
        })
        .where('id', '=', deliveryId)
        .execute()
    if (d.deleted_at !== null) {
      await finish('failed', null, 'the subscription was deleted')
      return
    }
    const body = JSON.stringify(d.payload)
    const secret = ctx.secrets.open(d.secret, aad(companyId, d.sub_id))
    let status: number | null = null
    let error: string
    try {
      const res = await httpRequest(d.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...signedHeaders(secret, `msg_${d.id}`, body) },
        body,
        headersTimeout: 10_000,
        bodyTimeout: 10_000,
        ...(ctx.dispatcher ? { dispatcher: ctx.dispatcher } : {}),
      })
      status = res.statusCode
      await res.body.dump()
      if (status >= 200 && status < 300) {
        await finish('delivered', status, null)
        return
      }
      error = `the receiver answered ${status}`
    } catch (e) {
      error = e instanceof Error ? e.message : String(e)
    }
    const expired = Date.now() - d.created_at.getTime() >= RETRY_WINDOW_MS
    if (expired || job.lastAttempt) {
      await finish('failed', status, `${error}; gave up after 24 hours of retries`)
      return
    }
    await ctx.db
      .updateTable('webhook_deliveries')
      .set({ attempts: sql<number>`attempts + 1`, last_status: status, last_error: error })
      .where('id', '=', deliveryId)
      .execute()
    throw new Error(`webhook delivery ${deliveryId} failed: ${error}`)
  },
})

export const notifyEventNames = NotifyEventNames
