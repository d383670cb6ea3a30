// Each company's ERP agent: where it is, its token (sealed), what it said about itself at the last
// connection test, and the secret it signs notifications with (sealed; the previous one stays
// valid for a grace period after a rotation). Secrets never leave this module except the
// notification secret, once, to the admin who creates or rotates it.
import { sql, type Selectable } from 'kysely'
import type { AppContext } from '../context.js'
import { transaction, type Db } from '../db/database.js'
import type { ErpSystem } from '../db/tables/companies.js'
import type { ErpConnectionsTable } from '../db/tables/erp.js'
import { etagOf } from '../api/etag.js'
import { AppError, notFound, preconditionFailed, preconditionRequired } from '../errors.js'
import { UpstreamError } from '../http/errors.js'
import type { ErpCheckReport, ErpConnection, ErpConnectionInput } from '../schemas/erp.js'
import { ErpNotConnectedError } from './errors.js'
import { newErpClient } from './connector.js'
import { ErpResources, ProtocolVersionError, type ErpInfo } from './protocol.js'
import { newNotificationSecret } from './signature.js'
import { validateBaseUrl } from './urls.js'

const SYSTEM_LABEL: Record<string, string> = {
  foundation: 'Foundation',
  sage300: 'Sage 300 CRE',
  vista: 'Viewpoint Vista',
  spectrum: 'Spectrum',
  quickbooks_desktop: 'QuickBooks Desktop',
  generic: 'a generic ERP',
}
const label = (system: string) => SYSTEM_LABEL[system] ?? system

/** Additional authenticated data of each sealed column: a value copied elsewhere fails to open. */
const aad = (companyId: string, field: 'token' | 'notification_secret' | 'previous_notification_secret') =>
  `company:${companyId}:erp.${field}`

export const CheckFailureCodes = [
  'unreachable',
  'unauthorized',
  'not_an_agent',
  'protocol_version_unsupported',
  'system_mismatch',
  'agent_unavailable',
] as const
export type CheckFailureCode = (typeof CheckFailureCodes)[number]

/** What a connection test found. */
export type CheckReport = ErpCheckReport

const notificationUrl = (ctx: AppContext, companyId: string) => `${ctx.config.publicUrl}/webhooks/erp/${companyId}`

const columns = [
  'company_id',
  'base_url',
  'system',
  'company_name',
  'protocol_version',
  'info',
  'secret_created_at',
  'previous_secret_expires_at',
  'last_checked_at',
  'last_check_failure',
  'version',
  'created_at',
  'updated_at',
] as const

type Row = Pick<Selectable<ErpConnectionsTable>, (typeof columns)[number]>

function toView(ctx: AppContext, row: Row): ErpConnection {
  const info = row.info as ErpInfo
  const previousValid = row.previous_secret_expires_at !== null && row.previous_secret_expires_at > new Date()
  return {
    companyId: row.company_id,
    baseUrl: row.base_url,
    agent: {
      system: row.system,
      companyName: row.company_name,
      protocolVersion: row.protocol_version,
      resources: info.capabilities.resources,
      writable: info.capabilities.writable ?? null,
      notifications: info.capabilities.notifications ?? null,
      maxPageSize: info.limits.max_page_size,
      maxLengths: info.limits.max_lengths,
    },
    notifications: {
      url: notificationUrl(ctx, row.company_id),
      secretCreatedAt: row.secret_created_at.toISOString(),
      previousSecretValidUntil: previousValid ? row.previous_secret_expires_at!.toISOString() : null,
    },
    lastCheck: {
      at: row.last_checked_at.toISOString(),
      ok: row.last_check_failure === null,
      failure: row.last_check_failure,
    },
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  }
}
export type { ErpConnection }

const notConnected = (companyId: string) =>
  new AppError(
    404,
    'erp_not_connected',
    'No ERP connection',
    `Company ${companyId} has no ERP connection. ` +
      `Create one with PUT /v1/companies/${companyId}/erp/connection ({"baseUrl", "token"}).`,
  )

/** The ERP system the company is registered with; 404 when there is no such company. */
async function companySystem(ctx: AppContext, companyId: string): Promise<ErpSystem> {
  const row = await ctx.db.selectFrom('companies').select('erp_system').where('id', '=', companyId).executeTakeFirst()
  if (!row) throw notFound('company', companyId)
  return row.erp_system
}

