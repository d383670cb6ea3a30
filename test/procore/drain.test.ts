// The inbox drain and intake fast path: changed records re-read a page per request (filters[id][]),
// a burst on one record read once, a rotated secret refused at once, an event never stored without its job.
// How a record's events are coalesced is in test/inbox/coalescing.test.ts.
import { sql } from 'kysely'
import t from 'tap'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { getSnapshot } from '../../src/sync/snapshots.js'
import { testEnv } from '../helpers/app.js'
import type { Call } from '../standins/procore/server.js'
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
  type Harness,
} from './fixtures/harness.js'

t.setTimeout(300_000)

const authorizationOf = (h: Harness): string => h.standin.webhooks.hooks()[0]!.destination_headers.Authorization!

const post = (h: Harness, body: string, authorization = authorizationOf(h)) =>
  h.app.inject({
    method: 'POST',
    url: '/webhooks/procore',
    headers: { authorization, 'content-type': 'application/json' },
    payload: body,
  })

const vendorEvent = (id: string, eventType = 'update') =>
  v2Event({ resourceName: 'Company Vendors', resourceId: id, ulid: newUlid(), eventType })

/** Runs the queued jobs in another app on the test's database (a worker instance) until the inbox is settled. */
async function drainWithWorker(h: Harness, env: Record<string, string> = {}) {
  const worker = await buildApp(
    loadConfig({
      ...testEnv(h.databaseUrl),
      PROCORE_API_URL: h.standin.url,
      PROCORE_LOGIN_URL: h.standin.url,
      PROCORE_CLIENT_ID: CLIENT.id,
      PROCORE_CLIENT_SECRET: CLIENT.secret,
      WORKER_ENABLED: 'true',
      ...env,
    }),
  )
  try {
    await until('inbox settled', () => inboxSettled(h))
  } finally {
    await worker.close()
  }
}

const vendorLists = (calls: readonly Call[]) =>
  calls.filter((c) => c.method === 'GET' && c.path === '/rest/v1.0/vendors' && idsAsked(c).length > 0)
const idsAsked = (c: Call): string[] => {
  const filters = c.query.filters as Record<string, unknown> | undefined
  const ids = filters?.id
  return Array.isArray(ids) ? ids.map(String) : typeof ids === 'string' ? [ids] : []
}
const vendorGets = (calls: readonly Call[]) =>
  calls.filter((c) => c.method === 'GET' && /^\/rest\/v1\.0\/vendors\/\d+$/.test(c.path))

t.test('changes to 250 distinct vendors cost ceil(250/100) list calls; the absent ones are read alone', async (t) => {
  const h = await harness(t)
  await connectServiceAccount(h)
  await installWebhook(h, { payloadVersion: 'v2.0' })
  const vendors = Array.from({ length: 250 }, (_, i) => h.standin.seed(COMPANY, 'vendors', { name: `V${i}` }).id)
  for (const id of vendors) t.equal((await post(h, vendorEvent(id))).statusCode, 200)
  await drainWithWorker(h)
  t.equal(vendorLists(h.standin.calls).length, 3, 'first round: three list calls')
  t.equal(vendorGets(h.standin.calls).length, 0, 'and no single read')

  // Second round: everything changes, two vendors are deleted, one becomes inactive (missing from the main list).
  const [gone1, gone2, inactive] = [vendors[3]!, vendors[140]!, vendors[249]!]
  for (const [i, id] of vendors.entries()) {
    if (id === gone1 || id === gone2) h.standin.remove(COMPANY, 'vendors', id, { emit: false })
    else h.standin.change(COMPANY, 'vendors', id, { name: `V${i} renamed` }, { emit: false })
  }
  h.standin.change(COMPANY, 'vendors', inactive, { is_active: false }, { emit: false })
  const before = h.standin.calls.length
  for (const id of vendors) await post(h, vendorEvent(id, id === gone1 || id === gone2 ? 'delete' : 'update'))
  // A redelivery and a second change of one record add nothing.
  await post(h, vendorEvent(vendors[7]!))
  await drainWithWorker(h)

  const calls = h.standin.calls.slice(before)
  const lists = vendorLists(calls)
  t.equal(lists.length, 3, `${vendors.length} changed records: ${lists.length} list calls`)
  t.ok(
    lists.every((c) => idsAsked(c).length <= 100),
    'at most 100 ids per call',
  )
  t.same(
    vendorGets(calls)
      .map((c) => c.path.split('/').at(-1))
      .sort(),
    [gone1, gone2, inactive].sort(),
    'single reads only for the records the lists did not show (deleted, inactive)',
  )
  for (const id of [gone1, gone2])
    t.ok((await getSnapshot(h.app.db, COMPANY, 'procore', 'vendor', id))?.deleted_at, `${id} deleted`)
  const inactiveSnap = await getSnapshot(h.app.db, COMPANY, 'procore', 'vendor', inactive)
  t.equal(inactiveSnap?.deleted_at, null, 'the inactive vendor is not taken for deleted')
  t.equal(inactiveSnap?.fields.name, 'V249 renamed')
  t.equal((await getSnapshot(h.app.db, COMPANY, 'procore', 'vendor', vendors[100]!))?.fields.name, 'V100 renamed')
  const states = await h.app.db.selectFrom('inbox_events').select(['status', 'attempts']).execute()
  t.equal(states.length, 501)
  t.ok(
    states.every((s) => (s.status === 'processed' || s.status === 'skipped') && s.attempts === 1),
    'every event settled once',
  )
})

