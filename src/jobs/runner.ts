import { EventEmitter } from 'node:events'
import { Logger as WorkerLogger, run, type Runner, type WorkerEvents } from 'graphile-worker'
import { sql } from 'kysely'
import type pg from 'pg'
import type { AppContext } from '../context.js'
import { cronItems, PermanentJobError, taskList, type TaskDefinition } from './task.js'

export interface JobRunner {
  stop(): Promise<void>
}

/** The database went away under a connection: a restart, a terminated backend, Ctrl-C reaching an embedded one. */
const CONNECTION_LOST =
  /ECONNRESET|ECONNREFUSED|EPIPE|Connection terminated|terminating connection|57P0[123]|Client has encountered a connection error/

let tracesQuieted = false
/**
 * graphile-worker prints a worker that stopped on an error with console.trace besides logging it. For a lost
 * connection the runner recovers (it restarts, below) and the log says so at warn; the stack on stderr says
 * nothing more, so it is left out for that error only. Installed once per process.
 */
export function quietConnectionLossTraces(): void {
  if (tracesQuieted) return
  tracesQuieted = true
  const trace = console.trace.bind(console)
  console.trace = (...args: unknown[]) => {
    const [first] = args
    const text = first instanceof Error ? `${first.message} ${(first as { code?: string }).code ?? ''}` : String(first)
    if (!CONNECTION_LOST.test(text)) trace(...args)
  }
}

/**
 * Runs background jobs with graphile-worker, plus the one thing it lacks for us: a job held by
 * a process that was killed with SIGKILL would stay locked for 4 hours. Every process beats for
 * its workers; a worker silent for three beats is presumed dead and its jobs are unlocked, so
 * another process re-runs them within about a minute (with the default beat).
 */
