import { component, type AppContext } from '../context.js'
import type { ErpClient } from './client.js'
import { loadConnection, type StoredConnection } from './connections.js'
import { CLIENTS, newErpClient } from './connector.js'
import { ErpRefusedError, type ErpFieldError } from './errors.js'
import { formatProblem } from './formats.js'
import { NonNullableText, type ErpInfo, type ErpPayment, type ErpRecordJson, type ErpResource } from './protocol.js'

type Json = Record<string, unknown>

/** One company's ERP records, by protocol resource, over its stored connection. */
export interface ErpRecordApi {
  /** The current record (with `version`), or null when the ERP answers 404. */
  get(resource: ErpResource, id: string): Promise<ErpRecordJson | null>
  list(
    resource: ErpResource,
    options?: { updatedSince?: Date | undefined; jobId?: string | undefined },
  ): AsyncGenerator<ErpRecordJson[]>
  /**
   * Creates with an Idempotency-Key: the same key always yields the same ERP record. Refusals
   * throw `ErpRefusedError` carrying the ERP's per-field messages; `what` says what was asked.
   */
  create(
    resource: ErpResource,
    body: Json,
    idempotencyKey: string,
    options: { jobId?: string | null; what: string },
  ): Promise<ErpRecordJson>
  /** Updates if the record is still at `version` (If-Match); a stale version throws `ErpStaleVersionError`. */
  update(resource: ErpResource, id: string, body: Json, version: number, what: string): Promise<ErpRecordJson>
  /** Payments of AP invoices changed since `updatedSince` (all without it), page by page. */
  payments(options?: { updatedSince?: Date | undefined }): AsyncGenerator<ErpPayment[]>
  /** Whether the agent serves this list (`capabilities.resources` at its last connection test). */
  serves(resource: string): boolean
  /** The agent's declared limits at its last connection test (lengths in code points, formats from 1.1). */
  limits(): ErpInfo['limits']
}

/**
 * The company's ERP records. Throws ErpNotConnectedError when the company has none. Writes are
 * checked against the agent's `limits.max_lengths` before they are sent; the agent's own refusals
 * come back as ErpRefusedError and stale versions as ErpStaleVersionError (./errors.ts). Transport
 * failures, 401, 429 and 5xx stay UpstreamErrors (`retryable` says whether a later retry may help).
 */
export async function erpRecordApi(ctx: AppContext, companyId: string): Promise<ErpRecordApi> {
  const { client, connection } = await connectedClient(ctx, companyId)
  return {
    get: (resource, id) => client.get(resource, id),
    list: (resource, options = {}) => {
      if (options.jobId !== undefined && resource !== 'cost-codes')
        throw new TypeError(`jobId applies to cost codes only, not ${resource}`)
      return client.list(resource, { jobId: options.jobId, updatedSince: options.updatedSince })
    },
    create: async (resource, body, idempotencyKey, { jobId, what }) => {
      // AP invoices name their job in the body (protocol 1.2); cost codes are created under it.
      if (resource === 'ap-invoices' && jobId !== undefined && jobId !== null) {
        const sent = protocolBody(resource, { ...body, job_id: jobId })
        checkWritable(connection, resource, what)
        checkLengths(connection, resource, sent, what)
        return (await client.create(resource, null, sent, idempotencyKey)).record
      }
      if (jobId !== undefined && jobId !== null && resource !== 'cost-codes')
        throw new TypeError(`jobId applies to cost codes only, not ${resource}`)
      checkWritable(connection, jobId !== undefined && jobId !== null ? 'job-cost-codes' : resource, what)
      const sent = protocolBody(resource, body)
      checkLengths(connection, resource, sent, what)
      return (await client.create(resource, jobId, sent, idempotencyKey)).record
    },
    update: async (resource, id, body, version, what) => {
      checkWritable(connection, resource, what)
      const sent = protocolBody(resource, body)
      checkLengths(connection, resource, sent, what)
      return client.update(resource, id, sent, version)
    },
    payments: (options = {}) => client.payments(options),
    serves: (resource) => connection.info.capabilities.resources.includes(resource),
    limits: () => connection.info.limits,
  }
}

/** The company's stored connection and a client for it, reused until the connection changes. */
export async function connectedClient(
  ctx: AppContext,
  companyId: string,
): Promise<{ client: ErpClient; connection: StoredConnection }> {
  const connection = await loadConnection(ctx, companyId)
  const clients = component(ctx, CLIENTS, () => new Map<string, { version: number; client: ErpClient }>())
  let entry = clients.get(companyId)
  if (entry?.version !== connection.version) {
    entry = {
      version: connection.version,
      client: newErpClient(ctx, companyId, connection, { pageSize: connection.info.limits.max_page_size }),
    }
    clients.set(companyId, entry)
  }
  return { client: entry.client, connection }
}

/**
 * Canonical fields are null when empty; the protocol writes empty text that is not nullable as
 * `""` (e.g. an employee without a phone), so such nulls are sent as `""`.
 */
function protocolBody(resource: ErpResource, body: Json): Json {
  const out = { ...body }
  for (const field of NonNullableText[resource]) if (out[field] === null) out[field] = ''
  return out
}

/**
 * Writes only to resources in `capabilities.writable` (every listed one when it is absent): the
 * protocol (1.1) has agents answer 405 `not_writable` otherwise, so it is not sent at all.
 */
function checkWritable(connection: StoredConnection, resource: string, what: string): void {
  const writable = connection.info.capabilities.writable
  if (writable === undefined || writable.includes(resource)) return
  throw new ErpRefusedError({
    erpStatus: 405,
    erpCode: 'not_writable',
    fieldErrors: [],
    what,
    erpDetail: `the agent does not accept writes to ${resource} (capabilities.writable); enable them in the agent.`,
  })
}

/**
 * The protocol's text limits of this ERP (`limits.max_lengths` in code points, e.g. vendor names
 * of 30 on Sage 300 CRE) and its code formats (`limits.formats`, 1.1): refused here, in the
 * agent's words, rather than sent to be refused or truncated.
 */
function checkLengths(connection: StoredConnection, resource: ErpResource, body: Json, what: string): void {
  const limits = connection.info.limits.max_lengths[resource] ?? {}
  const errors: ErpFieldError[] = []
  for (const [field, max] of Object.entries(limits)) {
    const value = body[field]
    if (typeof value === 'string' && [...value].length > max)
      errors.push({ field, message: `${field} must be at most ${max} characters` })
  }
  for (const [field, format] of Object.entries(connection.info.limits.formats?.[resource] ?? {})) {
    const value = body[field]
    const message = typeof value === 'string' && value !== '' ? formatProblem(field, value, format) : undefined
    if (message !== undefined) errors.push({ field, message })
  }
  if (errors.length > 0) {
    throw new ErpRefusedError({
      erpStatus: 422,
      erpCode: 'validation_failed',
      fieldErrors: errors,
      what,
      erpDetail:
        `${errors.length === 1 ? '1 field is' : `${errors.length} fields are`} ` +
        'not accepted by this ERP (length or format, checked before sending).',
    })
  }
}
