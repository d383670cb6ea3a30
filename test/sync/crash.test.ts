// Nothing is done twice. A create whose Procore call succeeded but whose commit never happened
// (the worker's database connection dies right after Procore answered: for our database the
// same as a crash) is rerun by the queue and creates nothing twice; an ERP create whose response
// is lost is replayed by its Idempotency-Key.
import pg from 'pg'
import t from 'tap'
import { syncHarness, until } from './fixtures/harness.js'

t.test('a crash during create-in-procore: the rerun creates nothing twice', async (t) => {
  const h = await syncHarness(t)
  const c = h.companyId
  const erpIds = ['Alpha Rebar', 'Beta Formwork', 'Gamma Scaffold', 'Delta Crane', 'Epsilon Survey'].map(
    (name) => h.erp.seed('vendors', { name }).id,
  )
  await h.refresh(['vendor'])
  const syncCalls = () =>
    h.procore.calls.filter((x) => x.method === 'PATCH' && x.path.startsWith('/rest/v1.0/vendors/sync')).length

  // Another session holds record_links in SHARE mode: reads go on, our link insert waits.
  const blocker = new pg.Client(h.databaseUrl)
  await blocker.connect()
  t.teardown(() => blocker.end())
  await blocker.query('begin')
  await blocker.query('lock table record_links in share mode')

  const start = await h.api(
    'POST',
    `/v1/companies/${c}/records/vendor/create-in-procore`,
    { erpIds },
    { 'idempotency-key': 'crash' },
  )
  t.equal(start.status, 202)
  await until('Procore answered', async () => syncCalls() === 1)
  const waiting = await until('commit blocked', async () => {
    const { rows } = await blocker.query<{ pid: number }>(
      'select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() ' +
        "and wait_event_type = 'Lock'",
    )
    return rows[0]?.pid
  })
  t.equal(h.procore.list(c, 'vendors').length, 5, 'Procore created the five records')
  // The "crash": the connection that was about to commit is gone.
  await blocker.query('select pg_terminate_backend($1)', [waiting])
  await blocker.query('rollback')

  const run = await h.waitRun(start.body.id)
  t.equal(run.status, 'succeeded', JSON.stringify(run))
  t.same(run.result.counts, { created: 5, refused: 0, failed: 0 })
  t.equal(syncCalls(), 2, 'the rerun sent the same batch again')
  const vendors = h.procore.list(c, 'vendors')
  t.equal(vendors.length, 5, 'still five records in Procore: none twice')
  t.same(vendors.map((v) => v.origin_id).sort(), [...erpIds].sort(), 'each keyed by its ERP id')
  const counts = (await h.api('GET', `/v1/companies/${c}/records/vendor`)).body.counts
  t.match(counts, { linked: 5, only_in_procore: 0, only_in_erp: 0 })
  const creates = await h.api('GET', `/v1/companies/${c}/audit?action=create`)
  t.equal(creates.body.items.length, 5, 'one audit entry per record')
})

t.test('a lost ERP create response: the retry with the same Idempotency-Key makes no second record', async (t) => {
  const h = await syncHarness(t)
  const c = h.companyId
  const ids = ['Zeta Drywall', 'Eta Glazing'].map((name) => h.procore.seed(c, 'vendors', { name }).id)
  await h.refresh(['vendor'])
  h.erp.faults.push({ match: { method: 'POST', pathPrefix: '/v1/vendors' }, dropResponseAfterCommit: true, times: 2 })

  const start = await h.api(
    'POST',
    `/v1/companies/${c}/records/vendor/create-in-erp`,
    { procoreIds: ids },
    { 'idempotency-key': 'lost' },
  )
  const run = await h.waitRun(start.body.id)
  t.same(run.result.counts, { created: 2, refused: 0, failed: 0 }, JSON.stringify(run.result))
  const stats = h.erp.stats()
  t.equal(stats.creates, 2, 'two records created in the ERP')
  t.equal(stats.records.vendors, 2)
  const posts = h.erp.calls.filter((x) => x.method === 'POST' && x.path === '/v1/vendors')
  t.ok(posts.length >= 4, `each lost response was retried (${posts.length} POSTs)`)
  t.same(
    [...new Set(posts.map((p) => p.idempotencyKey))].sort(),
    ids.map((id) => `erp-sync:create:${c}:vendor:${id}:1`).sort(),
    'one key per Procore record',
  )
  for (const [i, id] of ids.entries()) t.equal(h.procore.get(c, 'vendors', id)?.origin_id, run.result.items[i].targetId)
})
