// Tasks: declared once with a payload schema that is checked when a job is enqueued and when it
// runs; what a task declares (key, queue, attempts, schedule) is what the queue gets; a run whose
// job fails transiently is retried by graphile-worker and finishes.
import { sql } from 'kysely'
import pg from 'pg'
import t, { type Test } from 'tap'
import { Type } from 'typebox'
import { enqueue, enqueueMany, job } from '../../src/jobs/queue.js'
import { startJobRunner } from '../../src/jobs/runner.js'
import { createRun, defineRunKinds, RunPayload, runJob } from '../../src/jobs/runs.js'
import { cronItems, defineTask, type TaskDefinition } from '../../src/jobs/task.js'
import { tasks } from '../../src/tasks.js'
import { build, createCompany } from '../helpers/app.js'

const COMPANY = '4200'

const echoTask = defineTask({
  name: 'test:echo',
  payload: Type.Object({ companyId: Type.String(), n: Type.Integer() }),
  maxAttempts: 4,
  jobKey: ({ companyId }) => `echo:${companyId}`,
  queueName: ({ companyId }) => `echo-lane:${companyId}`,
  run: async () => {},
})

type Queued = {
  task_identifier: string
  payload: unknown
  key: string | null
  queue_name: string | null
  max_attempts: number
  attempts: number
  last_error: string | null
}

async function setup(t: Test) {
  const { app, adminKey, databaseUrl } = await build(t, { WORKER_ENABLED: 'false' })
  const jobs = async () =>
    (
      await sql<Queued>`
    select t.identifier as task_identifier, j.payload, j.key, q.queue_name, j.max_attempts, j.attempts, j.last_error
    from graphile_worker._private_jobs j join graphile_worker._private_tasks t on t.id = j.task_id
    left join graphile_worker._private_job_queues q on q.id = j.job_queue_id order by j.id`.execute(app.db)
    ).rows
  /** A runner of just these tasks, as the app starts one with all of them. */
  const runner = async (list: readonly TaskDefinition[]) => {
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 })
    pool.on('error', (error) => app.log.warn({ err: error }, 'test runner pool error'))
    const r = await startJobRunner(app.ctx, pool, list)
    t.teardown(async () => {
      await r.stop()
      await pool.end()
    })
  }
  return { app, adminKey, jobs, runner }
}

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined && value !== false) return value
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

t.test('a payload that breaks its schema is refused at enqueue; nothing is queued', async (t) => {
  const { app, jobs } = await setup(t)
  const bad = { companyId: COMPANY, n: 'three' } as unknown as { companyId: string; n: number }
  await t.rejects(enqueue(app.db, echoTask, bad), {
    message: 'Cannot enqueue: the payload of test:echo does not fit its schema: /n must be integer',
  })
  await t.rejects(
    enqueue(app.db, echoTask, { n: 1 } as unknown as { companyId: string; n: number }),
    /\/ must have required properties companyId/,
  )
  // One bad job in a batch: none of the batch is added.
  await t.rejects(
    enqueueMany(app.db, [job(echoTask, { companyId: COMPANY, n: 1 }), job(echoTask, bad)]),
    /does not fit its schema/,
  )
  t.same(await jobs(), [])
})

t.test('a job gets what its task declares; one key in a batch keeps the last payload', async (t) => {
  const { app, jobs } = await setup(t)
  await enqueue(app.db, echoTask, { companyId: COMPANY, n: 1 })
  t.match(await jobs(), [
    {
      task_identifier: 'test:echo',
      payload: { companyId: COMPANY, n: 1 },
      key: `echo:${COMPANY}`,
      queue_name: `echo-lane:${COMPANY}`,
      max_attempts: 4,
    },
  ])
  await enqueueMany(app.db, [
    job(echoTask, { companyId: COMPANY, n: 2 }),
    job(echoTask, { companyId: COMPANY, n: 3 }),
    job(echoTask, { companyId: '7', n: 4 }),
  ])
  t.match(
    await jobs(),
    [
      { payload: { n: 3 }, key: `echo:${COMPANY}` },
      { payload: { n: 4 }, key: 'echo:7' },
    ],
    'the pending job of a key is replaced',
  )
  await enqueue(app.db, echoTask, { companyId: '8', n: 5 }, { queueName: 'elsewhere', maxAttempts: 1 })
  t.match((await jobs())[2], { queue_name: 'elsewhere', max_attempts: 1 }, 'a call may override what the task declares')

  // In the caller's transaction: rolled back, nothing is queued.
  await t.rejects(
    app.db.transaction().execute(async (tx) => {
      await enqueue(tx, echoTask, { companyId: '9', n: 6 })
      throw new Error('rollback')
    }),
  )
  t.equal((await jobs()).length, 3)
})

