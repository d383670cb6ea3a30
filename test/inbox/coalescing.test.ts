// Coalescing of a record's webhook events: an isolated change is read at once, even right after a read of its
// record; events stored before a read started are settled by it; an event stored while a read was in flight gets
// a read of its own. Reads are counted in the Procore stand-in's traffic log; nothing here measures time.
import { sql } from 'kysely'
import t, { type Test } from 'tap'
import { getSnapshot } from '../../src/sync/snapshots.js'
import type { Call } from '../standins/procore/server.js'
import {
  COMPANY,
  connectServiceAccount,
  harness,
  installWebhook,
  newUlid,
  until,
  v2Event,
  type Harness,
} from '../procore/fixtures/harness.js'

t.setTimeout(300_000)

async function setUp(t: Test, env: Record<string, string>) {
  const h = await harness(t, { worker: true, env })
  await connectServiceAccount(h)
  await installWebhook(h, { payloadVersion: 'v2.0' })
  return h
}

/** Delivers a Procore event about a vendor, as the stand-in would; returns its dedupe key. */
async function send(t: Test, h: Harness, vendorId: string): Promise<string> {
  const ulid = newUlid()
  const res = await h.app.inject({
    method: 'POST',
    url: '/webhooks/procore',
    headers: {
      authorization: h.standin.webhooks.hooks()[0]!.destination_headers.Authorization!,
      'content-type': 'application/json',
    },
    payload: v2Event({ resourceName: 'Company Vendors', resourceId: vendorId, ulid }),
  })
  t.equal(res.statusCode, 200)
  return ulid
}

const status = async (h: Harness, ulid: string) =>
  (await h.app.db.selectFrom('inbox_events').select('status').where('dedupe_key', '=', ulid).executeTakeFirst())?.status

const settled = async (h: Harness, ulid: string) => ['processed', 'skipped'].includes((await status(h, ulid)) ?? '')

/** Procore reads of one vendor: alone, or in a list asked for by id. */
const readsOf = (calls: readonly Call[], id: string) =>
  calls.filter((c) => {
    if (c.method !== 'GET') return false
    if (c.path === `/rest/v1.0/vendors/${id}`) return true
    const ids = (c.query.filters as Record<string, unknown> | undefined)?.id
    return c.path === '/rest/v1.0/vendors' && (Array.isArray(ids) ? ids.map(String).includes(id) : ids === id)
  }).length

/** Runs `work` holding the lock the company's Procore inbox drain takes before it reads (waiting for a run to end). */
async function holdingInboxLock(h: Harness, work: () => Promise<void>): Promise<void> {
  const lock = `inbox:${COMPANY}:procore`
  await h.app.db.connection().execute(async (conn) => {
    await sql`select pg_advisory_lock(hashtext(${lock}))`.execute(conn)
    try {
      await work()
    } finally {
      await sql`select pg_advisory_unlock(hashtext(${lock}))`.execute(conn)
    }
  })
}

const nameOf = async (h: Harness, id: string) =>
  (await getSnapshot(h.app.db, COMPANY, 'procore', 'vendor', id))?.fields.name

t.test('an isolated change to a record read a moment ago is read at once', async (t) => {
  // A window far longer than the test: whatever waited for it would still be waiting at the end.
  const h = await setUp(t, { INBOX_COALESCE_MS: '600000' })
  const a = h.standin.seed(COMPANY, 'vendors', { name: 'A' }).id
  const b = h.standin.seed(COMPANY, 'vendors', { name: 'B' }).id

  const a1 = await send(t, h, a)
  await until('the first change of A is processed', () => settled(h, a1))
  t.equal(readsOf(h.standin.calls, a), 1, 'A read once')

  // The read of A is over and settled its event: the next change of A is isolated, not part of a burst.
  h.standin.change(COMPANY, 'vendors', a, { name: 'A2' }, { emit: false })
  const a2 = await send(t, h, a)
  h.standin.change(COMPANY, 'vendors', b, { name: 'B2' }, { emit: false })
  const b1 = await send(t, h, b)
  await until('the change of B, sent after the second of A, is processed', () => settled(h, b1))
  t.equal(await status(h, a2), 'processed', "A's second change did not wait for the window")
  t.equal(readsOf(h.standin.calls, a), 2, 'A read again, once')
  t.equal(readsOf(h.standin.calls, b), 1)
  t.equal(await nameOf(h, a), 'A2')
  t.equal(await nameOf(h, b), 'B2')
})

t.test('a burst stored before the read of its record starts is settled by exactly one read', async (t) => {
  const h = await setUp(t, { INBOX_COALESCE_MS: '600000' })
  const a = h.standin.seed(COMPANY, 'vendors', { name: 'A' }).id
  const b = h.standin.seed(COMPANY, 'vendors', { name: 'B' }).id
  const a1 = await send(t, h, a)
  await until('the first change of A is processed', () => settled(h, a1))

  // The drain takes the company's inbox lock before it reads: holding it keeps every read from starting while
  // the burst arrives, without stopping the worker that remembers the read of A.
  const burst: string[] = []
  await holdingInboxLock(h, async () => {
    for (let i = 0; i < 12; i++) {
      h.standin.change(COMPANY, 'vendors', a, { name: `A burst ${i}` }, { emit: false })
      burst.push(await send(t, h, a))
    }
    burst.push(await send(t, h, b))
  })
  const quiet = burst.at(-1)!
  await until('the change of B, sent after the burst, is processed', () => settled(h, quiet))
  for (const ulid of burst) t.ok(await settled(h, ulid), `${ulid} settled`)
  t.equal(readsOf(h.standin.calls, a), 2, 'the first change, then one read for the 12 of the burst')
  t.equal(await nameOf(h, a), 'A burst 11')
})

t.test('an event stored while a read of its record is in flight gets a read of its own', async (t) => {
  const h = await setUp(t, { INBOX_COALESCE_MS: '200' })
  const a = h.standin.seed(COMPANY, 'vendors', { name: 'A' }).id
  // The first read of A is held by Procore long enough for a second event to arrive while it is in flight.
  h.standin.faults.push({ match: { method: 'GET', pathPrefix: `/rest/v1.0/vendors/${a}` }, delayMs: 1500 })
  h.standin.change(COMPANY, 'vendors', a, { name: 'A1' }, { emit: false })
  const a1 = await send(t, h, a)
  await until('the read of A has started', async () => readsOf(h.standin.calls, a) === 1)
  const a2 = await send(t, h, a)

  await holdingInboxLock(h, async () => {
    // Queued behind the run that is reading A, so granted once that run is over and before another can start.
    t.ok(await settled(h, a1), 'the first change of A is processed')
    t.equal(await nameOf(h, a), 'A1')
    t.notOk(await settled(h, a2), 'the event that came while that read was in flight is not taken as covered by it')
    // Its change lands in Procore only now: a read that started before the event arrived cannot have seen it.
    h.standin.change(COMPANY, 'vendors', a, { name: 'A2' }, { emit: false })
  })
  await until('the second change of A is processed', () => settled(h, a2))
  t.equal(readsOf(h.standin.calls, a), 2, 'a second read, for the event that came during the first')
  t.equal(await nameOf(h, a), 'A2')
})
