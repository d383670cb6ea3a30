// Webhook installation (idempotent, rotation with grace) and intake: the auth matrix with zero
// rows written on rejection (T1), poison events acknowledged and quarantined (T4), payloads v2–v4.
import { sql } from 'kysely'
import t from 'tap'
import type { Db } from '../../src/db/database.js'
import { getSnapshot } from '../../src/sync/snapshots.js'
import {
  COMPANY,
  connectServiceAccount,
  harness,
  inboxSettled,
  installWebhook,
  newUlid,
  until,
  v2Event,
  type Harness,
} from './fixtures/harness.js'

const OTHER = '7100200300'

/** Rows in the inbox and jobs in the queue: what a rejected request must leave untouched. */
async function written(db: Db): Promise<{ events: number; jobs: number }> {
  const { rows } = await sql<{ events: string; jobs: string }>`
    select (select count(*) from inbox_events) as events,
      (select count(*) from graphile_worker._private_jobs) as jobs`.execute(db)
  return { events: Number(rows[0]!.events), jobs: Number(rows[0]!.jobs) }
}

const authorizationOf = (h: Harness, companyId = COMPANY): string => {
  const hook = h.standin.webhooks.hooks().find((x) => x.owned_by_company_id === companyId)
  const value = hook?.destination_headers.Authorization
  if (!value) throw new Error('no installed hook')
  return value
}

const post = (h: Harness, headers: Record<string, string>, payload: string, url = '/webhooks/procore') =>
  h.app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json', ...headers }, payload })

// Generous but bounded: these run many apps and Procore round trips on a shared 2-core machine.
t.setTimeout(300_000)

t.test('installing is idempotent: the second PUT changes nothing in Procore', async (t) => {
  const h = await harness(t)
  await connectServiceAccount(h)
  const first = await installWebhook(h)
  t.equal(first.apiVersion, 'v4.0', "Procore's advice for new integrations")
  const hook = h.standin.webhooks.hooks()[0]!
  t.equal(hook.namespace, 'erp-sync')
  t.match(hook.destination_headers.Authorization, new RegExp(`^Bearer ${COMPANY}\\.`))
  const triggers = h.standin.webhooks.triggers()
  for (const name of [
    'Departments',
    'Company Users',
    'Projects',
    'Standard Cost Codes',
    'Cost Codes',
    'Company Vendors',
  ]) {
    t.ok(
      triggers.some((tr) => tr.resource_name === name && tr.event_type === 'update'),
      `${name} update trigger`,
    )
  }
  t.match(
    first.triggers.find((tr) => tr.resourceName === 'Projects' && tr.eventType === 'delete'),
    { status: 'unsupported' },
    'Procore offers no delete for Projects',
  )

  const writesBefore = h.standin.calls.filter((c) => c.method !== 'GET').length
  const second = await installWebhook(h)
  t.same(second.triggers, first.triggers)
  t.equal(h.standin.calls.filter((c) => c.method !== 'GET').length, writesBefore, 'no write to Procore')
  t.equal(h.standin.webhooks.hooks().length, 1)
  t.equal(
    h.standin.webhooks.hooks()[0]!.destination_headers.Authorization,
    hook.destination_headers.Authorization,
    'secret unchanged',
  )
  t.equal(h.standin.webhooks.triggers().length, triggers.length)

  // Switching the payload version moves the triggers with the hook.
  const v2 = await installWebhook(h, { payloadVersion: 'v2.0' })
  t.equal(v2.apiVersion, 'v2.0')
  t.ok(h.standin.webhooks.triggers().every((tr) => tr.api_version === 'v2.0'))
  t.equal(h.standin.webhooks.triggers().length, triggers.length)

  // The secret is stored only as a hash.
  const row = await h.app.db
    .selectFrom('procore_webhooks')
    .selectAll()
    .where('company_id', '=', COMPANY)
    .executeTakeFirstOrThrow()
  t.notOk(
    JSON.stringify(row).includes(hook.destination_headers.Authorization!.split('.')[1]!),
    'no secret in the table',
  )
})

