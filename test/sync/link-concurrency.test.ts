// Links and unlinks of one company and type arriving together: none waits for another's commit (they
// join the origins job that is due instead of each updating its row), every record still gets exactly
// one origin write, and a link whose transaction commits while that job starts is written by it.
import { setTimeout as sleep } from 'node:timers/promises'
import { sql } from 'kysely'
import pg from 'pg'
import t, { type Test } from 'tap'
import { transaction, type Tx } from '../../src/db/database.js'
import type { JobInfo } from '../../src/jobs/task.js'
import { system } from '../../src/sync/audit.js'
import { endLinks, insertLinks, originsTask } from '../../src/sync/links.js'
import { entity } from '../../src/sync/registry.js'
import { upsertSnapshots } from '../../src/sync/snapshots.js'
import { build, createCompany } from '../helpers/app.js'
import { startProcoreStandin } from '../standins/procore/index.js'
import { CLIENT, syncHarness } from './fixtures/harness.js'

const actor = system('test')

/** A transaction left open after `work` (its commit waits for `commit()`), with its backend's pid. */
async function openTransaction(
  t: Test,
  open: (body: (tx: Tx) => Promise<void>) => Promise<void>,
  work: (tx: Tx) => Promise<unknown>,
): Promise<{ pid: number; commit(): Promise<void> }> {
  let release!: () => void
  const gate = new Promise<void>((resolve) => (release = resolve))
  let opened!: (pid: number) => void
  let failed!: (error: unknown) => void
  const pid = new Promise<number>((resolve, reject) => {
    opened = resolve
    failed = reject
  })
  const done = open(async (tx) => {
    await work(tx)
    const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(tx)
    opened(rows[0]!.pid)
    await gate
  })
  // A failure before the gate must not leave the test waiting for the pid, nor one after it the transaction open.
  done.catch(failed)
  t.teardown(async () => {
    release()
    await done.catch(() => {})
  })
  return {
    pid: await pid,
    commit: async () => {
      release()
      await done
    },
  }
}

/**
 * Watches, until `settled` settles, for a backend waiting on a lock that backend `pid` holds; true as
 * soon as one does (then `settled` may never settle on its own). On a connection of its own: the
 * app's pool may be taken up by the very requests that wait.
 */
async function waitsOn(databaseUrl: string, pid: number, settled: Promise<unknown>): Promise<boolean> {
  let done = false
  void settled.then(
    () => (done = true),
    () => (done = true),
  )
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  try {
    while (!done) {
      const { rows } = await client.query<{ n: number }>(
        'select count(*)::int as n from pg_stat_activity where $1 = any(pg_blocking_pids(pid))',
        [pid],
      )
      if (rows[0]!.n > 0) return true
      await sleep(20)
    }
    return false
  } finally {
    await client.end()
  }
}

t.test('links and unlinks of one company and type do not wait on each other; one Procore write each', async (t) => {
  const h = await syncHarness(t)
  const c = h.companyId
  const pairs = Array.from({ length: 12 }, (_, i) => ({
    p: h.procore.seed(c, 'vendors', { name: `Crowd ${i}`, email_address: `ap${i}@crowd.example` }),
    e: h.erp.seed('vendors', { code: `CROWD${i}`, name: `Crowd ${i}`, email: `ap${i}@crowd.example` }),
  }))
  await h.refresh(['vendor'])
  await h.quiet()
  const mark = h.procore.calls.length
  /** Items of the sync calls since `from` that name Procore record `id`: one per origin write. */
  const writesOf = (id: string, from: number) =>
    h.procore.calls
      .slice(from)
      .filter((x) => x.method !== 'GET' && x.path === '/rest/v1.0/vendors/sync')
      .flatMap((x) => (x.body as { updates?: Array<{ id?: unknown }> } | undefined)?.updates ?? [])
      .filter((u) => String(u.id) === id).length
  const [first, ...rest] = pairs

  // One link's transaction is held open (as a slow request's would be) while the others are made.
  const open = await openTransaction(
    t,
    (body) => transaction(h.app.db, body),
    (tx) => insertLinks(tx, c, 'vendor', [{ procoreId: first!.p.id, erpId: first!.e.id, detail: 'held open' }], actor),
  )
  const posts = Promise.all(
    rest.map(({ p, e }, i) =>
      h.api(
        'POST',
        `/v1/companies/${c}/links`,
        { type: 'vendor', procoreId: p.id, erpId: e.id },
        { 'idempotency-key': `crowd-${i}` },
      ),
    ),
  )
  t.notOk(await waitsOn(h.databaseUrl, open.pid, posts), 'no link waits for the commit of another')
  await open.commit()
  const made = await posts
  for (const res of made) t.match(res, { status: 201, body: { origin: 'pending' } })
  const ids = [
    ...made.map((res) => res.body.id as string),
    (await h.api('GET', `/v1/companies/${c}/links?type=vendor&limit=50`)).body.items.find(
      (l: { procoreId: string }) => l.procoreId === first!.p.id,
    ).id as string,
  ]
  const links = await Promise.all(ids.map((id) => h.settled(id)))
  await h.quiet()
  for (const link of links) t.match(link, { origin: 'set', discrepancyId: null })
  for (const { p, e } of pairs) {
    t.equal(h.procore.get(c, 'vendors', p.id)?.origin_id, e.id, `Procore ${p.id} carries its ERP id`)
    t.equal(writesOf(p.id, mark), 1, `Procore ${p.id} written once`)
  }

  // Unlinks likewise: one held open, the others over HTTP with their ETags.
  const unlinkMark = h.procore.calls.length
  const [held, ...others] = links
  const openUnlink = await openTransaction(
    t,
    (body) => transaction(h.app.db, body),
    (tx) => endLinks(tx, c, 'vendor', [{ id: held.id }], actor, 'held open'),
  )
  const deletes = Promise.all(
    others.map(async (link) => {
      const etag = String((await h.api('GET', `/v1/companies/${c}/links/${link.id}`)).headers.etag)
      return h.api('DELETE', `/v1/companies/${c}/links/${link.id}`, undefined, { 'if-match': etag })
    }),
  )
  t.notOk(await waitsOn(h.databaseUrl, openUnlink.pid, deletes), 'no unlink waits for the commit of another')
  await openUnlink.commit()
  for (const res of await deletes) t.match(res, { status: 200, body: { active: false, origin: 'clearing' } })
  for (const link of links) t.match(await h.settled(link.id), { origin: 'cleared' })
  await h.quiet()
  for (const { p } of pairs) {
    t.equal(h.procore.get(c, 'vendors', p.id)?.origin_id, null, `Procore ${p.id} origin cleared`)
    t.equal(writesOf(p.id, unlinkMark), 1, `Procore ${p.id} cleared once`)
  }
})

