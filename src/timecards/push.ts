import { sql, type Selectable } from 'kysely'
import type { Logger } from 'pino'
import { Type } from 'typebox'
import type { AppContext } from '../context.js'
import type { Db } from '../db/database.js'
import type { TimeEntriesTable } from '../db/tables/timecards.js'
import { UpstreamError, upstreamMessage } from '../http/errors.js'
import { defineTask } from '../jobs/task.js'
import { usableConnection } from '../procore/connection.js'
import { ProcoreApi } from '../procore/resources.js'
import type { TimecardEntry, TimecardEntryWrite } from '../procore/types.js'

type Row = Selectable<TimeEntriesTable>

/** Entries read per round; the Procore client keeps four calls in flight per company. */
const ROUND = 200
const IN_FLIGHT = 4

/**
 * Writes a company's pending time entries to Procore's timecard entries, one job per company at a time (its
 * queue) and one pending job per company (its key: batches accepted while it runs gather into the next one).
 * Procore has no batch endpoint for timecard entries (PROCORE.md §2.6, §2.8), so each entry is one create, update
 * or delete. An upstream that is unavailable or rate-limits beyond the HTTP layer's wait fails the job, which
 * graphile-worker retries with backoff; a refusal marks the entry failed with Procore's message.
 */
export const pushTask = defineTask({
  name: 'timecards:push',
  payload: Type.Object({ companyId: Type.String() }),
  maxAttempts: 25,
  queueName: ({ companyId }) => `timecards:${companyId}`,
  jobKey: ({ companyId }) => `timecards:push:${companyId}`,
  run: async (ctx, { companyId }) => {
    await pushPending(ctx, companyId)
  },
})

export async function pushPending(ctx: AppContext, companyId: string): Promise<{ sent: number; failed: number }> {
  await usableConnection(ctx.db, companyId)
  const api = new ProcoreApi(ctx, companyId)
  const log = ctx.log.child({ component: 'timecards', companyId })
  const totals = { sent: 0, failed: 0 }
  // Rows are taken in (updated_at, external_id) order past the last one seen, so an entry that stays pending
  // (changed again while its call was in flight) is picked up by the next job, never looped on here.
  let after: { at: Date; id: string } | null = null
  for (;;) {
    let query = ctx.db
      .selectFrom('time_entries')
      .selectAll()
      .where('company_id', '=', companyId)
      .where('status', '=', 'pending')
    if (after) {
      const { at, id } = after
      query = query.where(sql<boolean>`(updated_at, external_id) > (${at}, ${id})`)
    }
    const rows = await query.orderBy('updated_at').orderBy('external_id').limit(ROUND).execute()
    if (rows.length === 0) break
    const last = rows.at(-1)!
    after = { at: last.updated_at, id: last.external_id }
    let next = 0
    const worker = async () => {
      while (next < rows.length) {
        const row = rows[next++]!
        const outcome = await pushOne(ctx.db, api, row, log)
        totals[outcome]++
      }
    }
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker))
  }
  if (totals.sent + totals.failed > 0) log.info(totals, 'time entries written to Procore')
  return totals
}

/** A write that Procore refused: the entry is failed with Procore's words. Anything else is thrown. */
function refusalOf(error: unknown): string | undefined {
  if (!(error instanceof UpstreamError) || error.retryable) return undefined
  const status = error.status ?? 0
  if (status < 400 || status >= 500 || status === 401) return undefined
  return `Procore answered ${status}: ${upstreamMessage(error.body) ?? error.reason}`
}

async function pushOne(db: Db, api: ProcoreApi, row: Row, log: Logger): Promise<'sent' | 'failed'> {
  try {
    const procoreId = row.wanted === 'present' ? await write(db, api, row) : await remove(api, row)
    await settle(db, row, { status: row.wanted === 'present' ? 'sent' : 'voided', procoreId, error: null })
    return 'sent'
  } catch (error) {
    const refused = refusalOf(error)
    if (refused === undefined) throw error
    log.warn({ externalId: row.external_id, error: refused }, 'Procore refused a time entry')
    await settle(db, row, { status: 'failed', procoreId: row.procore_id, error: refused })
    return 'failed'
  }
}

