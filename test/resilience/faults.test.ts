// Faults inside PostgreSQL, injected with real triggers and real backend termination: the service
// answers with problems, releases what it holds and keeps running.
import { randomBytes } from 'node:crypto'
import { sql } from 'kysely'
import pg from 'pg'
import t from 'tap'
import { hashHeader, webhookHeader } from '../../src/procore/intake.js'
import { releaseJobsOfDeadWorkers } from '../../src/jobs/runner.js'
import { signStandardWebhook } from '../standins/erp/index.js'
import { connected } from '../erp/fixtures/harness.js'
import { build, createCompany } from '../helpers/app.js'

t.setTimeout(240_000)
const COMPANY = '7'

t.test('an authentic webhook with a NUL character is stored quarantined and acknowledged', async (t) => {
  const { app, adminKey } = await build(t, { WORKER_ENABLED: 'false' })
  await createCompany(app, adminKey, COMPANY)
  const authorization = webhookHeader(COMPANY, randomBytes(24).toString('base64url'))
  await sql`insert into procore_webhooks (company_id, namespace, api_version, destination_url, secret_hash,
    secret_rotated_at) values (${COMPANY}, 'erp-sync', 'v4.0', 'http://x', ${hashHeader(authorization)}, now())`.execute(
    app.db,
  )
  const bodies = [
    // Escaped in JSON text: the parsed resource name carries U+0000.
    `{"id":"01J0000000000000000000NUL1","company_id":"${COMPANY}","resource_name":"Company Vendors\\u0000",` +
      `"resource_id":"1","event_type":"update","reason":"update"}`,
    // A raw NUL byte in the body itself, and in the event id.
    `{"id":"01J0000000000000000000N\u0000L2","company_id":"${COMPANY}","resource_name":"Company Vendors",` +
      `"resource_id":"2\u0000","event_type":"update","reason":"update"}`,
  ]
  for (const [i, payload] of bodies.entries()) {
    for (let attempt = 0; attempt < 2; attempt++) {
      const res = await app.inject({
        method: 'POST',
        url: '/webhooks/procore',
        headers: { authorization, 'content-type': 'application/json' },
        payload,
      })
      t.equal(res.statusCode, 200, `body ${i} attempt ${attempt}: ${res.body}`)
    }
  }
  const rows = await app.db.selectFrom('inbox_events').select(['status', 'body', 'last_error']).execute()
  t.equal(rows.length, 2, 'each stored once')
  t.same(
    rows.map((r) => r.status),
    ['quarantined', 'quarantined'],
    'quarantined',
  )
  t.ok(
    rows.some((r) => /U\+0000/.test(r.last_error ?? '')),
    `saying why: ${rows.map((r) => r.last_error).join(' | ')}`,
  )
})

t.test('an authentic ERP notification with a raw NUL byte is stored quarantined and acknowledged', async (t) => {
  const c = await connected(t, { env: { WORKER_ENABLED: 'false' } })
  const body = '{"type":"record.updated","resource":"vendors","id":"V\u00001","occurred_at":"2024-05-01T12:00:00Z"}'
  const id = 'msg_nul_1'
  const timestamp = Math.floor(Date.now() / 1000)
  const res = await c.app.inject({
    method: 'POST',
    url: `/webhooks/erp/${c.companyId}`,
    payload: body,
    headers: {
      'content-type': 'application/json',
      'webhook-id': id,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signStandardWebhook(c.secret, id, timestamp, body),
    },
  })
  t.equal(res.statusCode, 204, res.body)
  const row = await c.app.db.selectFrom('inbox_events').select(['status', 'last_error']).executeTakeFirstOrThrow()
  t.equal(row.status, 'quarantined')
})

