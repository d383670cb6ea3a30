import type { AppContext } from '../context.js'
import { newSecret } from '../crypto/secrets.js'
import { notFound } from '../errors.js'
import type { ProcoreTriggerState } from '../db/tables/procore.js'
import { connectionView, usableConnection } from './connection.js'
import { forgetWebhookSecret, hashHeader, webhookHeader } from './intake.js'
import { ProcoreApi, TRIGGER_BATCH } from './resources.js'
import type { Hook } from './types.js'

export const PayloadVersions = ['v2.0', 'v3.0', 'v4.0'] as const
export type PayloadVersion = (typeof PayloadVersions)[number]
/** Procore's advice: "New integrations should use v4.0". */
export const DEFAULT_PAYLOAD_VERSION: PayloadVersion = 'v4.0'

const EVENT_TYPES = ['create', 'update', 'delete'] as const
const normalVersion = (v: string | null | undefined): string => (v && /^v\d$/.test(v) ? `${v}.0` : (v ?? ''))

export const destinationUrl = (ctx: AppContext) => `${ctx.config.publicUrl}/webhooks/procore`

/** Every resource the caller consumes, each with create, update and delete. */
function wantedTriggers(names: readonly string[]): Array<{ resource_name: string; event_type: string }> {
  return [...new Set(names)].flatMap((resource_name) =>
    EVENT_TYPES.map((event_type) => ({ resource_name, event_type })),
  )
}

async function connectedApi(ctx: AppContext, companyId: string): Promise<ProcoreApi> {
  await usableConnection(ctx.db, companyId)
  return new ProcoreApi(ctx, companyId)
}

function authorizationOf(hook: Hook | null): string | undefined {
  const headers = hook?.destination_headers ?? {}
  const value = Object.entries(headers).find(([name]) => name.toLowerCase() === 'authorization')?.[1]
  return typeof value === 'string' ? value : undefined
}

/**
 * Creates or updates this service's hook for the company in Procore (one namespace, destination
 * PUBLIC_URL/webhooks/procore, a generated secret as the Authorization header) and its triggers
 * (create/update/delete of every resource we consume) through the bulk endpoint. Idempotent:
 * a second call with nothing to change only reads.
 *
 * Rotation stores the new secret's hash before Procore gets it, and keeps the secret Procore was
 * sending valid for WEBHOOK_SECRET_GRACE_HOURS, so no delivery is refused in between.
 */
export interface WebhookOptions {
  /** The webhook resource names to subscribe to (e.g. `Company Vendors`). */
  resourceNames: readonly string[]
  rotateSecret?: boolean
  payloadVersion?: PayloadVersion
}

export async function installWebhook(ctx: AppContext, companyId: string, options: WebhookOptions) {
  const api = await connectedApi(ctx, companyId)
  const { webhookNamespace: namespace, webhookSecretGraceHours } = ctx.config.procore
  const url = destinationUrl(ctx)
  const local = await ctx.db
    .selectFrom('procore_webhooks')
    .selectAll()
    .where('company_id', '=', companyId)
    .executeTakeFirst()
  const apiVersion = options.payloadVersion ?? (local ? normalVersion(local.api_version) : DEFAULT_PAYLOAD_VERSION)

  // Our hook: the one we recorded, else one in our namespace pointing at us (e.g. after a lost response).
  let hook = local?.hook_id ? await api.getHook(local.hook_id) : null
  if (hook && hook.namespace !== namespace) hook = null
  hook ??= (await api.listHooks(namespace)).find((h) => h.destination_url === url) ?? null

  const remoteHeader = authorizationOf(hook)
  const remoteHash = remoteHeader === undefined ? undefined : hashHeader(remoteHeader)
  // Procore shows the header it sends; when it does not, trust our record of the hook.
  const inStep =
    local !== undefined &&
    hook !== null &&
    (remoteHash === undefined ? local.hook_id === hook.id : remoteHash === local.secret_hash)
  const rotate = options.rotateSecret === true || !inStep

  if (rotate) {
    const header = webhookHeader(companyId, newSecret())
    // What Procore sends until it has the new header stays valid through the grace period.
    const previousHash = remoteHash ?? local?.secret_hash ?? null
    const now = new Date()
    const values = {
      namespace,
      api_version: apiVersion,
      destination_url: url,
      secret_hash: hashHeader(header),
      previous_secret_hash: previousHash,
      previous_valid_until: previousHash ? new Date(now.getTime() + webhookSecretGraceHours * 3600_000) : null,
      secret_rotated_at: now,
      updated_at: now,
    }
    await ctx.db
      .insertInto('procore_webhooks')
      .values({ company_id: companyId, hook_id: hook?.id ?? null, ...values })
      .onConflict((oc) => oc.column('company_id').doUpdateSet(values))
      .execute()
    forgetWebhookSecret(ctx, companyId)
    try {
      const body = { api_version: apiVersion, destination_url: url, destination_headers: { Authorization: header } }
      hook = hook ? await api.updateHook(hook.id, body) : await api.createHook({ ...body, namespace })
    } catch (error) {
      // Procore kept what it had: so do we.
      if (local) {
        const { company_id: _id, ...before } = local
        await ctx.db
          .updateTable('procore_webhooks')
          .set({ ...before, triggers: JSON.stringify(local.triggers) })
          .where('company_id', '=', companyId)
          .execute()
      } else {
        await ctx.db.deleteFrom('procore_webhooks').where('company_id', '=', companyId).execute()
      }
      forgetWebhookSecret(ctx, companyId)
      throw error
    }
  } else if (hook && (hook.destination_url !== url || normalVersion(hook.api_version) !== apiVersion)) {
    hook = await api.updateHook(hook.id, { api_version: apiVersion, destination_url: url })
  }
  if (!hook) throw new Error('no Procore hook after installation')

  const triggers = await syncTriggers(api, hook.id, apiVersion, options.resourceNames)
  await ctx.db
    .updateTable('procore_webhooks')
    .set({
      hook_id: hook.id,
      namespace,
      api_version: apiVersion,
      destination_url: url,
      triggers: JSON.stringify(triggers),
      installed_at: new Date(),
      updated_at: new Date(),
    })
    .where('company_id', '=', companyId)
    .execute()
  return webhookView(ctx, companyId)
}