t.test('T1: the auth matrix; nothing is written for a rejected request', async (t) => {
  const h = await harness(t)
  h.standin.addCompany(OTHER, 'Other Co')
  await h.app.inject({
    method: 'POST',
    url: '/v1/companies',
    headers: h.admin,
    payload: { id: OTHER, name: 'Other', erpSystem: 'vista' },
  })
  await connectServiceAccount(h)
  await connectServiceAccount(h, OTHER)
  await installWebhook(h)
  await installWebhook(h, {}, OTHER)
  const good = authorizationOf(h)
  const other = authorizationOf(h, OTHER)
  const secret = good.slice(good.indexOf('.') + 1)
  const flip = (s: string) => s.slice(0, -1) + (s.endsWith('A') ? 'B' : 'A')
  const event = (companyId = COMPANY) =>
    v2Event({ companyId, resourceName: 'Company Vendors', resourceId: '4300000099', ulid: newUlid() })

  const before = await written(h.app.db)
  const rejected: Array<[string, Record<string, string>, string, string?]> = [
    ['no Authorization header', {}, event()],
    ['wrong scheme', { authorization: good.replace('Bearer', 'Basic') }, event()],
    ['secret without scheme', { authorization: good.slice('Bearer '.length) }, event()],
    ['wrong secret of equal length', { authorization: `Bearer ${COMPANY}.${flip(secret)}` }, event()],
    ['wrong secret of another length', { authorization: `Bearer ${COMPANY}.${secret}xyz` }, event()],
    [
      'secret of another company under this company',
      { authorization: `Bearer ${COMPANY}.${other.slice(other.indexOf('.') + 1)}` },
      event(),
    ],
    ["another company's header on this company's event", { authorization: other }, event(COMPANY)],
    [
      'token in the query string instead',
      {},
      event(),
      `/webhooks/procore?authorization=${encodeURIComponent(good)}&token=${secret}`,
    ],
    ['unknown company', { authorization: `Bearer 42.${secret}` }, event()],
    [
      'invalid JSON, wrong secret (401, not 400: auth comes first)',
      { authorization: `Bearer ${COMPANY}.${flip(secret)}` },
      '{"id":',
    ],
    [
      'oversized body, wrong secret (401, not 413: the body is not even read)',
      { authorization: `Bearer ${COMPANY}.${flip(secret)}` },
      `{"x":"${'a'.repeat(300_000)}"}`,
    ],
  ]
  for (const [name, headers, payload, url] of rejected) {
    const res = await post(h, headers, payload, url)
    t.equal(res.statusCode, 401, name)
    t.match(res.headers['content-type'], /^application\/problem\+json/, `${name}: problem+json`)
    t.equal(res.json().code, 'webhook_unauthorized')
  }
  t.same(await written(h.app.db), before, 'zero rows written for every rejected request')

  const ok = await post(h, { authorization: good }, event())
  t.equal(ok.statusCode, 200, 'the current secret')
  t.equal(ok.json().status, 'queued')
  const empty = await h.app.inject({ method: 'POST', url: '/webhooks/procore', headers: { authorization: good } })
  t.equal(empty.statusCode, 200, 'an empty body with a valid secret is stored')
  t.equal(empty.json().status, 'quarantined')

  // Rotation: the previous secret works during the grace period, then no more.
  await installWebhook(h, { rotateSecret: true })
  const rotated = authorizationOf(h)
  t.not(rotated, good, 'a new secret in Procore')
  t.equal((await post(h, { authorization: rotated }, event())).statusCode, 200, 'new secret accepted')
  t.equal(
    (await post(h, { authorization: good }, event())).statusCode,
    200,
    'previous secret accepted within the grace period',
  )
  const state = await h.app.inject({ method: 'GET', url: `/v1/companies/${COMPANY}/procore`, headers: h.admin })
  t.ok(state.json().webhook.previousSecretValidUntil, 'the grace period is visible')
  // The grace period ends (moved into the past rather than waited for).
  await h.app.db
    .updateTable('procore_webhooks')
    .set({ previous_valid_until: new Date(Date.now() - 1000) })
    .where('company_id', '=', COMPANY)
    .execute()
  const afterGrace = await written(h.app.db)
  t.equal(
    (await post(h, { authorization: good }, event())).statusCode,
    401,
    'previous secret refused after the grace period',
  )
  t.same(await written(h.app.db), afterGrace)
  t.equal((await post(h, { authorization: rotated }, event())).statusCode, 200)
})