t.test('when releasing an idempotency key fails, the caller gets a problem and the key comes free', async (t) => {
  const { app, adminKey, auth } = await build(t, { WORKER_ENABLED: 'false' })
  // The request fails (a 5xx), and so does the first attempt to release its key: a database that went away
  // mid-request, made deterministic with triggers.
  await sql`create sequence fault_seq;
    create function fail_company() returns trigger language plpgsql as $$
      begin raise exception 'injected: database gone'; end $$;
    create trigger fail_company before insert on companies for each row execute function fail_company();
    create function fail_release() returns trigger language plpgsql as $$
      begin
        -- A sequence is not rolled back with the failing statement: only the first call fails.
        if nextval('fault_seq') = 1 then raise exception 'read ECONNRESET'; end if;
        return old;
      end $$;
    create trigger fail_release before delete on idempotency_keys
      for each row execute function fail_release();`.execute(app.db)
  const send = () =>
    app.inject({
      method: 'POST',
      url: '/v1/companies',
      headers: { ...auth(adminKey), 'idempotency-key': 'release-1' },
      payload: { id: '12', name: 'N', erpSystem: 'generic' },
    })
  const first = await send()
  t.equal(first.statusCode, 500)
  t.ok(String(first.headers['content-type']).startsWith('application/problem+json'), first.body)
  t.notMatch(first.body, /ECONNRESET|injected/, 'no driver text')
  await sql`drop trigger fail_company on companies`.execute(app.db)
  // The key is released in the background once the database answers again; a retry soon runs anew.
  let retry = await send()
  for (let i = 0; i < 50 && retry.statusCode === 409; i++) {
    await new Promise((r) => setTimeout(r, 100))
    retry = await send()
  }
  t.equal(retry.statusCode, 201, `the retry runs: ${retry.body}`)
})

t.test('the job runner survives a failed job completion and runs jobs again', async (t) => {
  const { app } = await build(t, { WORKER_POLL_INTERVAL_MS: '200' })
  const crashes: unknown[] = []
  const onRejection = (reason: unknown) => crashes.push(reason)
  process.on('unhandledRejection', onRejection)
  t.teardown(() => void process.off('unhandledRejection', onRejection))
  // Completing a job deletes its row: make that fail once, as it does when PostgreSQL drops the connection.
  await sql`create sequence fault_seq;
    create function fail_complete() returns trigger language plpgsql as $$
      begin
        if nextval('fault_seq') = 1 then raise exception 'terminating connection due to administrator command'; end if;
        return old;
      end $$;
    create trigger fail_complete before delete on graphile_worker._private_jobs
      for each row execute function fail_complete();`.execute(app.db)
  // Any cheap job will do: the idempotency purge exists in every deployment.
  await sql`select graphile_worker.add_job('purge-idempotency-keys', '{}'::json)`.execute(app.db)
  await sql`select graphile_worker.add_job('purge-idempotency-keys', '{}'::json, job_key := 'second',
    run_at := now() + interval '1 second')`.execute(app.db)
  let left = 2
  for (let i = 0; i < 150 && left > 0; i++) {
    await new Promise((r) => setTimeout(r, 100))
    const { rows } = await sql<{ n: string }>`select count(*) as n from graphile_worker._private_jobs
      where task_id in (select id from graphile_worker._private_tasks where identifier = 'purge-idempotency-keys')
      and last_error is null`.execute(app.db)
    left = Number(rows[0]!.n)
  }
  t.equal(crashes.length, 0, `no unhandled rejection: ${crashes.map((c) => (c as Error).stack).join(' | ')}`)
  const jobs = await sql`select task_id, attempts, last_error, locked_by, locked_at, run_at
    from graphile_worker._private_jobs`.execute(app.db)
  t.equal(left, 0, `both jobs ran to completion after the failure: ${JSON.stringify(jobs.rows)}`)
})

