import { sql } from 'kysely'
import type { Db } from '../db/database.js'

/** The sync domain's background tasks (registered in src/sync/tasks.ts). */
export const SyncTasks = {
  /** Drains sync_dirty for one company and type: compares linked pairs, auto-imports, ends links of deleted records. */
  evaluate: 'sync:evaluate',
  /** Writes owned fields of one link to the side that is behind. */
  propagate: 'sync:propagate',
  /** Brings Procore's origin_id/origin_code in line with the links of one company and type. */
  origins: 'sync:origins',
  /** Creates records on the other side for a run (create-in-procore / create-in-erp). */
  create: 'sync:create',
  /** Links every unambiguous suggestion above a score for a run. */
  bulkLink: 'sync:bulk-link',
} as const

export interface JobSpec {
  task: string
  payload: Record<string, unknown>
  jobKey?: string
  queueName?: string
  runAt?: Date
  maxAttempts?: number
}

/** Adds many jobs in one statement, in the caller's transaction (graphile_worker.add_jobs). */
export async function enqueueMany(db: Db, specs: readonly JobSpec[]): Promise<void> {
  for (let i = 0; i < specs.length; i += 1000) {
    const rows = specs.slice(i, i + 1000).map((s) => sql`(${s.task}, ${JSON.stringify(s.payload)}::json, ${s.queueName ?? null}::text,
      ${s.runAt ?? null}::timestamptz, ${s.maxAttempts ?? 10}::int, ${s.jobKey ?? null}::text, null::int, null::text[])::graphile_worker.job_spec`)
    await sql`select 1 from graphile_worker.add_jobs(array[${sql.join(rows)}])`.execute(db)
  }
}

export function propagateJob(companyId: string, type: string, linkId: string): JobSpec {
  // One queue per company and type: writes of one kind go out one after another, in order.
  return { task: SyncTasks.propagate, payload: { companyId, type, linkId }, jobKey: `propagate:${linkId}`, queueName: `propagate:${companyId}:${type}`, maxAttempts: 8 }
}

export function originsJob(companyId: string, type: string, runAt?: Date): JobSpec {
  const key = `origins:${companyId}:${type}`
  return { task: SyncTasks.origins, payload: { companyId, type }, jobKey: key, queueName: key, maxAttempts: 12, ...(runAt ? { runAt } : {}) }
}