t.test('T4: poison events are acknowledged, quarantined, and do not block the next one', async (t) => {
  const h = await harness(t, { worker: true })
  await connectServiceAccount(h)
  await installWebhook(h, { payloadVersion: 'v2.0' })
  const auth = { authorization: authorizationOf(h) }
  const big = 'x'.repeat(20_000)
  const poison: Array<[string, string]> = [
    ['unknown resource', v2Event({ resourceName: 'RFIs', resourceId: '54321', ulid: newUlid() })],
    [
      'missing resource_id',
      JSON.stringify({
        id: 1,
        ulid: newUlid(),
        company_id: Number(COMPANY),
        event_type: 'update',
        resource_name: 'Company Vendors',
      }),
    ],
    ['missing everything', '{}'],
    ['not JSON', 'this is not json'],
    ['a JSON array', '[1,2,3]'],
    [
      '20 KB strings',
      JSON.stringify({
        id: 2,
        ulid: newUlid(),
        company_id: Number(COMPANY),
        event_type: big,
        resource_name: big,
        resource_id: 5,
      }),
    ],
    [
      'resource_id not an id',
      JSON.stringify({
        id: 3,
        ulid: newUlid(),
        company_id: Number(COMPANY),
        event_type: 'update',
        resource_name: 'Company Vendors',
        resource_id: 'DROP TABLE',
      }),
    ],
  ]
  for (const [name, body] of poison) {
    const res = await post(h, auth, body)
    t.equal(res.statusCode, 200, `${name}: 2xx`)
    t.equal(res.json().status, 'quarantined', `${name}: quarantined`)
  }
  const listed = await h.app.inject({
    method: 'GET',
    url: `/v1/companies/${COMPANY}/webhook-events?status=quarantined`,
    headers: h.admin,
  })
  t.equal(listed.json().items.length, poison.length, 'every poison event is listed as quarantined')
  t.ok(
    listed.json().items.every((e: { lastError: string | null }) => e.lastError),
    'each with its reason',
  )

  // The next valid event is processed normally.
  const vendor = h.standin.seed(COMPANY, 'vendors', { name: 'After the poison' })
  const res = await post(h, auth, v2Event({ resourceName: 'Company Vendors', resourceId: vendor.id, ulid: newUlid() }))
  t.equal(res.json().status, 'queued')
  await until('processed', () => inboxSettled(h))
  t.equal((await getSnapshot(h.app.db, COMPANY, 'procore', 'vendor', vendor.id))?.fields.name, 'After the poison')
})

t.test('payloads v2.0, v3.0 and v4.0 are accepted; a redelivery is stored once', async (t) => {
  const h = await harness(t, { worker: true })
  await connectServiceAccount(h)
  await installWebhook(h)
  const auth = { authorization: authorizationOf(h) }
  const [a, b, c] = ['v2', 'v3', 'v4'].map((v) => h.standin.seed(COMPANY, 'departments', { name: `Dept ${v}` }))
  const ulid = newUlid()
  const bodies = [
    v2Event({ resourceName: 'Departments', resourceId: a!.id, ulid }),
    JSON.stringify({
      ...JSON.parse(v2Event({ resourceName: 'Departments', resourceId: b!.id, ulid: newUlid() })),
      api_version: 'v3.0',
      related_resources: [],
    }),
    JSON.stringify({
      id: newUlid(),
      timestamp: new Date().toISOString(),
      reason: 'update',
      company_id: COMPANY,
      project_id: null,
      user_id: '5447',
      resource_type: 'Departments',
      resource_id: c!.id,
    }),
  ]
  for (const body of bodies) t.equal((await post(h, auth, body)).json().status, 'queued')
  const again = await post(h, auth, bodies[0]!)
  t.equal(again.statusCode, 200, 'a redelivery is acknowledged')
  t.equal(again.json().status, 'duplicate', '… and not stored twice')
  await until('processed', () => inboxSettled(h))
  for (const dept of [a!, b!, c!])
    t.equal((await getSnapshot(h.app.db, COMPANY, 'procore', 'department', dept.id))?.fields.name, dept.name)
})