t.test(
  'a webhook whose secret lookup is stuck is answered 503 within the ack budget, not when it unblocks',
  async (t) => {
    // A statement timeout far beyond Procore's 5 s: only the ack budget can answer in time.
    const { app, adminKey, databaseUrl } = await build(t, { WORKER_ENABLED: 'false', DB_STATEMENT_TIMEOUT_MS: '60000' })
    await createCompany(app, adminKey, COMPANY)
    const authorization = webhookHeader(COMPANY, randomBytes(24).toString('base64url'))
    await sql`insert into procore_webhooks (company_id, namespace, api_version, destination_url, secret_hash,
    secret_rotated_at) values (${COMPANY}, 'erp-sync', 'v4.0', 'http://x', ${hashHeader(authorization)}, now())`.execute(
      app.db,
    )
    const blocker = new pg.Client(databaseUrl)
    await blocker.connect()
    await blocker.query('begin')
    await blocker.query('lock table procore_webhooks in access exclusive mode')
    let released = false
    // Bounded: the lock goes after 20 s whatever happens.
    const release = setTimeout(() => {
      released = true
      void blocker.query('rollback')
    }, 20_000)
    const res = await app.inject({
      method: 'POST',
      url: '/webhooks/procore',
      headers: { authorization, 'content-type': 'application/json' },
      payload:
        `{"id":1,"ulid":"01J0000000000000000000LCK1","company_id":${COMPANY},"resource_name":"Company Vendors",` +
        `"resource_id":1,"event_type":"update"}`,
    })
    const answeredWhileLocked = !released
    clearTimeout(release)
    if (!released) await blocker.query('rollback')
    await blocker.end()
    t.ok(answeredWhileLocked, 'answered while the lookup was still blocked')
    t.equal(res.statusCode, 503, res.body)
    t.ok(res.headers['retry-after'], 'with Retry-After')
  },
)

t.test(
  'a job whose process was killed on its last attempt runs again instead of sitting at max attempts',
  async (t) => {
    const { app } = await build(t, { WORKER_ENABLED: 'false' })
    await sql`select graphile_worker.add_job('purge-idempotency-keys', '{}'::json, max_attempts := 3)`.execute(app.db)
    // As a SIGKILLed process leaves it: fetched for its last attempt (counted), locked by a worker that beats no more.
    await sql`update graphile_worker._private_jobs set attempts = 3, locked_by = 'worker-killed',
    locked_at = now() - interval '1 hour'`.execute(app.db)
    const released = await releaseJobsOfDeadWorkers(app.ctx, 60_000)
    t.same(released, ['worker-killed'])
    const { rows } = await sql<{ attempts: number; max_attempts: number; locked_by: string | null }>`
    select attempts, max_attempts, locked_by from graphile_worker._private_jobs`.execute(app.db)
    t.equal(rows[0]!.locked_by, null, 'unlocked')
    t.ok(rows[0]!.attempts < rows[0]!.max_attempts, `it has an attempt left: ${JSON.stringify(rows[0])}`)
  },
)

t.test('a long queue for database connections is answered 503 at once, health still answers', async (t) => {
  const { app, adminKey, auth, databaseUrl } = await build(t, {
    WORKER_ENABLED: 'false',
    DB_POOL_MAX: '1',
    PRESSURE_MAX_POOL_WAITING: '1',
  })
  const blocker = new pg.Client(databaseUrl)
  await blocker.connect()
  await blocker.query('begin')
  await blocker.query('lock table companies in access exclusive mode')
  const list = () => app.inject({ method: 'GET', url: '/v1/companies', headers: auth(adminKey) })
  // The first holds the only connection (blocked by the lock); the next ones queue for it.
  const held = [list(), list(), list()]
  let refused: Awaited<ReturnType<typeof list>> | undefined
  for (let i = 0; i < 50 && !refused; i++) {
    await new Promise((r) => setTimeout(r, 50))
    const res = await Promise.race([list(), new Promise<undefined>((r) => setTimeout(() => r(undefined), 100))])
    if (res?.statusCode === 503) refused = res
  }
  const live = await app.inject({ method: 'GET', url: '/health/live' })
  await blocker.query('rollback')
  await blocker.end()
  await Promise.all(held)
  t.ok(refused, 'a request was refused while the queue was long')
  t.equal(refused?.json().code, 'overloaded')
  t.equal(refused?.headers['retry-after'], '2')
  t.equal(live.statusCode, 200, 'liveness is always answered')
})
