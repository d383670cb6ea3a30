import type { AppContext } from '../context.js'
import { transaction } from '../db/database.js'
import type { Side } from '../db/tables/records.js'
import { ErpRefusedError } from '../erp/errors.js'
import { AppError, isRefusal, NotConnectedError } from '../errors.js'
import { UpstreamError } from '../http/errors.js'
import { heldRecords } from './hold.js'
import { audit, system } from './audit.js'
import { companyErpKind, failureMessage, readBoth, writeSide } from './connectors.js'
import { differingFields, routeField } from './discrepancies.js'
import { erpProblems, pickFields, type Fields, type RecordType } from './registry.js'
import { getSettings } from './settings.js'
import { markDeleted, upsertSnapshots, upsertSnapshotsInTx } from './snapshots.js'
import { clearFailed, flagFailed } from './status.js'

const actor = system('propagate')

/** A Procore record a read saw this recently is not read again before its fields are propagated. */
export const RECENT_READ_MS = 5000

/**
 * Writes the owned fields of one link to the side that is behind. Decides on a fresh read of
 * both sides (never on snapshots that may lag): the ERP record is read, and the Procore record
 * too unless a read saw it in the last RECENT_READ_MS (the read that brought this change,
 * typically; see readBoth). Writes through the connectors outside any transaction, then stores
 * what was written and audits it in one transaction. The stored snapshot now agrees with the
 * other side, so the echo of our own write (webhook or notification) finds nothing to do. A
 * record changed between our read and our write (the ERP's version moved) is read again, at most
 * three times.
 *
 * Returns normally when done or refused (the record shows `failed` with the reason); throws on
 * transient failures so the job retries with backoff.
 */
export async function propagateLink(
  ctx: AppContext,
  companyId: string,
  type: RecordType,
  linkId: string,
  lastAttempt: boolean,
): Promise<'written' | 'nothing' | 'refused' | 'gone'> {
  const link = await ctx.db
    .selectFrom('record_links')
    .select(['procore_id as procoreId', 'erp_id as erpId'])
    .where('company_id', '=', companyId)
    .where('id', '=', linkId)
    .where('unlinked_at', 'is', null)
    .executeTakeFirst()
  if (!link) return 'gone'
  // Held by an open export request (being exported right now): written once the request settles.
  const held = await heldRecords(ctx.db, companyId, type, [link.procoreId])
  if (held.size > 0)
    throw new Error(`held by export request ${[...held.values()].join(', ')}; retried after it settles`)
  const { settings } = await getSettings(ctx.db, companyId)
  const kind = await companyErpKind(ctx.db, companyId)
  const records = [
    { side: 'procore' as Side, externalId: link.procoreId },
    { side: 'erp' as Side, externalId: link.erpId },
  ]

  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      const live = await readBoth(ctx, companyId, type, link, { procoreSeenWithinMs: RECENT_READ_MS })
      if (!live.procore || !live.erp) {
        await markDeleted(ctx.db, companyId, !live.procore ? 'procore' : 'erp', type, [
          !live.procore ? link.procoreId : link.erpId,
        ])
        return 'gone'
      }
      const diffs = differingFields(type, live.procore.fields, live.erp.fields)
      const toErp: Fields = {}
      const toProcore: Fields = {}
      for (const d of diffs) {
        const route = routeField(settings[type], d.field)
        if (route === 'to_erp') toErp[d.field] = d.procore
        else if (route === 'to_procore') toProcore[d.field] = d.erp
      }
      if (Object.keys(toErp).length === 0 && Object.keys(toProcore).length === 0) {
        await upsertSnapshots(ctx.db, companyId, 'procore', type, [live.procore])
        await upsertSnapshots(ctx.db, companyId, 'erp', type, [live.erp])
        return 'nothing'
      }
      const problems = erpProblems(type, kind, toErp, 'update')
      if (problems.length > 0) {
        await flagFailed(ctx.db, companyId, type, [
          {
            side: 'erp',
            externalId: link.erpId,
            action: 'propagate',
            reason: `Not sent to the ERP: ${problems.map((p) => p.message).join('; ')}`,
          },
        ])
        return 'refused'
      }
      const written = await writeSide(ctx, companyId, type, link, live, { procore: toProcore, erp: toErp })
      if (written.staleErp) continue
      await transaction(ctx.db, async (tx) => {
        if (written.procore) await upsertSnapshotsInTx(tx, companyId, 'procore', type, [written.procore])
        if (written.erp) await upsertSnapshotsInTx(tx, companyId, 'erp', type, [written.erp])
        const entries = []
        if (written.erp) {
          entries.push({
            action: 'propagate' as const,
            type,
            procoreId: link.procoreId,
            erpId: link.erpId,
            linkId,
            detail: `owned by Procore → ERP: ${Object.keys(toErp).join(', ')}`,
            upstream: { erp: written.upstream.erp },
            before: { erp: pickFields(live.erp!.fields, Object.keys(toErp)) },
            after: { erp: pickFields(written.erp.fields, Object.keys(toErp)) },
          })
        }
        if (written.procore) {
          entries.push({
            action: 'propagate' as const,
            type,
            procoreId: link.procoreId,
            erpId: link.erpId,
            linkId,
            detail: `owned by the ERP → Procore: ${Object.keys(toProcore).join(', ')}`,
            upstream: { procore: written.upstream.procore },
            before: { procore: pickFields(live.procore!.fields, Object.keys(toProcore)) },
            after: { procore: pickFields(written.procore.fields, Object.keys(toProcore)) },
          })
        }
        await audit(tx, companyId, actor, entries)
        if (!written.error) await clearFailed(tx, companyId, type, records, 'propagate')
      })
      if (written.error) throw written.error
      return 'written'
    }
    // Retryable: the record may hold still later.
    throw new AppError(
      503,
      'erp_record_busy',
      'ERP record keeps changing',
      `ERP record ${link.erpId} changed three times while we tried to write it; the job retries later.`,
    )
  } catch (error) {
    // A refusal stays one however often it is sent; a missing connection may yet come.
    const refused = isRefusal(error) && !(error instanceof NotConnectedError)
    if (refused || lastAttempt) {
      const side = failedSide(error)
      await flagFailed(ctx.db, companyId, type, [
        {
          side,
          externalId: side === 'erp' ? link.erpId : link.procoreId,
          action: 'propagate',
          reason: failureMessage(error),
        },
      ])
      if (refused) return 'refused'
    }
    throw error
  }
}

/** Whose record shows the failure: the side that failed (Procore's when it cannot be told). */
function failedSide(error: unknown): Side {
  if (error instanceof UpstreamError || error instanceof NotConnectedError) return error.side ?? 'procore'
  return error instanceof ErpRefusedError ? 'erp' : 'procore'
}
