// The SQL side of the sync core, against snapshots written through upsertSnapshots (no
// connector involved): statuses and counts, search, suggestions with scores and reasons,
// linking and its conflicts, discrepancies from snapshots, settings validation, audit.
import t from 'tap'
import { build, createCompany } from '../helpers/app.js'
import { entity, type RecordType } from '../../src/sync/registry.js'
import { upsertSnapshots } from '../../src/sync/snapshots.js'
import { runEvaluation } from '../../src/sync/evaluate.js'
import { originsTask } from '../../src/sync/links.js'
import type { JobInfo } from '../../src/jobs/task.js'

const jobInfo: JobInfo = { id: 'test', attempt: 1, maxAttempts: 1, lastAttempt: true }

const COMPANY = '7300001'

async function seed(
  db: Parameters<typeof upsertSnapshots>[0],
  side: 'procore' | 'erp',
  type: RecordType,
  records: Array<Record<string, unknown>>,
) {
  return upsertSnapshots(
    db,
    COMPANY,
    side,
    type,
    records.map((raw) => ({ ...entity(type)[side].from(raw), raw })),
  )
}

t.test('records, statuses, suggestions and links from snapshots', async (t) => {
  const h = await build(t, { WORKER_ENABLED: 'false' })
  await createCompany(h.app, h.adminKey, COMPANY, 'sage300')
  const admin = h.auth(h.adminKey)
  const db = h.app.db

  await seed(db, 'procore', 'vendor', [
    { id: '101', name: 'ACME Concrete Inc', email_address: 'ap@acme.example', updated_at: '2024-01-01T00:00:00Z' },
    {
      id: '102',
      name: 'Bright Electric LLC',
      email_address: null,
      business_phone: '555-0100',
      updated_at: '2024-01-01T00:00:00Z',
    },
    { id: '103', name: 'Lonely Roofing', updated_at: '2024-01-01T00:00:00Z' },
  ])
  await seed(db, 'erp', 'vendor', [
    {
      id: 'V000001',
      code: 'ACMECO01',
      name: 'Acme Concrete, Inc.',
      email: 'AP@acme.example',
      tax_id: '12-3456789',
      updated_at: '2024-01-01T00:00:00Z',
    },
    {
      id: 'V000002',
      code: 'BRIGHT01',
      name: 'Brite Electric',
      phone: '(555) 0100',
      updated_at: '2024-01-01T00:00:00Z',
    },
    { id: 'V000003', code: 'OTHER01', name: 'Somebody Else', updated_at: '2024-01-01T00:00:00Z' },
  ])

  const list = await h.app.inject({ method: 'GET', url: `/v1/companies/${COMPANY}/records/vendor`, headers: admin })
  t.equal(list.statusCode, 200, list.body)
  t.same(list.json().counts, { linked: 0, discrepancy: 0, only_in_procore: 3, only_in_erp: 3, ignored: 0, failed: 0 })
  t.equal(list.json().items.length, 6)

  const q = await h.app.inject({ method: 'GET', url: `/v1/companies/${COMPANY}/records/vendor?q=acme`, headers: admin })
  t.same(
    q
      .json()
      .items.map((i: any) => i.key)
      .sort(),
    ['erp:V000001', 'procore:101'],
  )

  const page1 = await h.app.inject({
    method: 'GET',
    url: `/v1/companies/${COMPANY}/records/vendor?limit=4`,
    headers: admin,
  })
  t.equal(page1.json().items.length, 4)
  const page2 = await h.app.inject({
    method: 'GET',
    url: `/v1/companies/${COMPANY}/records/vendor?limit=4&cursor=${page1.json().next}`,
    headers: admin,
  })
  t.equal(page2.json().items.length, 2)
  t.equal(page2.json().next, null)
  t.same(new Set([...page1.json().items, ...page2.json().items].map((i: any) => i.key)).size, 6, 'pages do not overlap')

  const s = await h.app.inject({
    method: 'GET',
    url: `/v1/companies/${COMPANY}/records/vendor/procore/101/suggestions`,
    headers: admin,
  })
  t.equal(s.statusCode, 200, s.body)
  const [best] = s.json().items
  t.equal(best.id, 'V000001')
  t.ok(best.strong)
  t.ok(best.reasons.includes('same e-mail'), best.reasons.join())
  t.ok(best.reasons.includes('same name'), best.reasons.join())

  const s2 = await h.app.inject({
    method: 'GET',
    url: `/v1/companies/${COMPANY}/records/vendor/procore/102/suggestions`,
    headers: admin,
  })
  const [b2] = s2.json().items
  t.equal(b2.id, 'V000002')
  t.ok(b2.reasons.includes('same phone'), b2.reasons.join())
  t.ok(
    b2.reasons.some((r: string) => /^name 0\.\d\d similar$/.test(r)),
    b2.reasons.join(),
  )
  t.notOk(b2.strong)

  const link = await h.app.inject({
    method: 'POST',
    url: `/v1/companies/${COMPANY}/links`,
    headers: { ...admin, 'idempotency-key': 'l1' },
    payload: { type: 'vendor', procoreId: '101', erpId: 'V000001' },
  })
  t.equal(link.statusCode, 201, link.body)
  t.equal(link.json().origin, 'pending', 'not connected to Procore: the origin write waits for the job')
  t.equal(link.json().discrepancyId, null, 'the pair is compared by the follow-up job, not in the request')
  // The follow-up job (the worker is off here): nothing to write without Procore, the pair is compared.
  await originsTask.run(h.app.ctx, { companyId: COMPANY, type: 'vendor' }, jobInfo)
  const followed = await h.app.inject({
    method: 'GET',
    url: `/v1/companies/${COMPANY}/links/${link.json().id}`,
    headers: admin,
  })
  t.equal(followed.json().origin, 'pending', 'still waiting for a Procore connection')
  t.ok(followed.json().discrepancyId, 'code differs until origin_code is written')

  const again = await h.app.inject({
    method: 'POST',
    url: `/v1/companies/${COMPANY}/links`,
    headers: { ...admin, 'idempotency-key': 'l2' },
    payload: { type: 'vendor', procoreId: '101', erpId: 'V000003' },
  })
  t.equal(again.statusCode, 409)
  t.match(again.json(), { code: 'already_linked', existingLinkId: link.json().id })

  const missing = await h.app.inject({
    method: 'POST',
    url: `/v1/companies/${COMPANY}/links`,
    headers: { ...admin, 'idempotency-key': 'l3' },
    payload: { type: 'vendor', procoreId: '999', erpId: 'V000003' },
  })
  t.equal(missing.statusCode, 422)
  t.match(missing.json().errors, [{ pointer: '/body/procoreId' }])

  const after = await h.app.inject({ method: 'GET', url: `/v1/companies/${COMPANY}/records/vendor`, headers: admin })
  t.same(after.json().counts, { linked: 0, discrepancy: 1, only_in_procore: 2, only_in_erp: 2, ignored: 0, failed: 0 })
  const s3 = await h.app.inject({
    method: 'GET',
    url: `/v1/companies/${COMPANY}/records/vendor/procore/102/suggestions`,
    headers: admin,
  })
  t.notOk(
    s3.json().items.some((i: any) => i.id === 'V000001'),
    'linked records are no longer suggested',
  )

  const d = await h.app.inject({
    method: 'GET',
    url: `/v1/companies/${COMPANY}/discrepancies/${followed.json().discrepancyId}`,
    headers: admin,
  })
  t.equal(d.statusCode, 200)
  // The vendor code is Procore's origin_code, which the link itself writes: never a discrepancy.
  t.same(d.json().fields, [{ field: 'name', label: 'Name', procore: 'ACME Concrete Inc', erp: 'Acme Concrete, Inc.' }])

  // Procore's record now carries the ERP code (as after the origin write) and the same name: the discrepancy closes.
  await seed(db, 'procore', 'vendor', [
    {
      id: '101',
      name: 'Acme Concrete, Inc.',
      email_address: 'ap@acme.example',
      origin_id: 'V000001',
      origin_code: 'ACMECO01',
      updated_at: '2024-01-02T00:00:00Z',
    },
  ])
  await runEvaluation(h.app.ctx, COMPANY, 'vendor')
  const closed = await h.app.inject({
    method: 'GET',
    url: `/v1/companies/${COMPANY}/discrepancies/${followed.json().discrepancyId}`,
    headers: admin,
  })
  t.match(closed.json(), { status: 'resolved', resolvedBy: 'system:evaluate' })

  const ignore = await h.app.inject({
    method: 'POST',
    url: `/v1/companies/${COMPANY}/records/vendor/procore/103/ignore`,
    headers: admin,
  })
  t.equal(ignore.statusCode, 200, ignore.body)
  t.equal(ignore.json().status, 'ignored')
  const counts = (
    await h.app.inject({ method: 'GET', url: `/v1/companies/${COMPANY}/records/vendor`, headers: admin })
  ).json().counts
  t.same(counts, { linked: 1, discrepancy: 0, only_in_procore: 1, only_in_erp: 2, ignored: 1, failed: 0 })

  const audit = await h.app.inject({
    method: 'GET',
    url: `/v1/companies/${COMPANY}/audit?recordId=101`,
    headers: admin,
  })
  t.same(
    audit.json().items.map((e: any) => e.action),
    ['ignore', 'link'].filter((a) => a !== 'ignore'),
    'history of 101',
  )
  const all = await h.app.inject({ method: 'GET', url: `/v1/companies/${COMPANY}/audit`, headers: admin })
  t.same(
    all.json().items.map((e: any) => e.action),
    ['ignore', 'link'],
  )
})

