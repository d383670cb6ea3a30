// An instance SIGKILLed in the middle of a scheduled run: the run ends `interrupted` (its job was locked by
// a worker pool that stopped beating) and the schedule goes on: the next due time starts a run that succeeds.
import { spawn } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { releaseJobsOfDeadWorkers } from '../../src/jobs/runner.js'
import { runDueSchedules } from '../../src/schedules/schedule.js'
import { testEnv } from '../helpers/app.js'
import { connected, eventually } from '../erp/fixtures/harness.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const HEARTBEAT_MS = 300

t.test('an instance killed mid-run: the run ends interrupted and the next due time runs', async (t) => {
  const c = await connected(t, { env: { WORKER_ENABLED: 'false' } })
  for (let i = 1; i <= 5; i++) c.erp.seed('vendors', { code: `V${i}`, name: `Vendor ${i}` })
  const env = { ...testEnv(c.databaseUrl), WORKER_ENABLED: 'true', WORKER_HEARTBEAT_MS: String(HEARTBEAT_MS) }
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(here, '..', 'procore', 'fixtures', 'worker.ts')],
    {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)))
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) resolve()
    })
    child.once('exit', () => reject(new Error('the worker process exited before it was ready')))
  })

  // The ERP is slow to answer the list: the child's run is caught in the middle.
  c.erp.faults.push({ match: { method: 'GET', pathPrefix: '/v1/vendors' }, delayMs: 10_000 })
  const res = await c.app.inject({
    method: 'POST',
    url: `/v1/companies/${c.companyId}/sync-schedule/erp_vendor_list/run`,
    headers: c.admin,
  })
  t.equal(res.statusCode, 202)
  const runId = res.json<{ id: string }>().id
  const status = async (id: string) =>
    await c.app.db.selectFrom('sync_runs').select(['status', 'error']).where('id', '=', id).executeTakeFirstOrThrow()
  await eventually('the child to be listing', async () =>
    c.erp.calls.some((x) => x.path === '/v1/vendors') ? true : undefined,
  )
  t.equal((await status(runId)).status, 'running')

  child.kill('SIGKILL')
  t.equal(await exited, 'SIGKILL', 'the instance died by SIGKILL')
  t.equal((await status(runId)).status, 'running', 'nothing settled the run yet')

  // Any live instance's beat finds the pool that stopped beating (here called directly).
  await eventually('the dead pool to be noticed', async () => {
    const dead = await releaseJobsOfDeadWorkers(c.app.ctx, HEARTBEAT_MS * 3)
    return dead.length > 0 ? dead : undefined
  })
  t.match(await status(runId), { status: 'interrupted', error: /stopped before it finished/ })

  // While it was running, a due time would have been served by it; now the next due time starts a new run.
  c.erp.faults.clear()
  const schedule = await c.app.inject({
    method: 'GET',
    url: `/v1/companies/${c.companyId}/sync-schedule`,
    headers: c.admin,
  })
  const entry = schedule
    .json<{ entries: Array<{ syncType: string; nextDueAt: string }> }>()
    .entries.find((e) => e.syncType === 'erp_vendor_list')!
  const fired = await runDueSchedules(c.app.ctx, new Date(entry.nextDueAt))
  const next = fired.find((f) => f.syncType === 'erp_vendor_list')
  t.match(next, { outcome: 'started' })
  t.not(next?.runId, runId)

  // A live instance takes over the queue: the released job of the interrupted run does nothing, the new one runs.
  const runner = await buildApp(loadConfig(env))
  t.teardown(() => runner.close())
  const done = await eventually('the next run to finish', async () => {
    const s = await status(next!.runId!)
    return s.status === 'succeeded' || s.status === 'failed' ? s : undefined
  })
  t.equal(done.status, 'succeeded', done.error ?? '')
  t.equal((await status(runId)).status, 'interrupted', 'the interrupted run stays interrupted')
  const snapshots = await c.app.db
    .selectFrom('record_snapshots')
    .select('external_id')
    .where('company_id', '=', c.companyId)
    .where('type', '=', 'vendor')
    .execute()
  t.equal(snapshots.length, 5)
})