export async function getConnection(
  ctx: AppContext,
  companyId: string,
): Promise<{ connection: ErpConnection; etag: string }> {
  const row = await ctx.db
    .selectFrom('erp_connections')
    .select(columns)
    .where('company_id', '=', companyId)
    .executeTakeFirst()
  if (!row) {
    await companySystem(ctx, companyId) // 404 for the company itself first
    throw notConnected(companyId)
  }
  return { connection: toView(ctx, row), etag: etagOf(row.version) }
}

export type ConnectionInput = ErpConnectionInput

/**
 * Creates or replaces the company's connection, after testing it: nothing is saved unless the
 * agent answers `/v1/info` with protocol 1.x, accepts the token and serves the company's ERP.
 * Replacing needs `ifMatch` (the ETag's version). A new connection gets a notification secret,
 * returned here once; a replacement keeps it.
 */
export async function putConnection(
  ctx: AppContext,
  companyId: string,
  input: ConnectionInput,
  ifMatch: number | undefined,
) {
  const erpSystem = await companySystem(ctx, companyId)
  const baseUrl = validateBaseUrl(input.baseUrl, ctx.config.erp.allowHttp)
  const existing = await ctx.db
    .selectFrom('erp_connections')
    .select('version')
    .where('company_id', '=', companyId)
    .executeTakeFirst()
  if (existing && ifMatch === undefined) throw preconditionRequired()
  if (existing && existing.version !== ifMatch) throw preconditionFailed(etagOf(existing.version))
  if (!existing && ifMatch !== undefined) {
    throw new AppError(
      412,
      'precondition_failed',
      'Precondition failed',
      `Company ${companyId} has no ERP connection yet: send the PUT without If-Match to create it.`,
    )
  }

  // The network call happens before any transaction is opened.
  const { report, info } = await checkAgent(ctx, companyId, { baseUrl, token: input.token }, erpSystem)
  if (!report.ok || !info) {
    throw new AppError(
      422,
      'erp_connection_test_failed',
      'The ERP agent did not pass the connection test',
      `${report.failure?.message ?? 'The agent did not answer as expected.'} Nothing was saved.`,
      { check: report },
    )
  }

  const fields = {
    base_url: baseUrl,
    token_sealed: ctx.secrets.seal(input.token, aad(companyId, 'token')),
    system: info.system,
    company_name: info.company_name,
    protocol_version: info.protocol_version,
    info: JSON.stringify(info),
    last_checked_at: new Date(report.checkedAt),
    last_check_failure: null,
  }
  let notificationSecret: string | null = null
  let row: Row | undefined
  if (existing) {
    row = await ctx.db
      .updateTable('erp_connections')
      .set({ ...fields, version: sql<number>`version + 1`, updated_at: new Date() })
      .where('company_id', '=', companyId)
      .where('version', '=', existing.version)
      .returning(columns)
      .executeTakeFirst()
  } else {
    notificationSecret = newNotificationSecret()
    row = await ctx.db
      .insertInto('erp_connections')
      .values({
        company_id: companyId,
        ...fields,
        notification_secret_sealed: ctx.secrets.seal(notificationSecret, aad(companyId, 'notification_secret')),
      })
      .onConflict((oc) => oc.column('company_id').doNothing())
      .returning(columns)
      .executeTakeFirst()
  }
  if (!row) {
    const current = await ctx.db
      .selectFrom('erp_connections')
      .select('version')
      .where('company_id', '=', companyId)
      .executeTakeFirst()
    throw preconditionFailed(etagOf(current?.version ?? 0))
  }
  ctx.log.info(
    { component: 'erp', companyId, system: info.system, created: !existing },
    existing ? 'ERP connection replaced' : 'ERP connection created',
  )
  return {
    connection: toView(ctx, row),
    etag: etagOf(row.version),
    created: !existing,
    notificationSecret,
    check: report,
  }
}

