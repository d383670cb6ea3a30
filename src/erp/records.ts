import { component, type AppContext } from '../context.js'
import { entity, type RecordType } from '../sync/registry.js'
import type { ErpRecords, Json } from '../sync/sides.js'
import type { ErpClient } from './client.js'
import { loadConnection, type StoredConnection } from './connections.js'
import { CLIENTS, newErpClient } from './connector.js'
import { ErpRefusedError, type ErpFieldError } from './errors.js'
import { NonNullableText, type ErpResource } from './protocol.js'

/**
 * The ERP side of the sync contract (src/sync/sides.ts) for one company, over its stored
 * connection. Throws ErpNotConnectedError when the company has none. Writes are checked against
 * the agent's `limits.max_lengths` before they are sent; the agent's own refusals come back as
 * ErpRefusedError and stale versions as ErpStaleVersionError (./errors.ts). Transport failures,
 * 401, 429 and 5xx stay UpstreamErrors (`retryable` says whether a later retry may help).
 */
export async function erpRecords(ctx: AppContext, companyId: string): Promise<ErpRecords> {
  const { client, connection } = await connectedClient(ctx, companyId)
  const resourceOf = (type: RecordType): ErpResource => entity(type).erp.resource
  return {
    get: (type, id) => client.get(resourceOf(type), id),
    list: (type, options = {}) => {
      if (options.jobId !== undefined && type !== 'cost_code') throw new TypeError(`jobId applies to cost codes only, not ${type}`)
      return client.list(resourceOf(type), { jobId: options.jobId, updatedSince: options.updatedSince })
    },
    create: async (type, body, idempotencyKey, jobId) => {
      if (jobId !== undefined && jobId !== null && type !== 'cost_code') throw new TypeError(`jobId applies to cost codes only, not ${type}`)
      const resource = resourceOf(type)
      const sent = protocolBody(resource, body)
      checkLengths(connection, resource, sent, `create a ${type.replace('_', ' ')}`)
      return (await client.create(resource, jobId, sent, idempotencyKey)).record
    },
    update: async (type, id, body, version) => {
      const resource = resourceOf(type)
      const sent = protocolBody(resource, body)
      checkLengths(connection, resource, sent, `update ${type.replace('_', ' ')} ${id}`)
      return client.update(resource, id, sent, version)
    },
  }
}

/** The company's stored connection and a client for it, reused until the connection changes. */
export async function connectedClient(ctx: AppContext, companyId: string): Promise<{ client: ErpClient; connection: StoredConnection }> {
  const connection = await loadConnection(ctx, companyId)
  const clients = component(ctx, CLIENTS, () => new Map<string, { version: number; client: ErpClient }>())
  let entry = clients.get(companyId)
  if (entry?.version !== connection.version) {
    entry = { version: connection.version, client: newErpClient(ctx, companyId, connection, { pageSize: connection.info.limits.max_page_size }) }
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
 * The protocol's text limits of this ERP (`limits.max_lengths`, e.g. vendor names of 30 on
 * Sage 300 CRE): refused here, in the agent's words, rather than sent to be refused or truncated.
 */
function checkLengths(connection: StoredConnection, resource: ErpResource, body: Json, what: string): void {
  const limits = connection.info.limits.max_lengths[resource] ?? {}
  const errors: ErpFieldError[] = []
  for (const [field, max] of Object.entries(limits)) {
    const value = body[field]
    if (typeof value === 'string' && [...value].length > max) errors.push({ field, message: `${field} must be at most ${max} characters` })
  }
  if (errors.length > 0) {
    throw new ErpRefusedError({
      erpStatus: 422, erpCode: 'validation_failed', fieldErrors: errors, what,
      erpDetail: `${errors.length === 1 ? '1 field is' : `${errors.length} fields are`} longer than this ERP accepts (checked before sending).`,
    })
  }
}
