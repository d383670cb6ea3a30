// D5: a worker SIGKILLed in the middle of processing a webhook event loses nothing: another
// runner notices the silent worker (heartbeats) and re-runs the job; the event is processed.
import { spawn } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { getSnapshot } from '../../src/sync/snapshots.js'
import { testEnv } from '../helpers/app.js'
import {
  CLIENT,
  COMPANY,
  connectServiceAccount,
  harness,
  inboxSettled,
  installWebhook,
  newUlid,
  until,
  v2Event,
} from './fixtures/harness.js'

const here = path.dirname(fileURLToPath(import.meta.url))

t.test('a worker killed mid-job: the event is processed after another runner takes over', async (t) => {
  const h = await harness(t) // this process stores events but runs no jobs (yet)
  await connectServiceAccount(h)
  await installWebhook(h, { payloadVersion: 'v2.0' })
  const vendor = h.standin.seed(COMPANY, 'vendors', { name: 'Before' })
  const env = {
    ...testEnv(h.databaseUrl),
    PROCORE_API_URL: h.standin.url,
    PROCORE_LOGIN_URL: h.standin.url,
    PROCORE_CLIENT_ID: CLIENT.id,
    PROCORE_CLIENT_SECRET: CLIENT.secret,
    WORKER_ENABLED: 'true',
    WORKER_HEARTBEAT_MS: '300',
  }

  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'fixtures', 'worker.ts')], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
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

  // Procore is slow to answer this record: the child's job is caught in the middle.
  h.standin.faults.push({ match: { method: 'GET', pathPrefix: `/rest/v1.0/vendors/${vendor.id}` }, delayMs: 5000 })
  h.standin.change(COMPANY, 'vendors', vendor.id, { name: 'After' }, { emit: false })
  const auth = h.standin.webhooks.hooks()[0]!.destination_headers.Authorization!
  const res = await h.app.inject({
    method: 'POST',
    url: '/webhooks/procore',
    headers: { authorization: auth, 'content-type': 'application/json' },
    payload: v2Event({ resourceName: 'Company Vendors', resourceId: vendor.id, ulid: newUlid() }),
  })
  t.equal(res.statusCode, 200)
  const reads = () => h.standin.calls.filter((c) => c.method === 'GET' && c.path === `/rest/v1.0/vendors/${vendor.id}`)
  await until('the child is reading the record', async () => reads().length === 1)
  const locked = await h.app.db.selectFrom('inbox_events').select('status').executeTakeFirstOrThrow()
  t.equal(locked.status, 'queued', 'mid-job: not processed yet')

  child.kill('SIGKILL')
  t.equal(await exited, 'SIGKILL', 'the worker died by SIGKILL')
  t.equal(
    (await h.app.db.selectFrom('inbox_events').select('status').executeTakeFirstOrThrow()).status,
    'queued',
    'nothing was settled by the dead worker',
  )

  // A new runner (here, in this process) with a short heartbeat takes over the dead worker's job.
  const runner = await buildApp(loadConfig(env))
  t.teardown(() => runner.close())
  await until('event processed', () => inboxSettled(h), 100)
  const event = await h.app.db.selectFrom('inbox_events').select(['status', 'attempts']).executeTakeFirstOrThrow()
  t.match(event, { status: 'processed', attempts: 1 })
  t.equal((await getSnapshot(h.app.db, COMPANY, 'procore', 'vendor', vendor.id))?.fields.name, 'After')
  t.equal(reads().length, 2, 'read once by the killed worker, once more by the runner that took over')
})
