import { Logger, runMigrations } from 'graphile-worker'
import { sql, type RawBuilder } from 'kysely'
import pg from 'pg'
import type { Static, TSchema } from 'typebox'
import type { Db, Tx } from '../db/database.js'
import { payloadProblem, type JobKeyMode, type TaskSpec } from './task.js'

/** Per-call overrides of what the task declares. */
export interface EnqueueOptions {
  runAt?: Date
  jobKey?: string
  jobKeyMode?: JobKeyMode
  queueName?: string
  maxAttempts?: number
}

/** One job to add: build it with `job()`, so its payload is typed by its task. */
export interface JobRequest {
  readonly task: TaskSpec
  readonly payload: unknown
  readonly options: EnqueueOptions
}

export function job<S extends TSchema>(
  task: TaskSpec<S>,
  payload: Static<S>,
  options: EnqueueOptions = {},
): JobRequest {
  return { task, payload, options }
}

/**
 * Adds a background job through SQL, so it commits or rolls back with the caller's
 * transaction: nothing acknowledged is lost and nothing rolled back is run.
 */
export async function enqueue<S extends TSchema>(
  db: Db,
  task: TaskSpec<S>,
  payload: Static<S>,
  options: EnqueueOptions = {},
): Promise<void> {
  await enqueueMany(db, [job(task, payload, options)])
}

/** Adds many jobs in few statements (graphile_worker.add_jobs), in the caller's transaction. */
export async function enqueueMany(db: Db, jobs: readonly JobRequest[]): Promise<void> {
  const specs = jobs.map(toSpec)
  // add_jobs takes one job-key mode per call; unsafe_dedupe only add_job knows.
  for (const s of specs.filter((x) => x.jobKeyMode === 'unsafe_dedupe')) {
    await sql`select graphile_worker.add_job(${s.task}, ${s.payload}::json, queue_name => ${s.queueName}::text,
      run_at => ${s.runAt}::timestamptz, max_attempts => ${s.maxAttempts}::int, job_key => ${s.jobKey}::text,
      job_key_mode => 'unsafe_dedupe')`.execute(db)
  }
  for (const preserveRunAt of [false, true]) {
    const batch = lastPerKey(
      specs.filter((x) => x.jobKeyMode !== 'unsafe_dedupe' && (x.jobKeyMode === 'preserve_run_at') === preserveRunAt),
    )
    for (let i = 0; i < batch.length; i += 1000) {
      const rows = batch.slice(i, i + 1000).map(
        (s) => sql`(${s.task}, ${s.payload}::json, ${s.queueName}::text, ${s.runAt}::timestamptz,
        ${s.maxAttempts}::int, ${s.jobKey}::text, null::int, null::text[])::graphile_worker.job_spec`,
      )
      const added = await sql<{ key: string | null }>`select key
        from graphile_worker.add_jobs(array[${sql.join(rows)}], ${preserveRunAt}::boolean)`.execute(db)
      // add_jobs leaves a keyed job that is running (locked) as it is and adds nothing: that job may have read what
      // it acts on before the caller's data existed. add_job detaches the running job from its key and queues anew.
      const keys = new Set(added.rows.map((r) => r.key))
      for (const s of batch.slice(i, i + 1000))
        if (s.jobKey !== null && !keys.has(s.jobKey)) await sql`select ${addKeyedJobExpression(s)}`.execute(db)
    }
  }
}

/**
 * An SQL expression that adds one keyed job (`replace` or `preserve_run_at`) and yields its id, for
 * embedding in the statement that stores what the job acts on: both commit together, in one round
 * trip. graphile-worker's add_job adds nothing when the keyed job gets locked between its two
 * statements (a job that started before this one's data existed and will not see it); the expression
 * then adds again, which finds the job locked and detaches it from the key, so a new job is queued.
 */
export function addJobExpression(request: JobRequest): RawBuilder<string | null> {
  return addKeyedJobExpression(toSpec(request))
}

/**
 * A keyed job request (`replace` or `preserve_run_at`) as SQL takes it: its task's defaults applied, its payload
 * checked and serialised. The values of addKeyedJobExpression, for a prepared statement that takes them as parameters.
 */
export function keyedJobSpec(request: JobRequest): JobSpec {
  const s = toSpec(request)
  if (s.jobKey === null || s.jobKeyMode === 'unsafe_dedupe') throw new Error('keyedJobSpec: a keyed job only')
  return s
}

/** addJobExpression of a job whose values (keyedJobSpec) may be a prepared statement's parameters. */
export function addKeyedJobExpression(s: JobSpec): RawBuilder<string | null> {
  if (s.jobKey === null || s.jobKeyMode === 'unsafe_dedupe') throw new Error('addKeyedJobExpression: a keyed job only')
  const add = sql`(graphile_worker.add_job(${s.task}, ${s.payload}::json, queue_name => ${s.queueName}::text,
    run_at => ${s.runAt}::timestamptz, max_attempts => ${s.maxAttempts}::int, job_key => ${s.jobKey}::text,
    job_key_mode => ${s.jobKeyMode}::text)).id`
  // COALESCE evaluates its second argument only when the first is null.
  return sql<string | null>`coalesce(${add}, ${add})::text`
}

/** Adds one keyed job, again when graphile-worker dropped the add in a race (see addJobExpression). */
export async function addKeyedJob(db: Db, request: JobRequest): Promise<void> {
  await sql`select ${addJobExpression(request)}`.execute(db)
}

