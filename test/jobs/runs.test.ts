// Runs: one skeleton (runJob) for every job that performs a run. A run that already ended is left
// alone; progress is kept; a transient failure leaves the run running with lastError and the job
// retrying; a final one fails the run with a message a person can read; success stores the result.
import t, { type Test } from 'tap'
import { Type } from 'typebox'
import { AppError } from '../../src/errors.js'
import { UpstreamError } from '../../src/http/errors.js'
import { createRun, defineRunKinds, runJob } from '../../src/jobs/runs.js'
import type { JobInfo } from '../../src/jobs/task.js'
import { RunKinds } from '../../src/sync/runs.js'
import { build, createCompany } from '../helpers/app.js'

const COMPANY = '4100'

class Busy extends Error {
  readonly status = 503
}

const Kinds = defineRunKinds(
  {
    count: {
      params: Type.Object({ upTo: Type.Integer({ minimum: 1 }) }),
      result: Type.Object({ counted: Type.Integer(), seen: Type.Array(Type.Integer()) }),
    },
  },
  { transient: (error) => error instanceof Busy },
)

const attempt = (n: number, max = 3): JobInfo => ({
  id: String(n),
  attempt: n,
  maxAttempts: max,
  lastAttempt: n >= max,
})

async function setup(t: Test) {
  const { app, adminKey } = await build(t, { WORKER_ENABLED: 'false' })
  await createCompany(app, adminKey, COMPANY)
  const newRun = async (upTo = 3) =>
    app.db.transaction().execute((tx) => createRun(tx, Kinds.count, COMPANY, { upTo }, 'test'))
  const row = async (id: string) =>
    app.db.selectFrom('sync_runs').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
  return { app, ctx: app.ctx, newRun, row }
}

t.test('success stores the typed result; progress is visible while running', async (t) => {
  const { ctx, newRun, row } = await setup(t)
  const run = await newRun(3)
  t.equal(run.status, 'queued')
  let midway: unknown
  await runJob(ctx, Kinds.count, run.id, attempt(1), async (r) => {
    t.same(r.params, { upTo: 3 }, 'the params, typed by the kind')
    t.equal(r.requestedBy, 'test')
    await r.progress({ seen: [1] })
    midway = await row(run.id)
    return { counted: r.params.upTo, seen: [1, 2, 3] }
  })
  t.match(midway, { status: 'running', result: { seen: [1] }, started_at: Date })
  const done = await row(run.id)
  t.match(done, { status: 'succeeded', result: { counted: 3, seen: [1, 2, 3] }, error: null, finished_at: Date })
})

t.test('a run that already ended is left alone (a re-run after a crash)', async (t) => {
  const { ctx, newRun, row } = await setup(t)
  for (const status of ['succeeded', 'failed'] as const) {
    const run = await newRun()
    await ctx.db
      .updateTable('sync_runs')
      .set({ status, result: JSON.stringify({ counted: 1, seen: [1] }), finished_at: new Date() })
      .where('id', '=', run.id)
      .execute()
    const before = await row(run.id)
    let called = false
    await runJob(ctx, Kinds.count, run.id, attempt(1), async () => {
      called = true
      return { counted: 9, seen: [] }
    })
    t.notOk(called, `the work of a ${status} run is not done again`)
    t.same(await row(run.id), before, 'the run is unchanged')
  }
})

t.test('a transient failure keeps the run running with lastError and attempt; the job retries', async (t) => {
  const { ctx, newRun, row } = await setup(t)
  const run = await newRun()
  await t.rejects(
    runJob(ctx, Kinds.count, run.id, attempt(1), async (r) => {
      await r.progress({ seen: [1] })
      throw new Busy('the other side is busy')
    }),
    /busy/,
    'the error reaches graphile-worker, which retries the job with backoff',
  )
  t.match(await row(run.id), {
    status: 'running',
    error: null,
    finished_at: null,
    result: { seen: [1], lastError: 'the other side is busy', attempt: 1 },
  })

  // The retry finds the run running and finishes it.
  await runJob(ctx, Kinds.count, run.id, attempt(2), async () => ({ counted: 3, seen: [1, 2, 3] }))
  t.match(await row(run.id), { status: 'succeeded', result: { counted: 3, seen: [1, 2, 3] } })
  t.notOk('lastError' in ((await row(run.id)).result ?? {}), 'the finished result no longer says it waits')
})