t.test('a keyed job added while its namesake runs is queued anew, not dropped', async (t) => {
  const { app, jobs } = await setup(t)
  await enqueue(app.db, echoTask, { companyId: COMPANY, n: 1 })
  // A worker has taken it: it runs, and may have read what it acts on before the next caller's data existed.
  await sql`update graphile_worker._private_jobs set locked_at = now(), locked_by = 'a worker'`.execute(app.db)
  await enqueueMany(app.db, [job(echoTask, { companyId: COMPANY, n: 2 })])
  t.match(
    await jobs(),
    [
      { payload: { n: 1 }, key: null },
      { payload: { n: 2 }, key: `echo:${COMPANY}` },
    ],
    'the running job is detached from its key, and the new one queued under it',
  )
})

t.test('a job whose payload breaks its schema fails for good when it runs: no retries', async (t) => {
  const { app, jobs, runner } = await setup(t)
  let ran = 0
  const task = defineTask({
    name: 'test:strict',
    payload: Type.Object({ n: Type.Integer() }),
    run: async () => {
      ran++
    },
  })
  await sql`select graphile_worker.add_job('test:strict', '{"n": "x"}'::json, max_attempts => 10)`.execute(app.db)
  await runner([task])
  const [failed] = await until('the job failed', async () => {
    const rows = await jobs()
    return rows[0]?.last_error ? rows : undefined
  })
  t.match(failed, {
    attempts: 10,
    max_attempts: 10,
    last_error: /the payload of test:strict does not fit its schema: \/n must be integer/,
  })
  await new Promise((resolve) => setTimeout(resolve, 1000))
  t.match((await jobs())[0], { attempts: 10 }, 'not tried again')
  t.equal(ran, 0, 'the task never saw the payload')
})

t.test('a run whose job fails transiently is retried with backoff and then finishes', async (t) => {
  const { app, adminKey, runner } = await setup(t)
  await createCompany(app, adminKey, COMPANY)
  class Busy extends Error {}
  const Kinds = defineRunKinds(
    {
      flaky: { params: Type.Object({}), result: Type.Object({ attempts: Type.Integer() }) },
    },
    { transient: (error) => error instanceof Busy },
  )
  const flakyTask = defineTask({
    name: 'test:flaky',
    payload: RunPayload,
    maxAttempts: 3,
    run: (ctx, { runId }, job) =>
      runJob(ctx, Kinds.flaky, runId, job, async (run) => {
        if (run.job.attempt === 1) throw new Busy('busy on the first attempt')
        return { attempts: run.job.attempt }
      }),
  })
  const run = await app.db.transaction().execute(async (tx) => {
    const row = await createRun(tx, Kinds.flaky, COMPANY, {}, 'test')
    await enqueue(tx, flakyTask, { companyId: COMPANY, runId: row.id })
    return row
  })
  await runner([flakyTask])
  const row = () => app.db.selectFrom('sync_runs').selectAll().where('id', '=', run.id).executeTakeFirstOrThrow()
  const waiting = await until('the first attempt failed', async () => {
    const r = await row()
    return r.result ? r : undefined
  })
  t.match(waiting, { status: 'running', result: { lastError: 'busy on the first attempt', attempt: 1 } })
  const done = await until('the retry finished the run', async () => {
    const r = await row()
    return r.status === 'succeeded' ? r : undefined
  })
  t.same(done.result, { attempts: 2 })
})

t.test('the hourly purge removes expired idempotency keys and keeps live ones', async (t) => {
  const { app } = await setup(t)
  const purge = tasks.find((task) => task.name === 'purge-idempotency-keys')
  if (!purge) throw new Error('the purge task is not in the task list')
  t.match(purge.schedule, { cron: '23 * * * *' })
  const scheduled = cronItems(tasks)
    .map((item) => item.identifier)
    .sort()
  t.same(
    scheduled,
    ['exports:digest', 'purge-idempotency-keys', 'sync-schedule-tick'],
    'the recurring tasks, by their own declaration',
  )
  t.equal(new Set(tasks.map((task) => task.name)).size, tasks.length, 'task names are unique')

  const apiKey = await app.db.selectFrom('api_keys').select('id').executeTakeFirstOrThrow()
  const keyRow = (key: string, ageHours: number) => ({
    api_key_id: apiKey.id,
    key,
    method: 'POST',
    route: '/v1/companies',
    fingerprint: 'f',
    locked_until: null,
    response_status: 201,
    response_headers: JSON.stringify({}),
    response_body: '{}',
    completed_at: new Date(),
    created_at: sql<Date>`now() - make_interval(hours => ${ageHours})`,
  })
  await app.db
    .insertInto('idempotency_keys')
    .values([keyRow('old', 25), keyRow('older', 24 * 30), keyRow('fresh', 1)])
    .execute()
  await purge.run(app.ctx, {}, { id: '1', attempt: 1, maxAttempts: 1, lastAttempt: true })
  const left = await app.db.selectFrom('idempotency_keys').select('key').orderBy('key').execute()
  t.same(
    left.map((r) => r.key),
    ['fresh'],
    'keys past the 24 h retention are gone',
  )
})
