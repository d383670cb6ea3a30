import type { Tx } from '../db/database.js'
import type { ExportStatus } from '../db/tables/exports.js'
import type { NotifyEvent } from '../notify/events.js'
import { emit } from '../notify/webhooks.js'
import { audit, type Actor } from './audit.js'

/** The event each status reports to subscriptions (`exporting` is reported as accepted). */
const EventOf: Record<ExportStatus, NotifyEvent> = {
  pending_acceptance: 'export.sent',
  exporting: 'export.accepted',
  exported: 'export.exported',
  failed_to_export: 'export.failed',
  rejected: 'export.rejected',
  retrieved: 'export.retrieved',
  withdrawn: 'export.withdrawn',
}

export interface TransitionInput {
  request: { id: string; type: string; procore_id: string }
  from: ExportStatus | null
  to: ExportStatus
  actor: Actor
  /** The person named in the body (sentBy, the approver), when given. */
  person?: string | undefined
  detail: string
  /** Extra fields for the audit entry and the event. */
  data?: Record<string, unknown>
  erpId?: string | null
  linkId?: string | null
}

/**
 * Records one transition of an export request in the caller's transaction — its history row, its
 * audit entry and its event for subscriptions — so all three exist exactly when the change committed.
 */
export async function recordTransition(tx: Tx, companyId: string, t: TransitionInput): Promise<void> {
  await tx
    .insertInto('export_transitions')
    .values({
      request_id: t.request.id,
      from_status: t.from,
      to_status: t.to,
      actor: t.actor.id,
      person: t.person ?? null,
      detail: t.detail,
    })
    .execute()
  await audit(tx, companyId, t.actor, [
    {
      action: 'export',
      type: t.request.type,
      procoreId: t.request.procore_id,
      erpId: t.erpId ?? null,
      linkId: t.linkId ?? null,
      before: t.from === null ? null : { status: t.from },
      after: { status: t.to, requestId: t.request.id, ...(t.person ? { person: t.person } : {}), ...t.data },
      detail: t.detail,
    },
  ])
  await emit(tx, companyId, EventOf[t.to], {
    exportId: t.request.id,
    type: t.request.type,
    procoreId: t.request.procore_id,
    status: t.to,
    detail: t.detail,
    ...(t.person ? { person: t.person } : {}),
    ...t.data,
  })
}