/**
 * Makes sure a keyed job will act on what the caller's transaction wrote, like `addKeyedJob`, but joins a job that
 * is due and not started instead of adding again. Adding updates the keyed job's row and holds it until the commit,
 * so every writer of one key would commit after the one before; joining touches nothing. A job that starts before
 * the joining transaction commits must not miss its rows: the job calls `awaitJoiners` before it reads, which
 * waits for every transaction holding the key's join lock. That lock is shared (writers do not wait on each other)
 * and taken before the look, so a job either starts after the look (and waits for this commit) or was seen as
 * started (and a new one is added). Held until the commit: call it last in the transaction (lastInTransaction).
 */
export async function joinKeyedJob(tx: Tx, request: JobRequest): Promise<void> {
  const s = toSpec(request)
  if (s.jobKey === null || s.jobKeyMode === 'unsafe_dedupe') throw new Error('joinKeyedJob: a keyed job only')
  await sql`select pg_advisory_xact_lock_shared(${joinLock(s.jobKey)})`.execute(tx)
  // A statement of its own: the look must see what committed before the lock was granted (a job's start). A job
  // that failed and waits to be retried is replaced (its attempts start again), as adding always did.
  await sql`select case when exists (select 1 from graphile_worker._private_jobs where key = ${s.jobKey}
      and locked_at is null and attempts = 0 and run_at <= now())
    then null else ${addKeyedJobExpression(s)} end`.execute(tx)
}

/**
 * Waits until every transaction that joined the job of `jobKey` (joinKeyedJob) has committed; a job that is joined
 * calls it once started, before it reads. The lock is released as soon as it is granted.
 */
export async function awaitJoiners(db: Db, jobKey: string): Promise<void> {
  if (db.isTransaction) throw new Error('awaitJoiners: outside a transaction, or the lock would be held')
  await sql`select pg_advisory_xact_lock(${joinLock(jobKey)})`.execute(db)
}

const joinLock = (jobKey: string) => sql`hashtextextended(${`join:${jobKey}`}, 0)`

export type JobSpec = {
  task: string
  payload: string
  queueName: string | null
  runAt: Date | null
  maxAttempts: number
  jobKey: string | null
  jobKeyMode: JobKeyMode
}

function toSpec({ task, payload, options }: JobRequest): JobSpec {
  const problem = payloadProblem(task, payload)
  if (problem !== undefined) throw new Error(`Cannot enqueue: ${problem}`)
  return {
    task: task.name,
    payload: JSON.stringify(payload),
    queueName: options.queueName ?? task.queueName?.(payload) ?? null,
    runAt: options.runAt ?? null,
    maxAttempts: options.maxAttempts ?? task.maxAttempts ?? 10,
    jobKey: options.jobKey ?? task.jobKey?.(payload) ?? null,
    jobKeyMode: options.jobKeyMode ?? task.jobKeyMode ?? 'replace',
  }
}

/** One statement may not add two jobs with one key: the later one wins, as two adds in a row would. */
function lastPerKey(specs: JobSpec[]): JobSpec[] {
  const last = new Map(specs.map((s, i) => [s.jobKey, i]))
  return specs.filter((s, i) => s.jobKey === null || last.get(s.jobKey) === i)
}

/** graphile-worker's own schema (versioned by the library), and our wake-up on it. Run with the app's migrations. */
export async function installQueueSchema(connectionString: string): Promise<void> {
  // Our own pool, ended and awaited here: the library's own is ended without waiting, so a database stopped right
  // after (a command-line run) could reach a still-open connection that has no error handler.
  const pgPool = new pg.Pool({ connectionString, max: 1 })
  pgPool.on('error', () => {})
  pgPool.on('connect', (client) => client.on('error', () => {}))
  try {
    await runMigrations({ pgPool, logger: silentLogger })
    await pgPool.query(WAKE_ON_FREED_QUEUE)
  } finally {
    await pgPool.end()
  }
}

/**
 * A job of a named queue (one per company's inbox, evaluation, propagation) added while another of that queue runs
 * waited for the poll interval: graphile-worker records the running job's completion, which frees the queue, after
 * its worker has already looked for the next job and found the queue still locked, and nothing else wakes a worker.
 * This trigger does, as graphile-worker's own wakes one for a new job: a NOTIFY on `jobs:insert` when a statement
 * frees queues, delivered at commit. The function is replaced at every start; the trigger is created once.
 */
const WAKE_ON_FREED_QUEUE = `
begin;
-- Instances starting together replace the function one after another, not at once.
select pg_advisory_xact_lock(hashtext('wake_workers_on_freed_queues'));
create or replace function public.wake_workers_on_freed_queues() returns trigger language plpgsql as $fn$
declare
  freed int;
begin
  select count(*) into freed from old_queues o join new_queues n on n.id = o.id
  where o.locked_at is not null and n.locked_at is null;
  if freed > 0 then
    perform pg_notify('jobs:insert', '{"r":' || random()::text || ',"count":' || freed::text || '}');
  end if;
  return null;
end
$fn$;
do $do$
begin
  if not exists (select 1 from pg_trigger where tgname = 'wake_workers_on_freed_queues'
      and tgrelid = 'graphile_worker._private_job_queues'::regclass) then
    create trigger wake_workers_on_freed_queues after update on graphile_worker._private_job_queues
      referencing old table as old_queues new table as new_queues
      for each statement execute function public.wake_workers_on_freed_queues();
  end if;
end
$do$;
commit;
`

const silentLogger = new Logger(() => () => {})
