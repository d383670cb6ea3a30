import type { Selectable } from 'kysely'
import { sql } from 'kysely'
import type { Logger } from 'pino'
import { Type, type Static, type TSchema } from 'typebox'
import { Value } from 'typebox/value'
import type { AppContext } from '../context.js'
import { transaction, type Db, type Tx } from '../db/database.js'
import { FinishedRunStatuses, type SyncRunsTable } from '../db/tables/records.js'
import { conflict, isRetryable, notFound } from '../errors.js'
import type { JobInfo } from './task.js'

/**
 * Runs: work a caller asked for and polls (queued → running → succeeded | failed), performed by
 * a job. A domain declares its kinds with `defineRunKinds`, creates a run with its job in one
 * transaction (`createRun` + `enqueue`), and the job hands the work to `runJob`.
 */

export type RunRow = Selectable<SyncRunsTable>

/** The payload of a job that performs a run; companyId tells operators reading the queue whose it is. */
export const RunPayload = Type.Object({ companyId: Type.String(), runId: Type.String() })

export interface RunKind<P extends TSchema = TSchema, R extends TSchema = TSchema> {
  readonly name: string
  /** What was asked: checked when the run is created and when it runs. */
  readonly params: P
  /** What a finished run reports. */
  readonly result: R
  /** Whether a failure may pass if tried again later (the last attempt's never does). */
  readonly transient: (error: unknown) => boolean
  /** A failure in words for a person (never a stack). */
  readonly describe: (error: unknown) => string
  /** Told of a final failure in the transaction that records it (e.g. to notify subscribers). */
  readonly failed?: (tx: Tx, run: RunRow, error: string) => Promise<void>
}

export interface FailureRules {
  /** Default: `isRetryable` — an upstream unavailable, timed out or rate-limited, or our own 429/5xx. */
  transient?: (error: unknown) => boolean
  /** Default: the error's message. */
  describe?: (error: unknown) => string
  /** Called in the transaction that records a run's final failure. */
  failed?: (tx: Tx, run: RunRow, error: string) => Promise<void>
}

type KindSchemas = { params: TSchema; result: TSchema }
export type RunKinds<T extends Record<string, KindSchemas>> = {
  readonly [N in keyof T & string]: RunKind<T[N]['params'], T[N]['result']> & { readonly name: N }
}

/** A registry of run kinds: name → params and result schema, with how their failures are judged and told. */
export function defineRunKinds<const T extends Record<string, KindSchemas>>(
  kinds: T,
  rules: FailureRules = {},
): RunKinds<T> {
  const transient = rules.transient ?? isRetryable
  const describe = rules.describe ?? ((error: unknown) => (error instanceof Error ? error.message : String(error)))
  return Object.fromEntries(
    Object.entries(kinds).map(([name, k]) => [name, { ...k, name, transient, describe, failed: rules.failed }]),
  ) as RunKinds<T>
}

export type RunParams<K extends RunKind> = Static<K['params']>
export type RunResult<K extends RunKind> = Static<K['result']>

/** A run row for work a job will do; create it in the same transaction as the job. */
export async function createRun<K extends RunKind>(
  tx: Tx,
  kind: K,
  companyId: string,
  params: RunParams<K>,
  requestedBy: string,
  origin: { syncType?: string | null; trigger?: string } = {},
): Promise<RunRow> {
  if (!Value.Check(kind.params, params)) {
    const errors = Value.Errors(kind.params, params)
      .slice(0, 5)
      .map((e) => `${e.instancePath || '/'} ${e.message}`)
    throw new Error(`the params of a ${kind.name} run do not fit its schema: ${errors.join('; ')}`)
  }
  return tx
    .insertInto('sync_runs')
    .values({
      company_id: companyId,
      kind: kind.name,
      status: 'queued',
      params: JSON.stringify(params),
      result: null,
      error: null,
      requested_by: requestedBy,
      started_at: null,
      finished_at: null,
      sync_type: origin.syncType ?? null,
      trigger: origin.trigger ?? 'manual',
    })
    .returningAll()
    .executeTakeFirstOrThrow()
}

/** What the work of a run sees of it. */
export interface RunHandle<P, R> {
  readonly id: string
  readonly companyId: string
  readonly kind: string
  readonly params: P
  readonly requestedBy: string
  readonly job: JobInfo
  readonly log: Logger
  /** Stores results so far; they stay on the run if it then waits for a retry or fails. */
  progress(partial: Partial<R>): Promise<void>
  /** What the result says if the run stops on an error (final: no retry follows); by default the last progress. */
  onFailure(describe: (message: string, final: boolean) => Partial<R>): void
  /** A safe point: throws RunCancelled when someone asked to cancel the run (it then ends `cancelled`). */
  checkCancelled(): Promise<void>
}

/** Thrown at a safe point of a run someone asked to cancel. */
export class RunCancelled extends Error {
  override readonly name = 'RunCancelled'
}

const finished = (status: string) => (FinishedRunStatuses as readonly string[]).includes(status)

/** The run handed to the work of a job of kind K. */
export type JobRun<K extends RunKind> = RunHandle<RunParams<K>, RunResult<K>>

/**
 * The job behind a run: returns at once if the run already ended (a re-run after a crash),
 * marks it running, lets `work` report progress, and finishes it succeeded with the result
 * `work` returns. On an error the run either waits (transient, not the last attempt: the run
 * stays running with `lastError` and `attempt` in its result, and the job is retried with
 * backoff) or fails with a message a person can read (no stack).
 */
