import { sql } from 'kysely'
import type { AppContext } from '../context.js'
import type { Db } from '../db/database.js'
import type { Side } from '../db/tables/records.js'
import { erpRecords, procoreRecords } from './sides.js'
import { ErpStaleVersionError } from '../erp/errors.js'
import { notFound, upstreamProblem } from '../errors.js'
import { UpstreamError } from '../http/errors.js'
import { collectUpstreamIds, type UpstreamIds } from '../http/upstream-ids.js'
import { entity, erpBody, procoreBody, type ErpKind, type Fields, type Mapped, type RecordType } from './registry.js'
import type { Json } from './sides.js'

/** A record as just read from its side: canonical fields plus the side's own JSON. */
export type LiveRecord = Mapped & { raw: Json }

export function mapRecord(type: RecordType, side: Side, raw: Json): LiveRecord {
  return { ...entity(type)[side].from(raw), raw }
}

export async function companyErpKind(db: Db, companyId: string): Promise<ErpKind> {
  const row = await db.selectFrom('companies').select('erp_system').where('id', '=', companyId).executeTakeFirst()
  if (!row) throw notFound('company', companyId)
  return row.erp_system
}

/**
 * The parents of a link's two records, from their snapshots, and the Procore record itself when a read saw it less
 * than `procoreSeenWithinMs` ago (0: never).
 */
async function stored(
  db: Db,
  companyId: string,
  type: RecordType,
  link: { procoreId: string; erpId: string },
  procoreSeenWithinMs: number,
) {
  const rows = await db
    .selectFrom('record_snapshots')
    .select(['side', 'parent_id'])
    .select(
      sql<Json | null>`case when side = 'procore' and deleted_at is null
        and seen_at > now() - make_interval(secs => ${procoreSeenWithinMs / 1000}) then raw end`.as('recent'),
    )
    .where('company_id', '=', companyId)
    .where('type', '=', type)
    .where((eb) =>
      eb.or([
        eb.and([eb('side', '=', 'procore'), eb('external_id', '=', link.procoreId)]),
        eb.and([eb('side', '=', 'erp'), eb('external_id', '=', link.erpId)]),
      ]),
    )
    .execute()
  const procore = rows.find((r) => r.side === 'procore')
  return {
    parents: { procore: procore?.parent_id ?? null, erp: rows.find((r) => r.side === 'erp')?.parent_id ?? null },
    recentProcore: procore?.recent ?? null,
  }
}

/**
 * Both records of a link as they are now (null: gone on that side). Never inside a transaction.
 *
 * `procoreSeenWithinMs` lets a Procore record that a read saw that recently stand in for reading it again: the
 * read that brought the change being propagated, typically. Procore's API calls are the scarce resource, and a
 * change after that read brings a webhook of its own and so another comparison. The ERP record is always read:
 * its version guards the write.
 */
export async function readBoth(
  ctx: AppContext,
  companyId: string,
  type: RecordType,
  link: { procoreId: string; erpId: string },
  { procoreSeenWithinMs = 0 }: { procoreSeenWithinMs?: number } = {},
) {
  const { parents, recentProcore } = await stored(ctx.db, companyId, type, link, procoreSeenWithinMs)
  const [procore, erp] = await Promise.all([
    recentProcore ? undefined : procoreRecords(ctx, companyId),
    erpRecords(ctx, companyId),
  ])
  const [p, e] = await bothEnded(
    procore ? procore.get(type, link.procoreId, parents.procore) : Promise.resolve(recentProcore),
    erp.get(type, link.erpId),
  )
  return { procore: p ? mapRecord(type, 'procore', p) : null, erp: e ? mapRecord(type, 'erp', e) : null, parents }
}

/**
 * Both results, or the first failure once the other call has ended too: a read still under way
 * when its caller has already answered would meet whatever the side does next (and be retried,
 * logged and counted against a request that is over).
 */
async function bothEnded<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [x, y] = await Promise.allSettled([a, b])
  if (x.status === 'rejected') throw x.reason
  if (y.status === 'rejected') throw y.reason
  return [x.value, y.value]
}

export interface WriteOutcome {
  procore?: LiveRecord
  erp?: LiveRecord
  /** The ERP record changed between our read and our write (its version moved): nothing was written. */
  staleErp: boolean
  /** A failure after the other side was written: that write stands, this one did not happen. */
  error?: Error
  /** The request ids Procore and the ERP answered the writes with, for the audit entry. */
  upstream: UpstreamIds
}

/**
 * Writes canonical field values to the sides that need them: the ERP first (with If-Match on
 * the version just read; its refusals end the attempt before anything is written), then
 * Procore. Never inside a transaction.
 */
export async function writeSide(
  ctx: AppContext,
  companyId: string,
  type: RecordType,
  link: { procoreId: string; erpId: string },
  live: { procore: LiveRecord | null; erp: LiveRecord | null; parents: { procore: string | null } },
  changes: { procore: Fields; erp: Fields },
): Promise<WriteOutcome> {
  const { result, ids } = await collectUpstreamIds(async (): Promise<Omit<WriteOutcome, 'upstream'>> => {
    const out: Omit<WriteOutcome, 'upstream'> = { staleErp: false }
    if (Object.keys(changes.erp).length > 0 && live.erp) {
      const erp = await erpRecords(ctx, companyId)
      const version = Number(live.erp.raw.version)
      try {
        out.erp = mapRecord(
          type,
          'erp',
          await erp.update(
            type,
            link.erpId,
            erpBody(type, changes.erp, 'update'),
            Number.isFinite(version) ? version : 0,
          ),
        )
      } catch (error) {
        if (error instanceof ErpStaleVersionError) return { staleErp: true }
        throw error
      }
    }
    if (Object.keys(changes.procore).length > 0 && live.procore) {
      try {
        const procore = await procoreRecords(ctx, companyId)
        out.procore = mapRecord(
          type,
          'procore',
          await procore.update(
            type,
            link.procoreId,
            procoreBody(type, changes.procore, 'update'),
            live.parents.procore,
          ),
        )
      } catch (error) {
        if (!out.erp) throw error
        out.error = error instanceof Error ? error : new Error(String(error))
      }
    }
    return out
  })
  return { ...result, upstream: ids }
}

/** A failure in words for a person (never a stack); an upstream's in the words the API would answer with. */
export function failureMessage(error: unknown): string {
  if (error instanceof UpstreamError) return upstreamProblem(error).detail.slice(0, 1000)
  if (error instanceof Error) return error.message.slice(0, 1000)
  return String(error).slice(0, 1000)
}
