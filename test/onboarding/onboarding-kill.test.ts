// The service SIGKILLed in the middle of an onboarding step: the step shows where it stopped, and
// asking it again (of a new instance, over HTTP) finishes it without making any record twice.
import { spawn } from 'node:child_process'
import type { AddressInfo } from 'node:net'
import { createServer } from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { releaseJobsOfDeadWorkers } from '../../src/jobs/runner.js'
import { testEnv } from '../helpers/app.js'
import { CLIENT, syncHarness, until } from '../sync/fixtures/harness.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const HEARTBEAT_MS = 300
const EMPLOYEES = 30

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** The service in a process of its own; resolves once it listens. */
async function service(t: Test, env: Record<string, string>) {
  const port = await freePort()
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'fixtures', 'service.ts')], {
    env: { ...process.env, ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)))
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    return exited
  })
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) resolve()
    })
    child.once('exit', () => reject(new Error('the service exited before it was ready')))
  })
  return { child, exited, url: `http://127.0.0.1:${port}` }
}

t.test('killed mid-step, the step resumes when asked again and makes nothing twice', async (t) => {
  // This process serves webhooks and API calls but runs no jobs: the service processes do.
  const h = await syncHarness(t, { env: { WORKER_ENABLED: 'false' } })
  const c = h.companyId
  const env = {
    ...testEnv(h.databaseUrl),
    PROCORE_API_URL: h.procore.url,
    PROCORE_LOGIN_URL: h.procore.url,
    PROCORE_CLIENT_ID: CLIENT.id,
    PROCORE_CLIENT_SECRET: CLIENT.secret,
    PUBLIC_URL: h.baseUrl,
    WORKER_ENABLED: 'true',
    WORKER_HEARTBEAT_MS: String(HEARTBEAT_MS),
  }
  const employees = Array.from({ length: EMPLOYEES }, (_, i) =>
    h.erp.seed('employees', { first_name: `Worker${i}`, last_name: 'Crew', email: `w${i}@rb.test` }),
  )
  const first = await service(t, env)
  const call = async (base: string, method: string, url: string, body?: unknown, key?: string) => {
    const res = await fetch(`${base}${url}`, {
      method,
      headers: {
        ...h.admin,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(key ? { 'idempotency-key': key } : {}),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    return { status: res.status, body: (await res.json()) as any }
  }
  const erpList = h.procore.list(c, 'standard_cost_code_lists')[0]!
  t.equal(
    (await call(first.url, 'POST', `/v1/companies/${c}/onboarding/steps/company`, { costCodeListId: erpList.id }, 'c'))
      .status,
    200,
  )
  await h.refresh(['user'])

  // Procore is slow to take the new users: the step is caught in the middle of creating them.
  h.procore.faults.push({
    match: { method: 'PATCH', pathPrefix: `/rest/v1.0/companies/${c}/users/sync` },
    delayMs: 3000,
  })
  const started = await call(first.url, 'POST', `/v1/companies/${c}/onboarding/steps/users`, { mode: 'auto' }, 'u1')
  t.equal(started.status, 202, JSON.stringify(started.body))
  const runId: string = started.body.run.id
  await until('the step is creating users', async () =>
    h.procore.calls.some((x) => x.method === 'PATCH' && x.path.endsWith('/users/sync')),
  )
  first.child.kill('SIGKILL')
  t.equal(await first.exited, 'SIGKILL', 'the service died by SIGKILL')

  await until('the dead instance to be noticed', async () => {
    const dead = await releaseJobsOfDeadWorkers(h.app.ctx, HEARTBEAT_MS * 3)
    return dead.length > 0
  })
  const stopped = (await h.api('GET', `/v1/companies/${c}/onboarding`)).body.steps[1]
  t.match(stopped, {
    step: 'users',
    status: 'in_progress',
    run: { id: runId, status: 'interrupted' },
    blockedBy: /ended interrupted.*POST .*steps\/users again to resume/,
  })

  // A new instance; the same step asked again.
  h.procore.faults.clear()
  const second = await service(t, env)
  const resumed = await call(second.url, 'POST', `/v1/companies/${c}/onboarding/steps/users`, { mode: 'auto' }, 'u2')
  t.equal(resumed.status, 202, JSON.stringify(resumed.body))
  const run = await h.waitRun(resumed.body.run.id)
  t.equal(run.status, 'succeeded', JSON.stringify(run.error))

  const state = await call(second.url, 'GET', `/v1/companies/${c}/onboarding`)
  t.match(state.body.steps[1], {
    status: 'done',
    counts: { inErp: EMPLOYEES, linked: EMPLOYEES, toCreate: 0 },
  })
  const users = h.procore.list(c, 'users')
  for (const e of employees) {
    const made = users.filter((u) => u.email_address === e.email)
    t.equal(made.length, 1, `${String(e.email)} is in Procore once`)
    t.equal(made[0]?.origin_id, e.id, 'and carries its ERP id')
  }
  await h.quiet()
})