t.test('a link whose transaction commits while the origins job starts is written by that run', async (t) => {
  const procore = await startProcoreStandin({ clientId: CLIENT.id, clientSecret: CLIENT.secret })
  t.teardown(() => procore.close())
  // No worker: the test plays it, so the job starts exactly while the link's transaction is open.
  const h = await build(t, {
    WORKER_ENABLED: 'false',
    PROCORE_API_URL: procore.url,
    PROCORE_LOGIN_URL: procore.url,
    PROCORE_CLIENT_ID: CLIENT.id,
    PROCORE_CLIENT_SECRET: CLIENT.secret,
  })
  const db = h.app.db
  const c = '7400001'
  procore.addCompany(c, 'Joiners')
  await createCompany(h.app, h.adminKey, c)
  const connected = await h.app.inject({
    method: 'POST',
    url: `/v1/companies/${c}/procore/connect`,
    headers: h.auth(h.adminKey),
    payload: { mode: 'client_credentials', clientId: CLIENT.id, clientSecret: CLIENT.secret },
  })
  t.equal(connected.statusCode, 200, connected.body)
  const ps = [0, 1].map((i) => procore.seed(c, 'vendors', { name: `Joiner ${i}` }))
  const es = [0, 1].map((i) => ({
    id: `JV00000${i}`,
    code: `JOIN${i}`,
    name: `Joiner ${i}`,
    updated_at: '2024-01-01T00:00:00Z',
  }))
  await upsertSnapshots(
    db,
    c,
    'procore',
    'vendor',
    ps.map((raw) => ({ ...entity('vendor').procore.from(raw), raw })),
  )
  await upsertSnapshots(
    db,
    c,
    'erp',
    'vendor',
    es.map((raw) => ({ ...entity('vendor').erp.from(raw), raw })),
  )
  const key = originsTask.jobKey!({ companyId: c, type: 'vendor' })
  const jobOf = async () =>
    (
      await sql<{ id: string; revision: number; locked_at: Date | null }>`select id, revision, locked_at
        from graphile_worker._private_jobs where key = ${key}`.execute(db)
    ).rows

  // The first link queues the origins job: due, not started.
  const firstLink = await h.app.inject({
    method: 'POST',
    url: `/v1/companies/${c}/links`,
    headers: { ...h.auth(h.adminKey), 'idempotency-key': 'joiner-0' },
    payload: { type: 'vendor', procoreId: ps[0]!.id, erpId: es[0]!.id },
  })
  t.equal(firstLink.statusCode, 201, firstLink.body)
  const [due] = await jobOf()
  t.ok(due && due.locked_at === null, 'one origins job, due and not started')

  // The second link joins that job (its transaction, outside `transaction`, joins at once) and stays open.
  const open = await openTransaction(
    t,
    (body) => db.transaction().execute(body),
    (tx) => insertLinks(tx, c, 'vendor', [{ procoreId: ps[1]!.id, erpId: es[1]!.id, detail: 'joins' }], actor),
  )

  // The worker takes the job now, before that link commits (NOWAIT: joining left the job's row unlocked), and runs it.
  await sql`update graphile_worker._private_jobs set locked_at = now(), locked_by = 'test', attempts = attempts + 1
    where id = (select id from graphile_worker._private_jobs where id = ${due!.id} for update nowait)`.execute(db)
  const jobInfo: JobInfo = { id: due!.id, attempt: 1, maxAttempts: 12, lastAttempt: false }
  const run = originsTask.run(h.app.ctx, { companyId: c, type: 'vendor' }, jobInfo)
  t.ok(await waitsOn(h.databaseUrl, open.pid, run), 'the run waits for the transaction that joined it')
  await open.commit()
  await run
  await sql`delete from graphile_worker._private_jobs where id = ${due!.id}`.execute(db)

  const links = await db
    .selectFrom('record_links')
    .select(['procore_id', 'origin_state'])
    .where('company_id', '=', c)
    .execute()
  t.same(
    links.map((l) => [l.procore_id, l.origin_state]).sort(),
    [
      [ps[0]!.id, 'set'],
      [ps[1]!.id, 'set'],
    ].sort(),
    'both links settled by that one run',
  )
  t.equal(procore.get(c, 'vendors', ps[1]!.id)?.origin_id, es[1]!.id, 'the joined link’s origin is written')
  t.same(await jobOf(), [], 'no other run was needed')
})