t.test('our own change echoing back is skipped without a read', async (t) => {
  const h = await harness(t, { worker: true })
  await connectServiceAccount(h)
  await installWebhook(h, { payloadVersion: 'v2.0' })
  const auth = { authorization: authorizationOf(h) }
  const vendor = h.standin.seed(COMPANY, 'vendors', { name: 'Echo Co' })
  const reads = () =>
    h.standin.calls.filter((c) => c.method === 'GET' && c.path === `/rest/v1.0/vendors/${vendor.id}`).length
  await post(
    h,
    auth,
    v2Event({
      resourceName: 'Company Vendors',
      resourceId: vendor.id,
      ulid: newUlid(),
      sourceApplicationId: 'standin-client',
    }),
  )
  await until('settled', () => inboxSettled(h))
  t.equal(reads(), 0, 'no re-read for our own change')
  const skipped = await h.app.inject({
    method: 'GET',
    url: `/v1/companies/${COMPANY}/webhook-events?status=skipped`,
    headers: h.admin,
  })
  t.equal(skipped.json().items.length, 1)

  // Someone else's change is read; a second event with identical content changes nothing.
  await post(h, auth, v2Event({ resourceName: 'Company Vendors', resourceId: vendor.id, ulid: newUlid() }))
  await until('settled', () => inboxSettled(h))
  t.equal(reads(), 1)
  const first = await getSnapshot(h.app.db, COMPANY, 'procore', 'vendor', vendor.id)
  await post(h, auth, v2Event({ resourceName: 'Company Vendors', resourceId: vendor.id, ulid: newUlid() }))
  await until('settled', () => inboxSettled(h))
  const second = await getSnapshot(h.app.db, COMPANY, 'procore', 'vendor', vendor.id)
  t.equal(second?.changed_at.getTime(), first?.changed_at.getTime(), 'same content hash: the snapshot did not change')
  const states = await h.app.db.selectFrom('inbox_events').select('status').orderBy('id').execute()
  t.same(
    states.map((s) => s.status),
    ['skipped', 'processed', 'skipped'],
  )
})

t.test('a failing insert is answered 503 with Retry-After, never 2xx', async (t) => {
  const h = await harness(t)
  await connectServiceAccount(h)
  await installWebhook(h)
  const auth = { authorization: authorizationOf(h) }
  // The inbox refuses writes (as when the database is read-only or the table locked out).
  await sql`create function refuse() returns trigger language plpgsql
    as $$ begin raise exception 'inbox offline'; end $$`.execute(h.app.db)
  await sql`create trigger refuse before insert on inbox_events for each row execute function refuse()`.execute(
    h.app.db,
  )
  const res = await post(h, auth, v2Event({ resourceName: 'Company Vendors', resourceId: '1', ulid: newUlid() }))
  t.equal(res.statusCode, 503)
  t.ok(res.headers['retry-after'])
  t.notMatch(res.body, /inbox offline/, 'no internal message leaks')
  await sql`drop trigger refuse on inbox_events`.execute(h.app.db)
  t.equal(
    (await post(h, auth, v2Event({ resourceName: 'Company Vendors', resourceId: '1', ulid: newUlid() }))).statusCode,
    200,
  )
})