export async function runJob<K extends RunKind>(
  ctx: AppContext,
  kinds: K | readonly K[],
  runId: string,
  job: JobInfo,
  work: (run: JobRun<K>) => Promise<RunResult<K>>,
  options: { transient?(error: unknown): boolean } = {},
): Promise<void> {
  const row = await ctx.db.selectFrom('sync_runs').selectAll().where('id', '=', runId).executeTakeFirst()
  const log = ctx.log.child({ component: 'runs', runId, kind: row?.kind, companyId: row?.company_id })
  if (!row) {
    log.warn('the run of this job no longer exists; nothing to do')
    return
  }
  // Over already: a re-run after a crash, or a run cancelled or interrupted before its job got here.
  if (finished(row.status)) return
  const kind = ([] as readonly K[]).concat(kinds).find((k) => k.name === row.kind)
  if (!kind || !Value.Check(kind.params, row.params)) {
    const error = kind
      ? `The run's parameters do not fit a ${kind.name} run.`
      : `This job cannot perform a ${row.kind} run.`
    await finishRun(ctx.db, runId, { status: 'failed', error })
    log.error({ err: { message: error } }, 'run failed')
    return
  }
  await startRun(ctx.db, runId)

  let partial: Partial<RunResult<K>> | undefined
  let describe: ((message: string, final: boolean) => Partial<RunResult<K>>) | undefined
  const run: JobRun<K> = {
    id: row.id,
    companyId: row.company_id,
    kind: row.kind,
    params: row.params as RunParams<K>,
    requestedBy: row.requested_by,
    job,
    log,
    async progress(result) {
      partial = result
      await updateRunResult(ctx.db, runId, result)
    },
    onFailure(fn) {
      describe = fn
    },
    async checkCancelled() {
      const now = await ctx.db
        .selectFrom('sync_runs')
        .select(['status', 'cancel_requested_at'])
        .where('id', '=', runId)
        .executeTakeFirst()
      if (now?.cancel_requested_at || (now && finished(now.status))) throw new RunCancelled('cancelled on request')
    },
  }
  let result: RunResult<K>
  try {
    result = await work(run)
  } catch (error) {
    if (error instanceof RunCancelled) {
      await finishRun(ctx.db, runId, { status: 'cancelled', result: describe?.('cancelled', true) ?? partial })
      log.info('run cancelled')
      return
    }
    const message = kind.describe(error).slice(0, 2000)
    const final = job.lastAttempt || !(options.transient ?? kind.transient)(error)
    const stopped = describe?.(message, final) ?? partial
    if (!final) {
      await updateRunResult(ctx.db, runId, { ...stopped, lastError: message, attempt: job.attempt })
      log.warn({ err: { message }, attempt: job.attempt }, 'run interrupted; it will be retried')
      throw error
    }
    await transaction(ctx.db, async (tx) => {
      const ended = await finishRun(tx, runId, { status: 'failed', result: stopped, error: message })
      if (ended) await kind.failed?.(tx, row, message)
    })
    log.warn({ err: { message }, attempt: job.attempt }, 'run failed')
    return
  }
  await finishRun(ctx.db, runId, { status: 'succeeded', result })
  log.debug('run succeeded')
}

async function startRun(db: Db, runId: string): Promise<void> {
  await db
    .updateTable('sync_runs')
    .set({ status: 'running', started_at: sql<Date>`coalesce(started_at, now())` })
    .where('id', '=', runId)
    .where('status', 'in', ['queued', 'running'])
    .execute()
}

/** Progress or partial results while running. */
async function updateRunResult(db: Db, runId: string, result: object): Promise<void> {
  await db
    .updateTable('sync_runs')
    .set({ result: JSON.stringify(result) })
    .where('id', '=', runId)
    .execute()
}

async function finishRun(
  db: Db,
  runId: string,
  outcome: { status: 'succeeded' | 'failed' | 'cancelled'; result?: object | undefined; error?: string },
): Promise<boolean> {
  const ended = await db
    .updateTable('sync_runs')
    .set({
      status: outcome.status,
      result: outcome.result ? JSON.stringify(outcome.result) : null,
      error: outcome.error ?? null,
      finished_at: new Date(),
    })
    .where('id', '=', runId)
    // A run already declared interrupted (its worker was presumed dead) keeps that verdict.
    .where('status', 'in', ['queued', 'running'])
    .executeTakeFirst()
  return ended.numUpdatedRows > 0n
}

/**
 * `POST …/runs/{runId}/cancel`: a queued run ends `cancelled` at once (its job then does nothing);
 * a running one is asked to stop and ends `cancelled` at its next safe point. 409 when it is over.
 */
export async function cancelRun(db: Db, companyId: string, runId: string): Promise<RunRow> {
  const row = await db
    .updateTable('sync_runs')
    .set({
      status: sql`case when status = 'queued' then 'cancelled' else status end`,
      finished_at: sql`case when status = 'queued' then now() else finished_at end`,
      cancel_requested_at: sql`coalesce(cancel_requested_at, now())`,
    })
    .where('company_id', '=', companyId)
    .where('id', '=', runId)
    .where('status', 'in', ['queued', 'running'])
    .returningAll()
    .executeTakeFirst()
  if (row) return row
  const existing = await db
    .selectFrom('sync_runs')
    .select('status')
    .where('company_id', '=', companyId)
    .where('id', '=', runId)
    .executeTakeFirst()
  if (!existing) throw notFound('run', runId)
  throw conflict(
    'run_finished',
    `Run ${runId} is already ${existing.status}; only a queued or running run can be cancelled.`,
    {
      status: existing.status,
    },
  )
}