/** Makes the hook's triggers exactly the wanted ones in this payload version; reports what Procore refused. */
async function syncTriggers(
  api: ProcoreApi,
  hookId: string,
  apiVersion: string,
  resourceNames: readonly string[],
): Promise<ProcoreTriggerState[]> {
  const wanted = wantedTriggers(resourceNames)
  const key = (t: { resource_name: string; event_type: string }) => `${t.resource_name}\u0000${t.event_type}`
  const wantedKeys = new Set(wanted.map(key))
  const existing = await api.listTriggers(hookId)
  const current = existing.filter(
    (t) => wantedKeys.has(key(t)) && (t.api_version == null || normalVersion(t.api_version) === apiVersion),
  )
  const stale = existing.filter((t) => !current.includes(t))
  for (let i = 0; i < stale.length; i += TRIGGER_BATCH)
    await api.deleteTriggers(
      hookId,
      stale.slice(i, i + TRIGGER_BATCH).map((t) => t.id),
    )

  // Event types a resource cannot be subscribed to (e.g. Projects: delete) are known up front when Procore lists them.
  const refusedUpFront = new Map<string, string>()
  try {
    for (const resource of await api.webhookResources()) {
      for (const eventType of resource.except ?? [])
        refusedUpFront.set(
          key({ resource_name: resource.resource_name, event_type: eventType }),
          `Procore does not offer ${eventType} events for ${resource.resource_name}`,
        )
    }
  } catch {
    // Optional knowledge: without it, Procore's answer to the bulk create tells the same.
  }
  const have = new Set(current.map(key))
  const missing = wanted.filter((t) => !have.has(key(t)) && !refusedUpFront.has(key(t)))
  const refused = new Map(refusedUpFront)
  for (let i = 0; i < missing.length; i += TRIGGER_BATCH) {
    const result = await api.createTriggers(hookId, apiVersion, missing.slice(i, i + TRIGGER_BATCH))
    for (const failure of result.failed ?? []) {
      const t = failure.trigger as { resource_name?: unknown; event_type?: unknown } | undefined
      if (typeof t?.resource_name !== 'string' || typeof t.event_type !== 'string') continue
      refused.set(
        key({ resource_name: t.resource_name, event_type: t.event_type }),
        failure.message ?? JSON.stringify(failure.errors ?? 'refused').slice(0, 300),
      )
    }
  }
  return wanted.map((t) => {
    const message = refused.get(key(t))
    return {
      resourceName: t.resource_name,
      eventType: t.event_type,
      status: message === undefined ? 'active' : 'unsupported',
      message: message ?? null,
    }
  })
}

export async function webhookView(ctx: AppContext, companyId: string) {
  const hook = await ctx.db
    .selectFrom('procore_webhooks')
    .selectAll()
    .where('company_id', '=', companyId)
    .executeTakeFirst()
  const view = connectionView(ctx, companyId, undefined, hook).webhook
  if (!view) throw notFound('Procore webhook of company', companyId)
  return view
}

/**
 * Deletes our hook in Procore (best effort when Procore is unreachable) and forgets its secrets: later deliveries
 * get 401.
 */
export async function removeWebhook(
  ctx: AppContext,
  companyId: string,
  options: { remote: boolean } = { remote: true },
): Promise<void> {
  const local = await ctx.db
    .selectFrom('procore_webhooks')
    .selectAll()
    .where('company_id', '=', companyId)
    .executeTakeFirst()
  if (!local) throw notFound('Procore webhook of company', companyId)
  if (options.remote && local.hook_id) {
    try {
      await (await connectedApi(ctx, companyId)).deleteHook(local.hook_id)
    } catch (error) {
      ctx.log.warn(
        { component: 'procore', companyId, err: { message: (error as Error).message } },
        'could not delete the hook in Procore; its deliveries will now be refused',
      )
    }
  }
  await ctx.db.deleteFrom('procore_webhooks').where('company_id', '=', companyId).execute()
  forgetWebhookSecret(ctx, companyId)
}