export async function startJobRunner(
  ctx: AppContext,
  pgPool: pg.Pool,
  tasks: readonly TaskDefinition[],
): Promise<JobRunner> {
  const log = ctx.log.child({ component: 'jobs' })
  quietConnectionLossTraces()
  const { concurrency, heartbeatMs, pollIntervalMs } = ctx.config.worker
  const workerIds = new Set<string>()
  const events: WorkerEvents = new EventEmitter() as WorkerEvents
  events.on('worker:create', ({ worker }) => workerIds.add(worker.workerId))
  events.on('worker:release', ({ worker }) => workerIds.delete(worker.workerId))
  // graphile-worker 0.17 locks jobs in the name of the pool (locked_by = the pool's id), not of one worker:
  // the pool beats too, or a job running longer than three beats would be taken for a dead worker's.
  events.on('pool:create', ({ workerPool }) => workerIds.add(workerPool.id))
  events.on('pool:release', ({ workerPool }) => workerIds.delete(workerPool.id))
  events.on('job:error', ({ job, error }) => {
    // A refused payload was logged when refused, and is not retried.
    if (error instanceof PermanentJobError) return
    const err = { message: (error as Error)?.message }
    log.warn({ task: job.task_identifier, jobId: job.id, attempt: job.attempts, err }, 'job failed; it will be retried')
  })
  events.on('job:failed', ({ job, error }) =>
    log.error(
      { task: job.task_identifier, jobId: job.id, err: { message: (error as Error)?.message } },
      'job failed for the last time',
    ),
  )

  // graphile's LogLevel is an ambient const enum; its values are these strings.
  const logger = new WorkerLogger((scope) => (level, message) => {
    const name: string = level
    // The database stopping under us (Ctrl-C reaches an embedded PostgreSQL too) is reported once by the pool; an
    // UNLISTEN on a connection that is already gone changes nothing.
    if (name === 'error' && /terminating connection due to administrator command|attempting to UNLISTEN/.test(message))
      log.debug({ scope }, message)
    else if (name === 'error' && /^Worker exited with error/.test(message) && CONNECTION_LOST.test(message))
      // In words, not as the error's text: at Ctrl-C this is expected, and no error line should say otherwise.
      log.warn(
        { scope, reason: message.replace(/^Worker exited with error: (Error: )?/, '') },
        'a job worker ended: the database connection was lost',
      )
    // Each failed attempt is already logged once by the task wrapper (warn while it will be retried, error on the
    // last attempt); graphile's own line repeats it with a stack.
    else if (name === 'error' && /^Failed task \d+ /.test(message)) log.debug({ scope }, message)
    else if (name === 'error') log.error({ scope }, message)
    else if (name === 'warning') log.warn({ scope }, message)
    else log.debug({ scope }, message)
  })
  const options = {
    pgPool,
    taskList: taskList(ctx, tasks),
    parsedCronItems: cronItems(tasks),
    concurrency,
    noHandleSignals: true,
    pollInterval: pollIntervalMs,
    events,
    logger,
    // Unbatched, graphile-worker 0.17 leaves a failed completion as an unhandled rejection (the
    // process exits); batched (even with no delay) it retries, then stops the pool, which we restart.
    preset: { worker: { completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
  }
  // graphile-worker stops for good when it cannot record a job's outcome (PostgreSQL restarted, a
  // backend was terminated): jobs silently stop, or its promise rejects and the process ends. Instead the
  // runner is started again, with backoff while the database stays away; the job it held is
  // unlocked by the heartbeat below and runs again.
  let runner: Runner = await run(options)
  let stopping = false
  let restarts = 0
  let restarting: Promise<void> | undefined
  let wake: (() => void) | undefined
  const supervise = (current: Runner) => {
    // It resolves when it stopped itself after a pool error (0.17), and rejects on others: either way, unless we
    // are stopping it, it must run again.
    const settled = (error?: unknown) => {
      if (stopping) return
      log.error({ err: { message: (error as Error)?.message } }, 'job runner stopped by itself; restarting it')
      restarting = restart()
    }
    current.promise.then(() => settled(), settled)
  }
  const restart = async () => {
    for (let attempt = 0; !stopping; attempt++) {
      await new Promise<void>((resolve) => {
        wake = resolve
        setTimeout(resolve, Math.min(250 * 2 ** attempt, 15_000)).unref()
      })
      if (stopping) return
      try {
        runner = await run(options)
        restarts++
        log.warn({ restarts }, 'job runner restarted')
        supervise(runner)
        return
      } catch (error) {
        log.warn({ err: { message: (error as Error)?.message }, attempt }, 'job runner could not start; will retry')
      }
    }
  }
  supervise(runner)

  const beat = async () => {
    const ids = [...workerIds]
    if (ids.length > 0) {
      await ctx.db
        .insertInto('worker_heartbeats')
        .values(ids.map((worker_id) => ({ worker_id, beat_at: new Date() })))
        .onConflict((oc) => oc.column('worker_id').doUpdateSet({ beat_at: new Date() }))
        .execute()
    }
    await releaseJobsOfDeadWorkers(ctx, heartbeatMs * 3)
  }
  let beating = Promise.resolve()
  const timer = setInterval(() => {
    beating = beating
      .then(beat)
      .catch((error: unknown) => log.warn({ err: { message: (error as Error).message } }, 'worker heartbeat failed'))
  }, heartbeatMs)
  timer.unref()
  await beat()

  return {
    async stop() {
      stopping = true
      clearInterval(timer)
      wake?.()
      await restarting
      await beating
      await runner.stop().catch((error: unknown) => {
        // It had already stopped on an error (logged above).
        log.debug({ err: { message: (error as Error)?.message } }, 'job runner was already stopped')
      }) // waits for running jobs to finish
      if (workerIds.size > 0) {
        await ctx.db
          .deleteFrom('worker_heartbeats')
          .where('worker_id', 'in', [...workerIds])
          .execute()
      }
    },
  }
}

/** Unlocks jobs locked by workers that have not beaten within `staleMs` (and were locked at least that long ago). */
export async function releaseJobsOfDeadWorkers(ctx: AppContext, staleMs: number): Promise<string[]> {
  const { rows } = await sql<{ locked_by: string }>`
    select distinct j.locked_by from graphile_worker._private_jobs j
    where j.locked_by is not null
      and j.locked_at < now() - make_interval(secs => ${staleMs / 1000})
      and not exists (select 1 from worker_heartbeats h
        where h.worker_id = j.locked_by and h.beat_at > now() - make_interval(secs => ${staleMs / 1000}))
  `.execute(ctx.db)
  const dead = rows.map((r) => r.locked_by)
  if (dead.length > 0) {
    // A scheduled sync run held by a dead worker ends `interrupted` rather than being resumed: its next due time
    // (or an on-demand run) lists again from the watermark, and the released job finds the run over.
    const interrupted = await sql<{ id: string }>`
      update sync_runs set status = 'interrupted', finished_at = now(),
        error = 'The instance performing this run stopped before it finished; the next due time runs as scheduled.'
      where status = 'running' and sync_type is not null
        and id::text in (select j.payload->>'runId' from graphile_worker._private_jobs j
          where j.locked_by = any(${dead}::text[]))
      returning id`.execute(ctx.db)
    if (interrupted.rows.length > 0) {
      ctx.log.warn(
        { component: 'jobs', runs: interrupted.rows.map((r) => r.id) },
        'runs of stopped workers interrupted',
      )
    }
    // Fetching a job counts an attempt before it runs; a process killed meanwhile did not fail it. Without
    // giving that attempt back, a few kills leave a job at max attempts with no error, never to run again.
    await sql`update graphile_worker._private_jobs
      set attempts = greatest(attempts - 1, 0),
        last_error = coalesce(last_error, 'the process running it stopped; the attempt was not counted')
      where locked_by = any(${dead}::text[])`.execute(ctx.db)
    await sql`select graphile_worker.force_unlock_workers(${dead}::text[])`.execute(ctx.db)
    await ctx.db.deleteFrom('worker_heartbeats').where('worker_id', 'in', dead).execute()
    ctx.log.warn({ component: 'jobs', workers: dead }, 'released the jobs of workers that stopped beating')
  }
  await ctx.db
    .deleteFrom('worker_heartbeats')
    .where('beat_at', '<', new Date(Date.now() - 24 * 3600_000))
    .execute()
  return dead
}