/** Creates or updates the Procore twin; returns its id. */
async function write(db: Db, api: ProcoreApi, row: Row): Promise<string> {
  const body: TimecardEntryWrite = {
    ...(row.procore_body as TimecardEntryWrite),
    // Procore types a timecard origin_id as an integer: the allocated number, never the caller's text.
    origin_id: Number(row.origin_id),
  }
  const id = row.procore_id ?? (row.create_sent_at ? await findTwin(api, row) : null)
  if (id !== null) {
    try {
      return (await api.updateTimecardEntry(id, body)).id
    } catch (error) {
      // Deleted in Procore meanwhile: created again below.
      if (!(error instanceof UpstreamError && error.reason === 'not_found')) throw error
    }
  }
  // Marked before the call: if the answer is lost (a crash, a timeout), the next attempt looks the twin up first.
  await db
    .updateTable('time_entries')
    .set({ create_sent_at: new Date() })
    .where('company_id', '=', row.company_id)
    .where('external_id', '=', row.external_id)
    .execute()
  try {
    return (await api.createTimecardEntry(body)).id
  } catch (error) {
    // 409: an entry with this origin_id exists already (a create whose answer was lost): update that one.
    if (!(error instanceof UpstreamError && error.status === 409)) throw error
    const twin = await findTwin(api, row)
    if (twin === null) throw error
    return (await api.updateTimecardEntry(twin, body)).id
  }
}

/** Removes the Procore twin, if Procore has one; returns null (the entry no longer has a twin). */
async function remove(api: ProcoreApi, row: Row): Promise<null> {
  const id = row.procore_id ?? (row.create_sent_at ? await findTwin(api, row) : null)
  if (id !== null) await api.deleteTimecardEntry(id)
  return null
}

/**
 * The Procore entry carrying this entry's origin_id. Procore cannot filter timecard entries by origin_id
 * (PROCORE.md §2.6), so the user's entries of that day are read and compared.
 */
async function findTwin(api: ProcoreApi, row: Row): Promise<string | null> {
  const origin = String(row.origin_id)
  for await (const page of api.timecardEntries({
    startDate: row.entry_date,
    endDate: row.entry_date,
    partyIds: [row.party_id],
  })) {
    const twin = page.find((e: TimecardEntry) => e.origin_id != null && String(e.origin_id) === origin)
    if (twin) return twin.id
  }
  return null
}

/**
 * Records the outcome unless the entry changed while its call was in flight (its version moved): then it stays
 * pending with the new content, and a job is already queued for it. The Procore id is kept either way.
 */
async function settle(
  db: Db,
  row: Row,
  outcome: { status: 'sent' | 'voided' | 'failed'; procoreId: string | null; error: string | null },
): Promise<void> {
  const now = new Date()
  const result = await db
    .updateTable('time_entries')
    .set({
      status: outcome.status,
      error: outcome.error,
      procore_id: outcome.procoreId,
      sent_hash: outcome.status === 'failed' ? row.sent_hash : row.content_hash,
      create_sent_at: outcome.status === 'voided' ? null : sql<Date | null>`create_sent_at`,
      attempts: sql<number>`attempts + 1`,
      sent_at: outcome.status === 'failed' ? row.sent_at : now,
      updated_at: now,
    })
    .where('company_id', '=', row.company_id)
    .where('external_id', '=', row.external_id)
    .where('version', '=', row.version)
    .executeTakeFirst()
  if (Number(result.numUpdatedRows) === 0) {
    await db
      .updateTable('time_entries')
      .set({ procore_id: outcome.procoreId, attempts: sql<number>`attempts + 1` })
      .where('company_id', '=', row.company_id)
      .where('external_id', '=', row.external_id)
      .execute()
  }
}