t.test('a final failure marks the run failed with a readable message, no stack', async (t) => {
  const { ctx, newRun, row } = await setup(t)
  const refused = await newRun()
  await runJob(ctx, Kinds.count, refused.id, attempt(1), async (r) => {
    await r.progress({ seen: [1] })
    throw new Error('the other side refused the request')
  })
  const failed = await row(refused.id)
  t.match(failed, {
    status: 'failed',
    error: 'the other side refused the request',
    result: { seen: [1] },
    finished_at: Date,
  })
  t.notMatch(failed.error, /\n\s+at /, 'no stack trace')

  // A transient failure on the last attempt is final too; onFailure says what the result reports.
  const exhausted = await newRun()
  const calls: Array<[string, boolean]> = []
  await runJob(ctx, Kinds.count, exhausted.id, attempt(3, 3), async (r) => {
    r.onFailure((message, final) => {
      calls.push([message, final])
      return { counted: 0, seen: [] }
    })
    throw new Busy('still busy')
  })
  t.same(calls, [['still busy', true]])
  t.match(await row(exhausted.id), { status: 'failed', error: 'still busy', result: { counted: 0, seen: [] } })
})

t.test('params are checked against the kind: when created and when run', async (t) => {
  const { ctx, app, row } = await setup(t)
  await t.rejects(
    app.db.transaction().execute((tx) => createRun(tx, Kinds.count, COMPANY, { upTo: 0 }, 'test')),
    /the params of a count run do not fit its schema: \/upTo/,
  )
  const { id } = await app.db
    .insertInto('sync_runs')
    .values({
      company_id: COMPANY,
      kind: 'count',
      status: 'queued',
      params: JSON.stringify({ upTo: 'many' }),
      result: null,
      error: null,
      requested_by: 'test',
      started_at: null,
      finished_at: null,
    })
    .returning('id')
    .executeTakeFirstOrThrow()
  let called = false
  await runJob(ctx, Kinds.count, id, attempt(1), async () => {
    called = true
    return { counted: 0, seen: [] }
  })
  t.notOk(called)
  t.match(await row(id), { status: 'failed', error: "The run's parameters do not fit a count run." })
})

t.test("the domain's run kinds: each declared once; failures judged by isRetryable, told for a person", async (t) => {
  t.same(Object.keys(RunKinds).sort(), [
    'bulk_link',
    'create_in_erp',
    'create_in_procore',
    'erp_refresh',
    'procore_reconcile',
  ])
  for (const [name, kind] of Object.entries(RunKinds)) t.equal(kind.name, name)
  const kind = RunKinds.erp_refresh
  const unreachable = new UpstreamError({
    side: 'erp',
    reason: 'connection',
    method: 'GET',
    url: 'http://127.0.0.1:9/v1/vendors',
    attempts: 3,
    cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }),
  })
  t.ok(kind.transient(unreachable))
  t.ok(kind.transient(new AppError(503, 'busy', 'Service unavailable', 'Retry later.')))
  t.notOk(
    kind.transient(
      new UpstreamError({
        side: 'erp',
        reason: 'unauthorized',
        method: 'GET',
        url: 'http://erp/v1/jobs',
        attempts: 1,
        status: 401,
      }),
    ),
  )
  t.notOk(kind.transient(new AppError(409, 'not_connected', 'Conflict', 'Connect first.')))
  t.notOk(kind.transient(new Error('a bug')), 'an unknown failure is final unless the kind says otherwise')
  t.match(
    kind.describe(unreachable),
    /^The ERP agent could not be reached for GET \/v1\/vendors\./,
    'an upstream failure in words, no URL host',
  )
})