/** Tests the stored connection again and records the outcome (shown by GET as `lastCheck`). */
export async function testConnection(ctx: AppContext, companyId: string): Promise<CheckReport> {
  const erpSystem = await companySystem(ctx, companyId)
  const stored = await loadConnection(ctx, companyId).catch((error: unknown) => {
    throw error instanceof ErpNotConnectedError ? notConnected(companyId) : error
  })
  const { report, info } = await checkAgent(ctx, companyId, stored, erpSystem)
  await ctx.db
    .updateTable('erp_connections')
    .set({
      last_checked_at: new Date(report.checkedAt),
      last_check_failure: report.failure === null ? null : JSON.stringify(report.failure),
      ...(info && {
        system: info.system,
        company_name: info.company_name,
        protocol_version: info.protocol_version,
        info: JSON.stringify(info),
      }),
    })
    .where('company_id', '=', companyId)
    .execute()
  return report
}

/**
 * A new notification secret, returned once. The one it replaces stays valid for
 * WEBHOOK_SECRET_GRACE_HOURS so the agent can switch without losing notifications; a previous
 * secret still in its grace period is dropped.
 */
export async function rotateNotificationSecret(ctx: AppContext, companyId: string) {
  const graceHours = ctx.config.procore.webhookSecretGraceHours
  return transaction(ctx.db, async (tx) => {
    const row = await tx
      .selectFrom('erp_connections')
      .select(['notification_secret_sealed'])
      .where('company_id', '=', companyId)
      .forUpdate()
      .executeTakeFirst()
    if (!row) throw notConnected(companyId)
    const current = ctx.secrets.open(row.notification_secret_sealed, aad(companyId, 'notification_secret'))
    const secret = newNotificationSecret()
    const validUntil = graceHours > 0 ? new Date(Date.now() + graceHours * 3600_000) : null
    const updated = await tx
      .updateTable('erp_connections')
      .set({
        notification_secret_sealed: ctx.secrets.seal(secret, aad(companyId, 'notification_secret')),
        secret_created_at: new Date(),
        previous_notification_secret_sealed:
          validUntil === null ? null : ctx.secrets.seal(current, aad(companyId, 'previous_notification_secret')),
        previous_secret_expires_at: validUntil,
        version: sql<number>`version + 1`,
        updated_at: new Date(),
      })
      .where('company_id', '=', companyId)
      .returning('version')
      .executeTakeFirstOrThrow()
    ctx.log.info({ component: 'erp', companyId }, 'ERP notification secret rotated')
    return {
      notificationSecret: secret,
      notificationUrl: notificationUrl(ctx, companyId),
      previousSecretValidUntil: validUntil?.toISOString() ?? null,
      etag: etagOf(updated.version),
    }
  })
}

/** What the client needs: the base URL, the opened token, and the agent's limits. */
export interface StoredConnection {
  baseUrl: string
  token: string
  version: number
  info: ErpInfo
}

export async function loadConnection(ctx: AppContext, companyId: string): Promise<StoredConnection> {
  const row = await ctx.db
    .selectFrom('erp_connections')
    .select(['base_url', 'token_sealed', 'version', 'info'])
    .where('company_id', '=', companyId)
    .executeTakeFirst()
  if (!row) throw new ErpNotConnectedError(companyId)
  return {
    baseUrl: row.base_url,
    token: ctx.secrets.open(row.token_sealed, aad(companyId, 'token')),
    version: row.version,
    info: row.info as ErpInfo,
  }
}

/**
 * The notification secrets valid now: current, and the previous one during its grace period. None without a
 * connection.
 */
export async function notificationSecrets(ctx: AppContext, companyId: string): Promise<string[]> {
  const row = await ctx.db
    .selectFrom('erp_connections')
    .select([
      'notification_secret_sealed',
      'previous_notification_secret_sealed',
      sql<boolean>`previous_secret_expires_at > now()`.as('previous_valid'),
    ])
    .where('company_id', '=', companyId)
    .executeTakeFirst()
  if (!row) return []
  const secrets = [ctx.secrets.open(row.notification_secret_sealed, aad(companyId, 'notification_secret'))]
  if (row.previous_valid && row.previous_notification_secret_sealed !== null) {
    secrets.push(
      ctx.secrets.open(row.previous_notification_secret_sealed, aad(companyId, 'previous_notification_secret')),
    )
  }
  return secrets
}

export async function hasConnection(db: Db, companyId: string): Promise<boolean> {
  return (
    (await db
      .selectFrom('erp_connections')
      .select('company_id')
      .where('company_id', '=', companyId)
      .executeTakeFirst()) !== undefined
  )
}

/**
 * Calls `GET /v1/info` once (one quick retry for a transient failure) and judges the answer.
 * Failures are reported, not thrown: the caller decides whether to save.
 */
