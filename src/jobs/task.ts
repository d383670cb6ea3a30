import { parseCronItems, type Job, type ParsedCronItem, type TaskList } from 'graphile-worker'
import { sql } from 'kysely'
import type { Static, TSchema } from 'typebox'
import { Compile } from 'typebox/compile'
import { Value } from 'typebox/value'
import type { AppContext } from '../context.js'

/** What a running job knows of itself. */
export interface JobInfo {
  id: string
  /** This attempt, counting from 1. */
  attempt: number
  maxAttempts: number
  /** A failure of this attempt is not retried. */
  lastAttempt: boolean
}

/**
 * `replace` (default): a newer add replaces the pending job's payload and run time;
 * `preserve_run_at`: the same, but keeps the pending job's run time (events gather until then);
 * `unsafe_dedupe`: a newer add is dropped while a job with the key exists, even a running one.
 */
export type JobKeyMode = 'replace' | 'preserve_run_at' | 'unsafe_dedupe'

/** A task's name, payload and queueing rules: what enqueuing it needs. */
export interface TaskSpec<S extends TSchema = TSchema> {
  name: string
  /** Checked when the job is enqueued and again when it runs. */
  payload: S
  /** Default 10. */
  maxAttempts?: number
  /** Jobs in one named queue run one at a time, in order. */
  queueName?(payload: Static<S>): string
  /** De-duplicates: one pending job per key (see jobKeyMode). */
  jobKey?(payload: Static<S>): string
  jobKeyMode?: JobKeyMode
}

export interface TaskDefinition<S extends TSchema = TSchema> extends TaskSpec<S> {
  /** Recurring: a cron pattern (it fires once per tick across all instances) and the attempts per tick. */
  schedule?: { cron: string; maxAttempts?: number }
  /** Throws to have the job retried with backoff, until maxAttempts. */
  run(ctx: AppContext, payload: Static<S>, job: JobInfo): Promise<void>
}

/** Declares a task's name, payload and queueing rules, for a module that enqueues it but does not run it. */
export function declareTask<S extends TSchema>(spec: TaskSpec<S>): TaskSpec<S> {
  return spec
}

/** Declares a background task once: name, payload schema, queueing rules, schedule and what it does. */
export function defineTask<S extends TSchema>(definition: TaskDefinition<S>): TaskDefinition<S> {
  return definition
}

const checks = new WeakMap<TSchema, ReturnType<typeof Compile>>()

/** Why a payload does not fit its task's schema, in a line; undefined when it fits. */
export function payloadProblem(task: TaskSpec, payload: unknown): string | undefined {
  // Compiled once per schema: enqueuing is on hot paths (every webhook delivery).
  let check = checks.get(task.payload)
  if (!check) {
    check = Compile(task.payload)
    checks.set(task.payload, check)
  }
  if (check.Check(payload)) return undefined
  const errors = Value.Errors(task.payload, payload)
    .slice(0, 5)
    .map((e) => `${e.instancePath || '/'} ${e.message}`)
  return `the payload of ${task.name} does not fit its schema: ${errors.join('; ')}`
}

/** Thrown by a job whose payload can never run: it is not retried. */
export class PermanentJobError extends Error {
  override readonly name = 'PermanentJobError'
}

/** graphile-worker's task list for these definitions; each payload is checked before its task runs. */
export function taskList(ctx: AppContext, tasks: readonly TaskDefinition[]): TaskList {
  const log = ctx.log.child({ component: 'jobs' })
  const list: TaskList = {}
  for (const task of tasks) {
    if (list[task.name]) throw new Error(`two tasks are named ${task.name}`)
    list[task.name] = async (payload, helpers) => {
      const job = jobInfo(helpers.job)
      const problem = payloadProblem(task, payload)
      if (problem !== undefined) {
        // Retrying cannot fix a payload: use up the attempts so the job stays, failed, with the reason.
        log.error({ task: task.name, jobId: job.id, problem }, 'job refused: its payload does not fit the task')
        await sql`update graphile_worker._private_jobs set attempts = max_attempts
          where id = ${job.id}::bigint`.execute(ctx.db)
        throw new PermanentJobError(problem)
      }
      await task.run(ctx, payload, job)
    }
  }
  return list
}

/** The recurring jobs of these definitions, for the runner. */
export function cronItems(tasks: readonly TaskDefinition[]): ParsedCronItem[] {
  return parseCronItems(
    tasks.flatMap(({ name, schedule }) => {
      if (!schedule) return []
      const attempts = schedule.maxAttempts === undefined ? {} : { maxAttempts: schedule.maxAttempts }
      // A tick missed while no worker ran is not made up for: the next one does the same work.
      return [{ task: name, identifier: name, match: schedule.cron, options: { backfillPeriod: 0, ...attempts } }]
    }),
  )
}

function jobInfo(job: Job): JobInfo {
  return {
    id: job.id,
    attempt: job.attempts,
    maxAttempts: job.max_attempts,
    lastAttempt: job.attempts >= job.max_attempts,
  }
}