t.test('sync settings: validation names the wrong field; ETag guards changes; changes are audited', async (t) => {
  const h = await build(t, { WORKER_ENABLED: 'false' })
  await createCompany(h.app, h.adminKey, COMPANY)
  const admin = h.auth(h.adminKey)
  const get = await h.app.inject({ method: 'GET', url: `/v1/companies/${COMPANY}/sync-settings`, headers: admin })
  t.equal(get.statusCode, 200)
  t.equal(get.headers.etag, '"0"')
  t.same(get.json().types.department, {
    direction: 'both',
    fieldOwners: { name: 'manual' },
    autoLink: false,
    autoCreate: false,
  })

  const bad = await h.app.inject({
    method: 'PUT',
    url: `/v1/companies/${COMPANY}/sync-settings`,
    headers: { ...admin, 'if-match': '"0"' },
    payload: { types: { vendor: { direction: 'procore_to_erp', fieldOwners: { name: 'erp' } } } },
  })
  t.equal(bad.statusCode, 400)
  t.match(bad.json().errors, [
    { pointer: '/body/types/vendor/fieldOwners/name', message: /owner erp needs direction erp_to_procore or both/ },
  ])

  const unknown = await h.app.inject({
    method: 'PUT',
    url: `/v1/companies/${COMPANY}/sync-settings`,
    headers: { ...admin, 'if-match': '"0"' },
    payload: { types: { vendor: { direction: 'both', fieldOwners: { taxId: 'erp' } } } },
  })
  t.equal(unknown.statusCode, 400, 'taxId is match-only: no owner')

  const noMatch = await h.app.inject({
    method: 'PUT',
    url: `/v1/companies/${COMPANY}/sync-settings`,
    headers: admin,
    payload: { types: { vendor: { direction: 'both' } } },
  })
  t.equal(noMatch.statusCode, 428)

  const ok = await h.app.inject({
    method: 'PUT',
    url: `/v1/companies/${COMPANY}/sync-settings`,
    headers: { ...admin, 'if-match': '"0"' },
    payload: { types: { department: { direction: 'both', fieldOwners: { name: 'erp' }, autoLink: true } } },
  })
  t.equal(ok.statusCode, 200, ok.body)
  t.equal(ok.headers.etag, '"1"')
  t.same(ok.json().types.department, {
    direction: 'both',
    fieldOwners: { name: 'erp' },
    autoLink: true,
    autoCreate: false,
  })

  const stale = await h.app.inject({
    method: 'PUT',
    url: `/v1/companies/${COMPANY}/sync-settings`,
    headers: { ...admin, 'if-match': '"0"' },
    payload: { types: { vendor: { direction: 'off' } } },
  })
  t.equal(stale.statusCode, 412)

  const operator = await h.key('operator', [COMPANY])
  const forbidden = await h.app.inject({
    method: 'PUT',
    url: `/v1/companies/${COMPANY}/sync-settings`,
    headers: { ...h.auth(operator), 'if-match': '"1"' },
    payload: { types: { vendor: { direction: 'off' } } },
  })
  t.equal(forbidden.statusCode, 403, 'settings are for admins')

  const audit = await h.app.inject({
    method: 'GET',
    url: `/v1/companies/${COMPANY}/audit?action=settings`,
    headers: admin,
  })
  t.match(audit.json().items, [
    {
      action: 'settings',
      type: 'department',
      before: { fieldOwners: { name: 'manual' } },
      after: { fieldOwners: { name: 'erp' } },
    },
  ])
})

