import type { Selectable } from 'kysely'
import { keyset, type Page, type PageRequest } from '../api/pagination.js'
import type { Db, Tx } from '../db/database.js'
import type { AuditEntriesTable } from '../db/tables/sync.js'
import type { AuditEntry } from '../schemas/audit.js'

/** Who acts: an API key (with the request id of the call), or a background job. */
export interface Actor {
  /** An API key id, or `system:<job>`. */
  id: string
  /** Our X-Request-Id, for changes made through the API. */
  requestId?: string | undefined
}

export const system = (job: string): Actor => ({ id: `system:${job}` })

/** An API caller: the key that called, and the request id of the call. */
export const apiActor = (keyId: string, requestId: string): Actor => ({ id: `api-key:${keyId}`, requestId })

export const AuditActions = [
  'link',
  'unlink',
  'create',
  'apply',
  'propagate',
  'settings',
  'ignore',
  'unignore',
  'archive',
  'unarchive',
  'export',
] as const
export type AuditAction = (typeof AuditActions)[number]

export interface AuditInput {
  action: AuditAction
  type?: string | null
  procoreId?: string | null
  erpId?: string | null
  linkId?: string | null
  before?: unknown
  after?: unknown
  /** Upstream request ids behind the change, when the connector reported them. */
  upstream?: { procore?: string | undefined; erp?: string | undefined } | undefined
  detail?: string | null
}

/**
 * Writes audit entries in the caller's transaction, so an entry exists exactly when the change
 * it describes was committed. One statement for any number of entries.
 */
export async function audit(tx: Tx, companyId: string, actor: Actor, entries: readonly AuditInput[]): Promise<void> {
  if (entries.length === 0) return
  const rows = entries.map((e) => {
    const requestIds: Record<string, string> = {}
    if (actor.requestId) requestIds.api = actor.requestId
    if (e.upstream?.procore) requestIds.procore = e.upstream.procore
    if (e.upstream?.erp) requestIds.erp = e.upstream.erp
    return {
      company_id: companyId,
      actor: actor.id,
      action: e.action,
      type: e.type ?? null,
      procore_id: e.procoreId ?? null,
      erp_id: e.erpId ?? null,
      link_id: e.linkId ?? null,
      before: e.before === undefined ? null : JSON.stringify(e.before),
      after: e.after === undefined ? null : JSON.stringify(e.after),
      request_ids: JSON.stringify(requestIds),
      detail: e.detail ?? null,
    }
  })
  for (let i = 0; i < rows.length; i += 2000)
    await tx
      .insertInto('audit_entries')
      .values(rows.slice(i, i + 2000))
      .execute()
}

type Row = Omit<Selectable<AuditEntriesTable>, 'company_id'>

function toEntry(r: Row): AuditEntry {
  return {
    id: r.id,
    at: r.at.toISOString(),
    actor: r.actor,
    action: r.action as AuditAction,
    type: r.type,
    procoreId: r.procore_id,
    erpId: r.erp_id,
    linkId: r.link_id,
    before: r.before ?? null,
    after: r.after ?? null,
    requestIds: r.request_ids,
    detail: r.detail,
  }
}
export type { AuditEntry }

const auditKeyset = keyset('audit', 'desc', [{ column: 'id', type: 'bigint' }])

/** The company's history, newest first; `recordId` matches a Procore id, an ERP id or a link id. */
export async function listAudit(
  db: Db,
  companyId: string,
  filter: { type?: string | undefined; recordId?: string | undefined; action?: string | undefined },
  page: PageRequest,
): Promise<Page<AuditEntry>> {
  let query = db
    .selectFrom('audit_entries')
    .select([
      'id',
      'at',
      'actor',
      'action',
      'type',
      'procore_id',
      'erp_id',
      'link_id',
      'before',
      'after',
      'request_ids',
      'detail',
    ])
    .where('company_id', '=', companyId)
  if (filter.type) query = query.where('type', '=', filter.type)
  if (filter.action) query = query.where('action', '=', filter.action)
  if (filter.recordId) {
    const id = filter.recordId
    const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
    query = query.where((eb) =>
      eb.or([eb('procore_id', '=', id), eb('erp_id', '=', id), ...(UUID.test(id) ? [eb('link_id', '=', id)] : [])]),
    )
  }
  return auditKeyset.page(query, page, toEntry)
}
