import { Logger, runMigrations } from 'graphile-worker'
import { sql } from 'kysely'
import type { Db, Tx } from '../db/database.js'

export interface EnqueueOptions {
  /** De-duplicates: one pending job per key. With `replace` (default) a newer add replaces the pending one's payload and run time. */
  jobKey?: string
  jobKeyMode?: 'replace' | 'preserve_run_at' | 'unsafe_dedupe'
  runAt?: Date
  maxAttempts?: number
  /** Jobs in one named queue run one at a time, in order. */
  queueName?: string
}

/**
 * Adds a background job through SQL, so it commits or rolls back with the caller's
 * transaction: nothing acknowledged is lost and nothing rolled back is run.
 */
export async function enqueue(db: Db | Tx, task: string, payload: Record<string, unknown>, options: EnqueueOptions = {}): Promise<void> {
  await sql`select graphile_worker.add_job(
    ${task},
    ${JSON.stringify(payload)}::json,
    queue_name => ${options.queueName ?? null}::text,
    run_at => ${options.runAt ?? null}::timestamptz,
    max_attempts => ${options.maxAttempts ?? 10}::int,
    job_key => ${options.jobKey ?? null}::text,
    job_key_mode => ${options.jobKeyMode ?? 'replace'}::text
  )`.execute(db)
}

/** graphile-worker's own schema (versioned by the library). Run with the app's migrations. */
export async function installQueueSchema(connectionString: string): Promise<void> {
  await runMigrations({ connectionString, logger: silentLogger })
}

const silentLogger = new Logger(() => () => {})