t.test('a burst of 40 events on one record costs one read', async (t) => {
  const h = await harness(t)
  await connectServiceAccount(h)
  await installWebhook(h, { payloadVersion: 'v2.0' })
  const busy = h.standin.seed(COMPANY, 'vendors', { name: 'Busy' }).id
  const quiet = h.standin.seed(COMPANY, 'vendors', { name: 'Quiet' }).id
  for (let i = 0; i < 40; i++) t.equal((await post(h, vendorEvent(busy))).statusCode, 200)
  await post(h, vendorEvent(quiet))
  await drainWithWorker(h)
  const readsOf = (id: string) =>
    vendorLists(h.standin.calls).filter((c) => idsAsked(c).includes(id)).length +
    vendorGets(h.standin.calls).filter((c) => c.path.endsWith(`/${id}`)).length
  t.equal(readsOf(busy), 1, '40 events, one read')
  t.equal(readsOf(quiet), 1)
  t.equal(vendorLists(h.standin.calls).length, 1, 'both in one list call')
})

t.test('a rotated secret is refused right after the rotation, though it was cached', async (t) => {
  const h = await harness(t, { env: { WEBHOOK_SECRET_GRACE_HOURS: '0' } })
  await connectServiceAccount(h)
  await installWebhook(h, { payloadVersion: 'v2.0' })
  const vendor = h.standin.seed(COMPANY, 'vendors', { name: 'Rotating' }).id
  const old = authorizationOf(h)
  for (let i = 0; i < 3; i++) t.equal((await post(h, vendorEvent(vendor), old)).statusCode, 200, 'old secret, cached')

  // Another instance on the same database has cached the old secret as well.
  const other = await buildApp(
    loadConfig({ ...testEnv(h.databaseUrl), PROCORE_API_URL: h.standin.url, WORKER_ENABLED: 'false' }),
  )
  t.teardown(() => other.close())
  const postTo = (app: typeof other, authorization: string) =>
    app.inject({
      method: 'POST',
      url: '/webhooks/procore',
      headers: { authorization, 'content-type': 'application/json' },
      payload: vendorEvent(vendor),
    })
  t.equal((await postTo(other, old)).statusCode, 200)

  await installWebhook(h, { payloadVersion: 'v2.0', rotateSecret: true })
  const rotated = authorizationOf(h)
  t.not(rotated, old)
  t.equal((await post(h, vendorEvent(vendor), old)).statusCode, 401, 'old secret refused at once (no grace period)')
  t.equal((await post(h, vendorEvent(vendor), rotated)).statusCode, 200, 'new secret accepted')
  t.equal((await postTo(other, rotated)).statusCode, 200, 'the other instance accepts the new secret at once')

  // Removing the hook forgets the secret here too.
  const removed = await h.app.inject({
    method: 'DELETE',
    url: `/v1/companies/${COMPANY}/procore/webhook`,
    headers: h.admin,
  })
  t.equal(removed.statusCode, 204, removed.body)
  t.equal((await post(h, vendorEvent(vendor), rotated)).statusCode, 401, 'refused once the hook is removed')
})

t.test('an event is never stored without its job: when the job cannot be added, nothing is acknowledged', async (t) => {
  const h = await harness(t)
  await connectServiceAccount(h)
  await installWebhook(h, { payloadVersion: 'v2.0' })
  await sql`create function refuse_job() returns trigger language plpgsql
    as $$ begin raise exception 'queue offline'; end $$`.execute(h.app.db)
  await sql`create trigger refuse_job before insert on graphile_worker._private_jobs
    for each row execute function refuse_job()`.execute(h.app.db)
  const res = await post(h, vendorEvent('4300000001'))
  t.equal(res.statusCode, 503, 'not acknowledged')
  t.ok(res.headers['retry-after'])
  const { rows } = await sql<{ n: string }>`select count(*) as n from inbox_events`.execute(h.app.db)
  t.equal(rows[0]?.n, '0', 'and not stored: the event and its job commit together or not at all')
  await sql`drop trigger refuse_job on graphile_worker._private_jobs`.execute(h.app.db)
  t.equal((await post(h, vendorEvent('4300000001'))).statusCode, 200)
  const jobs = await sql<{ key: string }>`select key from graphile_worker._private_jobs`.execute(h.app.db)
  t.same(
    jobs.rows.map((j) => j.key),
    [`inbox:${COMPANY}:procore`],
    "one job: the company's inbox drain",
  )
})