t.test(
  'a record Procore keeps refusing: retried, then failed with the reason; the retry route re-queues it',
  async (t) => {
    const h = await harness(t, { worker: true })
    await connectServiceAccount(h)
    await installWebhook(h, { payloadVersion: 'v2.0' })
    const auth = { authorization: authorizationOf(h) }
    const vendor = h.standin.seed(COMPANY, 'vendors', { name: 'Locked Away' })
    h.standin.faults.push({
      match: { method: 'GET', pathPrefix: `/rest/v1.0/vendors/${vendor.id}` },
      status: 403,
      times: 2,
    })
    await post(h, auth, v2Event({ resourceName: 'Company Vendors', resourceId: vendor.id, ulid: newUlid() }))
    const event = () =>
      h.app.db.selectFrom('inbox_events').select(['id', 'status', 'attempts', 'last_error']).executeTakeFirstOrThrow()
    await until('first attempt failed', async () => (await event()).attempts === 1)
    t.match(
      await event(),
      { status: 'queued', last_error: /403/ },
      'back in the queue with the reason, to be retried with backoff',
    )

    // The backoff is graphile-worker's (exp(attempt) s): skip ahead to the last attempt instead of waiting, once
    // the worker has recorded the failed attempt (unlocked, with its error); moving the job before that would let
    // the failure's own backoff, counted from the skipped-ahead attempts, push it out of reach.
    await until('the failed attempt is recorded', async () => {
      const { rows } = await sql<{ n: string }>`select count(*) as n from graphile_worker._private_jobs
        where locked_at is null and last_error is not null`.execute(h.app.db)
      return rows[0]?.n === '1'
    })
    await sql`update graphile_worker._private_jobs set attempts = max_attempts - 1, run_at = now()
      where locked_at is null`.execute(h.app.db)
    await until('last attempt failed', async () => (await event()).status === 'failed')
    t.match(await event(), { status: 'failed', last_error: /403 forbidden/ })
    const failed = await h.app.inject({
      method: 'GET',
      url: `/v1/companies/${COMPANY}/webhook-events?status=failed`,
      headers: h.admin,
    })
    t.equal(failed.json().items.length, 1, 'listed as failed, with its reason')

    // Access is fixed in Procore; someone retries the event.
    const { id } = await event()
    const retried = await h.app.inject({
      method: 'POST',
      url: `/v1/companies/${COMPANY}/webhook-events/${id}/retry`,
      headers: h.admin,
    })
    t.equal(retried.statusCode, 200)
    await until('processed', async () => (await event()).status === 'processed')
    t.equal((await getSnapshot(h.app.db, COMPANY, 'procore', 'vendor', vendor.id))?.fields.name, 'Locked Away')
  },
)

t.test('an event whose job add was dropped (graphile add_job race) still gets a job', async (t) => {
  const h = await harness(t, { worker: true })
  await connectServiceAccount(h)
  await installWebhook(h, { payloadVersion: 'v2.0' })
  const vendor = h.standin.seed(COMPANY, 'vendors', { name: 'Dropped Job Co' })
  // The outcome of the race: add_job inserts nothing (here: the first insert is discarded).
  await sql`create table drop_once (n int)`.execute(h.app.db)
  await sql`insert into drop_once values (1)`.execute(h.app.db)
  const dropFirstJob = sql`create function drop_first_job() returns trigger language plpgsql as $$
    begin if exists (select 1 from drop_once) then delete from drop_once; return null; end if; return new; end $$`
  await dropFirstJob.execute(h.app.db)
  await sql`create trigger drop_first_job before insert on graphile_worker._private_jobs
    for each row execute function drop_first_job()`.execute(h.app.db)
  const res = await post(
    h,
    { authorization: authorizationOf(h) },
    v2Event({ resourceName: 'Company Vendors', resourceId: vendor.id, ulid: newUlid() }),
  )
  t.equal(res.json().status, 'queued')
  t.equal(
    (await sql<{ n: string }>`select count(*) as n from drop_once`.execute(h.app.db)).rows[0]?.n,
    '0',
    'the first add was dropped',
  )
  await until('processed', () => inboxSettled(h))
  t.equal((await getSnapshot(h.app.db, COMPANY, 'procore', 'vendor', vendor.id))?.fields.name, 'Dropped Job Co')
})
