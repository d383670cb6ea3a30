// T3: a storm of 500 events for 100 resources, each delivered 1–5 times in shuffled order, 20 at a
// time over real HTTP, while the records keep changing in Procore. Afterwards every snapshot equals
// the stand-in's state, every event took effect once, and each coalesced burst cost one read.
import { sql } from 'kysely'
import t from 'tap'
import { request } from 'undici'
import { entity } from '../../src/sync/registry.js'
import {
  COMPANY,
  connectServiceAccount,
  harness,
  inboxSettled,
  installWebhook,
  newUlid,
  until,
  v2Event,
} from './fixtures/harness.js'

/** Seeded, so a failure can be replayed. */
function mulberry32(seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

/** jsonb reorders keys: compare with sorted keys. */
const canonical = (o: Record<string, unknown>): string =>
  JSON.stringify(
    Object.keys(o)
      .sort()
      .map((k) => [k, o[k]]),
  )

const SEED = Number(process.env.STORM_SEED ?? 20250301)
const RESOURCES = 100
const EVENTS = 500
const ROUNDS = 5
const PARALLEL = 20

// Bounded, but generous: on a loaded 2-core machine a transient database error costs a job backoff.
t.setTimeout(300_000)

t.test('T3: duplicate and reorder storm', async (t) => {
  const random = mulberry32(SEED)
  const h = await harness(t, { listen: true, worker: true })
  await connectServiceAccount(h)
  await installWebhook(h, { payloadVersion: 'v2.0' })
  const auth = h.standin.webhooks.hooks()[0]!.destination_headers.Authorization!
  const vendors = Array.from(
    { length: RESOURCES },
    (_, i) => h.standin.seed(COMPANY, 'vendors', { name: `Storm ${i}`, email_address: `storm${i}@example.com` }).id,
  )
  const deleted = new Set<string>()

  // 500 events, five per resource, dealt into rounds; a tenth of the resources end deleted.
  const events = vendors.flatMap((id, r) =>
    Array.from({ length: EVENTS / RESOURCES }, (_, k) => ({ id, r, k, ulid: newUlid() })),
  )
  const rounds: Array<typeof events> = Array.from({ length: ROUNDS }, () => [])
  for (const e of events) rounds[e.k % ROUNDS]!.push(e)

  const deliver = async (body: string) => {
    const res = await request(`${h.baseUrl}/webhooks/procore`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/json' },
      body,
    })
    await res.body.text()
    return res.statusCode
  }
  let deliveries = 0
  const statuses: number[] = []
  let carried: string[] = []
  for (const round of rounds) {
    // Changes happen in Procore (no webhook from the stand-in: we are the sender here)...
    const bodies: string[] = [...carried]
    for (const e of round) {
      const last = e.k === EVENTS / RESOURCES - 1
      const eventType = last && e.r % 10 === 0 ? 'delete' : 'update'
      if (eventType === 'delete') {
        h.standin.remove(COMPANY, 'vendors', e.id, { emit: false })
        deleted.add(e.id)
      } else {
        h.standin.change(
          COMPANY,
          'vendors',
          e.id,
          { name: `Storm ${e.r} v${e.k}`, business_phone: `555-${e.r}-${e.k}` },
          { emit: false },
        )
      }
      const body = v2Event({ resourceName: 'Company Vendors', resourceId: e.id, ulid: e.ulid, eventType })
      const copies = 1 + Math.floor(random() * 5)
      for (let c = 0; c < copies; c++) bodies.push(body)
    }
    // ...and their deliveries arrive shuffled, some copies only in the next round.
    for (let i = bodies.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1))
      ;[bodies[i], bodies[j]] = [bodies[j]!, bodies[i]!]
    }
    const late = Math.floor(bodies.length * 0.1)
    carried = bodies.splice(0, late)
    for (let i = 0; i < bodies.length; i += PARALLEL) {
      statuses.push(...(await Promise.all(bodies.slice(i, i + PARALLEL).map(deliver))))
    }
    deliveries += bodies.length
  }
  statuses.push(...(await Promise.all(carried.map(deliver))))
  deliveries += carried.length

  t.ok(
    statuses.every((s) => s === 200),
    `all ${deliveries} deliveries acknowledged`,
  )
  let polls = 0
  await until(
    'inbox drained',
    async () => {
      // On a slow run, say what is still waiting (a failing job's error shows up here).
      if (++polls % 100 === 0) {
        const { rows: jobs } = await sql<{
          attempts: number
          last_error: string | null
          run_at: Date
        }>`select attempts, last_error, run_at from graphile_worker.jobs`.execute(h.app.db)
        t.comment(
          `still waiting: ${jobs.length} jobs; errors: ` +
            `${[...new Set(jobs.map((j) => j.last_error).filter(Boolean))].join(' | ').slice(0, 500)}`,
        )
      }
      return inboxSettled(h)
    },
    200,
  )

  const rows = await h.app.db
    .selectFrom('inbox_events')
    .select(['resource_id', 'status', 'attempts', 'processed_at'])
    .where('company_id', '=', COMPANY)
    .execute()
  t.equal(rows.length, EVENTS, 'each distinct event stored once')
  t.equal(Math.max(...rows.map((r) => r.attempts)), 1, 'effects per event: at most one')
  t.ok(
    rows.every((r) => r.status === 'processed' || r.status === 'skipped'),
    'every event settled',
  )

  // Every snapshot equals Procore's state.
  const snapshots = await h.app.db
    .selectFrom('record_snapshots')
    .selectAll()
    .where('company_id', '=', COMPANY)
    .where('type', '=', 'vendor')
    .execute()
  let differing = 0
  for (const id of vendors) {
    const snap = snapshots.find((s) => s.external_id === id)
    const truth = h.standin.get(COMPANY, 'vendors', id)
    if (!truth) {
      if (snap && snap.deleted_at === null) differing++
      continue
    }
    const expected = entity('vendor').procore.from(truth).fields
    if (!snap || snap.deleted_at !== null || canonical(snap.fields) !== canonical(expected)) differing++
  }
  t.equal(differing, 0, 'resources whose snapshot differs from Procore: 0')
  t.equal(deleted.size, RESOURCES / 10)

  // One read per coalesced burst: a burst is the events one job settled together.
  const bursts = new Map<string, Set<number>>()
  for (const r of rows) {
    const set = bursts.get(r.resource_id!) ?? new Set<number>()
    set.add(r.processed_at!.getTime())
    bursts.set(r.resource_id!, set)
  }
  const reads = new Map<string, number>()
  for (const c of h.standin.calls) {
    const m = /^\/rest\/v1\.0\/vendors\/(\d+)$/.exec(c.path)
    if (c.method === 'GET' && m) reads.set(m[1]!, (reads.get(m[1]!) ?? 0) + 1)
  }
  const overRead = vendors.filter((id) => (reads.get(id) ?? 0) > (bursts.get(id)?.size ?? 0))
  t.same(overRead, [], 'no resource was read more than once per burst')
  const totalReads = [...reads.values()].reduce((a, b) => a + b, 0)
  t.ok(totalReads < EVENTS, `coalescing: ${totalReads} reads for ${EVENTS} events and ${deliveries} deliveries`)
  // A job scheduled while an earlier one settled its events finds nothing left to do; let those finish.
  await until(
    'queue empty',
    async () => {
      const {
        rows: [jobs],
      } = await sql<{ n: string }>`select count(*) as n from graphile_worker._private_jobs`.execute(h.app.db)
      return Number(jobs?.n) === 0
    },
    200,
  )
  const readsNow = h.standin.calls.filter(
    (c) => c.method === 'GET' && /^\/rest\/v1\.0\/vendors\/\d+$/.test(c.path),
  ).length
  t.equal(readsNow, totalReads, 'and they read nothing more')
  t.comment(`seed ${SEED}: ${deliveries} deliveries, ${EVENTS} events, ${totalReads} Procore reads`)
})
