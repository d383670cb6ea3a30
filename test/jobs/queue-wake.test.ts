// A named queue that becomes free wakes a worker: a job added while another job of its queue runs starts when
// that one completes, not when an idle worker next polls.
import { sql } from 'kysely'
import pg from 'pg'
import t from 'tap'
import { Type } from 'typebox'
import { enqueue } from '../../src/jobs/queue.js'
import { startJobRunner } from '../../src/jobs/runner.js'
import { defineTask } from '../../src/jobs/task.js'
import { build } from '../helpers/app.js'

t.setTimeout(120_000)

t.test('freeing a queue notifies the workers; locking one does not', async (t) => {
  const { app, databaseUrl } = await build(t, { WORKER_ENABLED: 'false' })
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  t.teardown(() => client.end())
  const heard: string[] = []
  client.on('notification', (n) => heard.push(n.payload ?? ''))
  await client.query('LISTEN "jobs:insert"')
  await sql`insert into graphile_worker._private_job_queues (queue_name) values ('lane-a'), ('lane-b')`.execute(app.db)
  await sql`update graphile_worker._private_job_queues set locked_at = now(), locked_by = 'pool-1'`.execute(app.db)
  await sql`update graphile_worker._private_job_queues set locked_by = 'pool-2' where queue_name = 'lane-a'`.execute(
    app.db,
  )
  await sql`update graphile_worker._private_job_queues set locked_at = null, locked_by = null`.execute(app.db)
  // A round trip on the listening connection: every notification committed before it has been delivered.
  await client.query('select 1')
  t.equal(heard.length, 1, 'one notification, for the statement that freed queues')
  t.equal((JSON.parse(heard[0]!) as { count: number }).count, 2, 'counting the queues it freed')
})

t.test('a job added while another of its queue runs starts when that one completes', async (t) => {
  // Idle workers look for due jobs once a minute: only a wake-up starts the second job within the test's time.
  t.setTimeout(30_000)
  const { app, databaseUrl } = await build(t, { WORKER_ENABLED: 'false', WORKER_POLL_INTERVAL_MS: '60000' })
  const ran: number[] = []
  let release!: () => void
  const held = new Promise<void>((resolve) => (release = resolve))
  let started!: () => void
  const firstStarted = new Promise<void>((resolve) => (started = resolve))
  const laneTask = defineTask({
    name: 'test:lane',
    payload: Type.Object({ n: Type.Integer() }),
    queueName: () => 'lane',
    run: async (_ctx, { n }) => {
      ran.push(n)
      if (n === 1) {
        started()
        await held
      }
    },
  })
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 })
  pool.on('error', () => {})
  const runner = await startJobRunner(app.ctx, pool, [laneTask])
  t.teardown(async () => {
    await runner.stop()
    await pool.end()
  })
  await enqueue(app.db, laneTask, { n: 1 })
  await firstStarted
  await enqueue(app.db, laneTask, { n: 2 })

  // The race, made certain: the first job's completion (which frees the queue) waits on the queue's row while its
  // worker looks for the next job, finds the queue taken and goes idle.
  const locker = new pg.Client({ connectionString: databaseUrl })
  await locker.connect()
  t.teardown(() => locker.end())
  await locker.query('begin')
  await locker.query(`select 1 from graphile_worker._private_job_queues where queue_name = 'lane' for update`)
  release()
  const settledOthers = async () => {
    const { rows } = await sql<{ blocked: number; busy: number }>`select
        count(*) filter (where wait_event_type = 'Lock')::int as blocked,
        count(*) filter (where wait_event_type is distinct from 'Lock')::int as busy
      from pg_stat_activity
      where datname = current_database() and state = 'active' and pid <> pg_backend_pid()`.execute(app.db)
    return rows[0]!.blocked === 1 && rows[0]!.busy === 0
  }
  while (!(await settledOthers())) await new Promise((resolve) => setTimeout(resolve, 20))
  t.same(ran, [1], 'the second job waits for its queue')
  await locker.query('commit')

  while (ran.length < 2) await new Promise((resolve) => setTimeout(resolve, 20))
  t.same(ran, [1, 2], 'the second job ran once the first had freed the queue')
})
