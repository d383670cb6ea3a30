import { sql, type Selectable } from 'kysely'
import type { Database, Db, Tx } from '../db/database.js'
import { notFound } from '../errors.js'
import { keyset, type Page, type PageRequest } from '../api/pagination.js'
import type { Run } from '../schemas/runs.js'

type RunRow = Selectable<Database['sync_runs']>

function toRun(row: RunRow): Run {
  return {
    id: row.id, companyId: row.company_id, kind: row.kind, status: row.status, params: row.params, result: row.result, error: row.error,
    requestedBy: row.requested_by, createdAt: row.created_at.toISOString(), startedAt: row.started_at?.toISOString() ?? null, finishedAt: row.finished_at?.toISOString() ?? null,
  }
}
export type { Run }

/** A run row for work a job will do; create it in the same transaction as the job. */
export async function createRun(tx: Tx, companyId: string, kind: string, params: Record<string, unknown>, requestedBy: string): Promise<Run> {
  const row = await tx.insertInto('sync_runs')
    .values({ company_id: companyId, kind, status: 'queued', params: JSON.stringify(params), result: null, error: null, requested_by: requestedBy, started_at: null, finished_at: null })
    .returningAll().executeTakeFirstOrThrow()
  return toRun(row)
}

export async function startRun(db: Db, runId: string): Promise<void> {
  await db.updateTable('sync_runs').set({ status: 'running', started_at: sql<Date>`coalesce(started_at, now())` }).where('id', '=', runId).execute()
}

/** Progress or partial results while running; the final call passes a status. */
export async function finishRun(db: Db, runId: string, outcome: { status: 'succeeded' | 'failed'; result?: Record<string, unknown>; error?: string }): Promise<void> {
  await db.updateTable('sync_runs')
    .set({ status: outcome.status, result: outcome.result ? JSON.stringify(outcome.result) : null, error: outcome.error ?? null, finished_at: new Date() })
    .where('id', '=', runId).execute()
}

export async function updateRunResult(db: Db, runId: string, result: Record<string, unknown>): Promise<void> {
  await db.updateTable('sync_runs').set({ result: JSON.stringify(result) }).where('id', '=', runId).execute()
}

export async function getRun(db: Db, companyId: string, runId: string): Promise<Run> {
  const row = await db.selectFrom('sync_runs').selectAll().where('company_id', '=', companyId).where('id', '=', runId).executeTakeFirst()
  if (!row) throw notFound('run', runId)
  return toRun(row)
}

const runsKeyset = keyset('runs', 'desc', [{ column: 'created_at', type: 'timestamp' }, { column: 'id', type: 'uuid' }])

export async function listRuns(
  db: Db, companyId: string, filter: { kind?: string | undefined }, page: PageRequest,
): Promise<Page<Run>> {
  let query = db.selectFrom('sync_runs').selectAll().where('company_id', '=', companyId)
  if (filter.kind) query = query.where('kind', '=', filter.kind)
  return runsKeyset.page(query, page, toRun)
}