t.test('name matching for whole companies finds exactly the pairs a brute-force comparison finds', async (t) => {
  const h = await build(t, { WORKER_ENABLED: 'false' })
  await createCompany(h.app, h.adminKey, COMPANY)
  const db = h.app.db
  // Names from a few syllables, so that many pairs are near each other at every threshold.
  let state = 7
  const random = () => (state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0) / 2 ** 32
  const syllables = ['an', 'ber', 'cor', 'dal', 'en', 'fitz', 'gar', 'hol', 'is', 'mor', 'nor', 'ros']
  const word = () =>
    Array.from({ length: 2 + Math.floor(random() * 2) }, () => syllables[Math.floor(random() * syllables.length)]).join(
      '',
    )
  const name = () =>
    `${word()} ${random() < 0.5 ? word() : ''} ${['Concrete', 'Steel', 'Glass'][Math.floor(random() * 3)]}`
  const names = (n: number, prefix: string) =>
    Array.from({ length: n }, (_v, i) => ({ id: `${prefix}${i}`, name: name(), updated_at: '2024-01-01T00:00:00Z' }))
  await seed(db, 'procore', 'vendor', names(250, '5'))
  await seed(db, 'erp', 'vendor', names(250, 'V'))

  const { scorePairs, planBulkLink } = await import('../../src/sync/suggestions.js')
  const { sql } = await import('kysely')
  for (const threshold of [0.5, 0.7, 0.85]) {
    // Sources and candidates that an exact key (the same normalised name) pairs are left to that key.
    const { rows } = await sql<{ p: string; e: string; exact: boolean }>`
      with p as (select external_id, value from record_keys
                 where company_id = ${COMPANY} and side = 'procore' and key = 'name'),
           e as (select external_id, value from record_keys
                 where company_id = ${COMPANY} and side = 'erp' and key = 'name'),
           exact as (select p.external_id as p, e.external_id as e from p join e using (value))
      select p.external_id as p, e.external_id as e, p.value = e.value as exact from p, e
      where similarity(p.value, e.value) >= ${threshold}
        and (p.value = e.value
             or (p.external_id not in (select p from exact) and e.external_id not in (select e from exact)))`.execute(
      db,
    )
    const exact = new Set(rows.filter((r) => r.exact).map((r) => `${r.p}|${r.e}`))
    const expected = rows
      .filter((r) => !r.exact)
      .map((r) => `${r.p}|${r.e}`)
      .sort()
    const found = await scorePairs(db, COMPANY, 'vendor', {
      sourceSide: 'procore',
      candidates: 'unlinked',
      fuzzy: { mode: 'prefix', threshold },
      perSource: 1000,
    })
    const fuzzy = found
      .map((c) => `${c.sourceId}|${c.candidateId}`)
      .filter((k) => !exact.has(k))
      .sort()
    t.ok(expected.length > 0, `threshold ${threshold}: ${expected.length} pairs to find`)
    t.same(fuzzy, expected, `threshold ${threshold}: the prefix, length and position filters lose no pair`)
  }

  const bounded = await planBulkLink(db, COMPANY, 'vendor', 0.6, { maxNameJoinRows: 10 })
  t.match(
    bounded.nameMatchingSkipped,
    /name similarity was left out: .* candidate rows \(the limit is 10\); pairs were linked by exact keys only/,
  )
  t.ok(
    bounded.unambiguous.every((p) => p.reasons.includes('same name')),
    'only exact keys were used',
  )
  const full = await planBulkLink(db, COMPANY, 'vendor', 0.6)
  t.equal(full.nameMatchingSkipped, null)
  t.ok(full.unambiguous.length > bounded.unambiguous.length, 'with name similarity, more pairs qualify')
})