export async function checkAgent(
  ctx: AppContext,
  companyId: string,
  target: { baseUrl: string; token: string },
  expected: ErpSystem,
) {
  const client = newErpClient(ctx, `check:${companyId}`, target, {
    retry: { maxAttempts: 2, baseDelayMs: 250, maxDelayMs: 1000, maxWaitMs: 2000 },
    timeouts: { headersMs: 10_000, bodyMs: 10_000 },
    // An explicit check of (maybe new) settings always reaches the agent, whatever its circuit says.
    breakers: undefined,
  })
  const checkedAt = new Date().toISOString()
  const fail = (code: CheckFailureCode, message: string, agent: CheckReport['agent'] = null) => ({
    report: { ok: false, checkedAt, failure: { code, message }, agent, warnings: [] } satisfies CheckReport,
    info: undefined,
  })
  let info: ErpInfo
  try {
    info = await client.info()
  } catch (error) {
    if (!(error instanceof UpstreamError)) throw error
    const failure = describeFailure(error, target.baseUrl)
    return fail(failure.code, failure.message)
  } finally {
    await client.close()
  }
  const agent = { system: info.system, companyName: info.company_name, protocolVersion: info.protocol_version }
  if (info.system !== expected) {
    return fail(
      'system_mismatch',
      `The agent serves ${label(info.system)} (company "${info.company_name}"), ` +
        `but company ${companyId} is registered with ${label(expected)}. ` +
        `Point baseUrl at the agent for ${label(expected)}, or change the company's erpSystem ` +
        `(PATCH /v1/companies/${companyId}) if the registration is wrong.`,
      agent,
    )
  }
  const warnings: string[] = []
  const served = new Set(info.capabilities.resources)
  for (const resource of [...ErpResources, 'job-cost-codes']) {
    if (!served.has(resource)) warnings.push(`The agent does not serve ${resource}; those records will not sync.`)
  }
  if (info.capabilities.notifications !== true)
    warnings.push('The agent does not send change notifications; ERP changes arrive only through refresh runs.')
  const writable = info.capabilities.writable
  if (writable !== undefined) {
    for (const resource of [...ErpResources, 'job-cost-codes']) {
      if (served.has(resource) && !writable.includes(resource))
        warnings.push(`${resource} are read-only in this ERP: records cannot be created or changed there.`)
    }
  }
  return { report: { ok: true, checkedAt, failure: null, agent, warnings } satisfies CheckReport, info }
}

function describeFailure(error: UpstreamError, baseUrl: string): { code: CheckFailureCode; message: string } {
  const status = error.status === undefined ? '' : ` (HTTP ${error.status})`
  switch (error.reason) {
    case 'timeout':
    case 'connection':
      return {
        code: 'unreachable',
        message:
          `Could not reach the agent at ${baseUrl} ` +
          `(${error.reason === 'timeout' ? 'timed out' : 'connection failed'}). ` +
          'Check the URL, that the agent is running, and that this service can reach it through firewalls or VPNs.',
      }
    case 'unauthorized':
    case 'forbidden':
      return {
        code: 'unauthorized',
        message: `The agent refused the token${status}. Copy the token from the agent's settings again.`,
      }
    case 'rate_limited':
    case 'unavailable':
    case 'server_error':
      return {
        code: 'agent_unavailable',
        message:
          `The agent answered but is not available now${status}: ` +
          'the ERP may be offline, locked or in maintenance. Retry later.',
      }
    default: {
      if (error.cause instanceof ProtocolVersionError) {
        return {
          code: 'protocol_version_unsupported',
          message: `${error.cause.message.replace(/^the/, 'The')}. Install an agent release that speaks version 1.x.`,
        }
      }
      const why =
        error.reason === 'redirect_blocked'
          ? 'it redirected instead of answering (redirects are not followed)'
          : error.reason === 'invalid_response'
            ? error.cause instanceof Error
              ? error.cause.message
              : 'the answer is not protocol JSON'
            : `GET /v1/info answered${status || ` ${error.reason}`}`
      return {
        code: 'not_an_agent',
        message:
          `The URL does not answer as an ERP Connector Protocol 1.x agent: ${why}. ` +
          "Check baseUrl: it is the agent's root, without /v1.",
      }
    }
  }
}