t.test(
  'a change marked by a transaction that commits while the evaluation works is evaluated in the next pass, not lost',
  async (t) => {
    const h = await build(t, { WORKER_ENABLED: 'false' })
    await createCompany(h.app, h.adminKey, COMPANY)
    const db = h.app.db
    const { sql } = await import('kysely')
    const { insertLinks } = await import('../../src/sync/links.js')
    await seed(db, 'procore', 'vendor', [{ id: '301', name: 'Early Paving', updated_at: '2024-01-01T00:00:00Z' }])
    await seed(db, 'erp', 'vendor', [
      { id: 'V301', code: 'EARLY', name: 'Early Paving', updated_at: '2024-01-01T00:00:00Z' },
    ])
    const {
      inserted: [link],
    } = await db
      .transaction()
      .execute((tx) =>
        insertLinks(tx, COMPANY, 'vendor', [{ procoreId: '301', erpId: 'V301', detail: 'test' }], { id: 'test' }),
      )
    await runEvaluation(h.app.ctx, COMPANY, 'vendor')
    const pending = () =>
      db.selectFrom('sync_dirty').select('external_id').where('company_id', '=', COMPANY).orderBy('seq').execute()
    const gate = () => {
      let open!: () => void
      const closed = new Promise<void>((resolve) => {
        open = resolve
      })
      return { open, closed }
    }

    // A writer takes its mark's number first and commits only later (a long refresh transaction).
    const lateMarked = gate()
    const lateCommit = gate()
    const late = db.transaction().execute(async (tx) => {
      await tx
        .insertInto('sync_dirty')
        .values({ company_id: COMPANY, type: 'vendor', side: 'procore', external_id: 'late' })
        .execute()
      lateMarked.open()
      await lateCommit.closed
    })
    await lateMarked.closed
    // A later mark, committed at once, for the linked record.
    await db
      .insertInto('sync_dirty')
      .values({ company_id: COMPANY, type: 'vendor', side: 'erp', external_id: 'V301' })
      .execute()

    // Hold the link, so that the evaluation stops between reading its marks and deleting them.
    const linkHeld = gate()
    const linkRelease = gate()
    const holder = db.transaction().execute(async (tx) => {
      await tx.selectFrom('record_links').select('id').where('id', '=', link!.id).forUpdate().execute()
      linkHeld.open()
      await linkRelease.closed
    })
    await linkHeld.closed
    const evaluation = runEvaluation(h.app.ctx, COMPANY, 'vendor')
    for (;;) {
      const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_locks where not granted`.execute(db)
      if (rows[0]!.n > 0) break
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    // The evaluation has read its marks ('V301' only) and waits: now the late mark commits.
    lateCommit.open()
    await late
    linkRelease.open()
    await holder
    t.same(await evaluation, { evaluated: 1 })
    t.same(
      (await pending()).map((r) => r.external_id),
      ['late'],
      'the mark with the lower number, committed meanwhile, is still there',
    )
    t.same(await runEvaluation(h.app.ctx, COMPANY, 'vendor'), { evaluated: 1 }, 'and the next pass takes it')
    t.same(await pending(), [])
  },
)
