// The record list's index (record_items) against real PostgreSQL: a page is an index walk with no
// sequential scan and no sort of the whole type; statuses and counts stay equal to a computation
// from the base tables through link, unlink, new and deleted records, ignore and failure; keyset
// pages neither skip nor repeat while records are inserted between them.
import { sql } from 'kysely'
import t from 'tap'
import { build, createCompany } from '../helpers/app.js'
import { transaction, type Db } from '../../src/db/database.js'
import { apiActor } from '../../src/sync/audit.js'
import { createLink, unlink } from '../../src/sync/links.js'
import { entity } from '../../src/sync/registry.js'
import { markDeleted, upsertSnapshots } from '../../src/sync/snapshots.js'
import { flagFailed, listRecords, recordPageQuery, setIgnored } from '../../src/sync/status.js'
import { refreshRecordItems } from '../../src/sync/items.js'
import { evaluateLinks } from '../../src/sync/discrepancies.js'

const COMPANY = '7400001'
const actor = apiActor('00000000-0000-0000-0000-000000000001', 'req-test')

const vendors = (side: 'procore' | 'erp', rows: Array<Record<string, unknown>>) =>
  rows.map((raw) => ({ ...entity('vendor')[side].from(raw), raw }))

/** Every item with its status, computed from snapshots, links, discrepancies and flags directly. */
async function truth(db: Db): Promise<Map<string, string>> {
  const { rows } = await sql<{ k: string; status: string }>`
    with items (k, link_id, procore_id, erp_id) as (
      select 'link:' || l.id::text, l.id, l.procore_id, l.erp_id from record_links l
      where l.company_id = ${COMPANY} and l.type = 'vendor' and l.unlinked_at is null
      union all
      select s.side || ':' || s.external_id, null::uuid,
        case when s.side = 'procore' then s.external_id end, case when s.side = 'erp' then s.external_id end
      from record_snapshots s
      where s.company_id = ${COMPANY} and s.type = 'vendor' and s.deleted_at is null
        and not exists (select 1 from record_links x where x.company_id = ${COMPANY} and x.type = 'vendor'
          and x.unlinked_at is null
          and s.external_id = case when s.side = 'procore' then x.procore_id else x.erp_id end)
    )
    select i.k, case
        when fp.failed_at is not null or fe.failed_at is not null then 'failed'
        when i.link_id is null and (fp.ignored_at is not null or fe.ignored_at is not null) then 'ignored'
        when d.id is not null then 'discrepancy'
        when i.link_id is not null then 'linked'
        when i.procore_id is not null then 'only_in_procore'
        else 'only_in_erp' end as status
    from items i
    left join discrepancies d on d.link_id = i.link_id and d.status = 'open'
    left join record_flags fp on fp.company_id = ${COMPANY} and fp.type = 'vendor' and fp.side = 'procore'
      and fp.external_id = i.procore_id
    left join record_flags fe on fe.company_id = ${COMPANY} and fe.type = 'vendor' and fe.side = 'erp'
      and fe.external_id = i.erp_id`.execute(db)
  return new Map(rows.map((r) => [r.k, r.status]))
}

/** Walks every page of the list; answers key → status and the counts of the first page. */
async function walk(db: Db, limit: number, between?: (page: number) => Promise<void>) {
  const seen: Array<[string, string]> = []
  let cursor: string | undefined
  let counts: Record<string, number> = {}
  for (let page = 0; ; page++) {
    const p = await listRecords(db, COMPANY, 'vendor', {}, { limit, cursor })
    if (page === 0) counts = p.counts
    seen.push(...p.items.map((i): [string, string] => [i.key, i.status]))
    if (!p.next) break
    cursor = p.next
    await between?.(page)
  }
  return { seen, counts }
}

t.test('record list index', async (t) => {
  const h = await build(t, { WORKER_ENABLED: 'false' })
  await createCompany(h.app, h.adminKey, COMPANY)
  const db = h.app.db

  await t.test('statuses and counts follow every change that moves a record', async (t) => {
    await upsertSnapshots(
      db,
      COMPANY,
      'procore',
      'vendor',
      vendors(
        'procore',
        Array.from({ length: 12 }, (_, i) => ({
          id: `p${i}`,
          name: `Vendor ${i}`,
          updated_at: '2024-01-01T00:00:00Z',
        })),
      ),
    )
    await upsertSnapshots(
      db,
      COMPANY,
      'erp',
      'vendor',
      vendors(
        'erp',
        Array.from({ length: 12 }, (_, i) => ({
          id: `e${i}`,
          code: `V${i}`,
          name: i === 3 ? 'Someone else' : `Vendor ${i}`,
          updated_at: '2024-01-01T00:00:00Z',
        })),
      ),
    )
    const check = async (what: string) => {
      const expected = await truth(db)
      const { seen, counts } = await walk(db, 5)
      t.same(new Map(seen), expected, `${what}: every item with its status`)
      t.equal(seen.length, expected.size, `${what}: each item once`)
      const byStatus: Record<string, number> = {}
      for (const s of expected.values()) byStatus[s] = (byStatus[s] ?? 0) + 1
      t.same(
        Object.fromEntries(Object.entries(counts).filter(([, n]) => n > 0)),
        byStatus,
        `${what}: counts kept with the items`,
      )
    }
    await check('after the first read')
    const links: Record<string, { id: string; etag: string }> = {}
    for (const i of [1, 2, 3, 4]) {
      const { link, etag } = await createLink(
        h.app.ctx,
        COMPANY,
        { type: 'vendor', procoreId: `p${i}`, erpId: `e${i}` },
        actor,
      )
      links[i] = { id: link.id, etag }
    }
    await check('after four links')
    // The pairs are compared (p3/e3 differ by name): a discrepancy opens.
    await transaction(db, (tx) => evaluateLinks(tx, COMPANY, 'vendor', [links[3]!.id], actor))
    t.ok((await truth(db)).get(`link:${links[3]!.id}`) === 'discrepancy', 'a discrepancy is open')
    await check('after a discrepancy opened')
    await unlink(h.app.ctx, COMPANY, links[2]!.id, Number(JSON.parse(links[2]!.etag)), actor)
    await unlink(h.app.ctx, COMPANY, links[3]!.id, Number(JSON.parse(links[3]!.etag)), actor)
    await check('after two unlinks (one with a discrepancy)')
    await setIgnored(db, COMPANY, 'vendor', 'procore', 'p5', true, actor)
    await setIgnored(db, COMPANY, 'vendor', 'erp', 'e6', true, actor)
    await check('after two ignores')
    await setIgnored(db, COMPANY, 'vendor', 'erp', 'e6', false, actor)
    await flagFailed(db, COMPANY, 'vendor', [{ side: 'procore', externalId: 'p7', action: 'create', reason: 'no' }])
    await check('after an unignore and a failure')
    await markDeleted(db, COMPANY, 'erp', 'vendor', ['e8', 'e1'])
    await upsertSnapshots(
      db,
      COMPANY,
      'procore',
      'vendor',
      vendors('procore', [{ id: 'p99', name: 'Aardvark Supply', updated_at: '2024-01-01T00:00:00Z' }]),
    )
    await check('after deleted and new records')
    await sql`delete from record_flags where company_id = ${COMPANY}`.execute(db)
    await check('after flags are removed')
  })

  await t.test('a page is an index walk: no sequential scan, no sort of the type', async (t) => {
    const N = 3000
    for (const side of ['procore', 'erp'] as const) {
      for (let i = 0; i < N; i += 1000) {
        await upsertSnapshots(
          db,
          COMPANY,
          side,
          'vendor',
          vendors(
            side,
            Array.from({ length: 1000 }, (_, j) => ({
              id: `${side}-bulk-${i + j}`,
              code: `B${i + j}`,
              name: `Bulk ${side} ${String(i + j).padStart(5, '0')}`,
              updated_at: '2024-01-01T00:00:00Z',
            })),
          ),
        )
      }
    }
    await refreshRecordItems(db, COMPANY, 'vendor')
    await sql`analyze record_items, record_snapshots, record_links, record_flags, discrepancies`.execute(db)
    const first = await listRecords(db, COMPANY, 'vendor', { status: 'only_in_erp' }, { limit: 50 })
    t.equal(first.counts.only_in_erp >= N, true, 'the counts cover the bulk')
    for (const [what, filter, cursor] of [
      ['all records', {}, undefined],
      ['one status', { status: 'only_in_erp' as const }, undefined],
      ['a view', { status: 'ready_to_export' as const }, undefined],
      ['one status, second page', { status: 'only_in_erp' as const }, first.next!],
    ] as const) {
      const query = recordPageQuery(COMPANY, 'vendor', filter, { limit: 50, cursor })
      const { rows } = await sql<{ 'QUERY PLAN': unknown }>`explain (format json) ${query}`.execute(db)
      const plan = JSON.stringify(rows[0]!['QUERY PLAN'])
      const nodes: Array<Record<string, unknown>> = []
      const visit = (n: Record<string, unknown>) => {
        nodes.push(n)
        for (const c of (n.Plans as Array<Record<string, unknown>> | undefined) ?? []) visit(c)
      }
      visit((rows[0]!['QUERY PLAN'] as Array<{ Plan: Record<string, unknown> }>)[0]!.Plan)
      const onItems = nodes.filter((n) => n['Relation Name'] === 'record_items')
      t.ok(
        onItems.length > 0 && onItems.every((n) => /Index/.test(String(n['Node Type']))),
        `${what}: record_items is read through an index (${onItems.map((n) => n['Index Name']).join()})`,
      )
      t.notOk(
        nodes.some((n) => n['Node Type'] === 'Seq Scan' && /record_(items|snapshots)/.test(String(n['Relation Name']))),
        `${what}: no sequential scan of items or snapshots`,
      )
      t.notOk(
        nodes.some((n) => n['Node Type'] === 'Sort' && Number(n['Plan Rows']) > 51),
        `${what}: nothing sorted beyond the page (${plan.length} chars of plan)`,
      )
    }
  })

  await t.test('keyset pages neither skip nor repeat while records are added between them', async (t) => {
    const before = new Set((await walk(db, 1000)).seen.map(([k]) => k))
    let added = 0
    const { seen } = await walk(db, 97, async (page) => {
      if (page > 20) return
      // Before and after the cursor in display order, on both sides.
      await upsertSnapshots(
        db,
        COMPANY,
        page % 2 === 0 ? 'procore' : 'erp',
        'vendor',
        vendors(page % 2 === 0 ? 'procore' : 'erp', [
          { id: `late-a-${page}`, code: `LA${page}`, name: `AAA late ${page}`, updated_at: '2024-01-01T00:00:00Z' },
          { id: `late-z-${page}`, code: `LZ${page}`, name: `zzz late ${page}`, updated_at: '2024-01-01T00:00:00Z' },
        ]),
      )
      added += 2
    })
    const keys = seen.map(([k]) => k)
    t.equal(new Set(keys).size, keys.length, 'no item twice')
    t.ok(
      [...before].every((k) => keys.includes(k)),
      'every item that was there before the walk is on a page',
    )
    t.ok(added > 0, 'records were added during the walk')
    t.ok(keys.filter((k) => k.includes('late-z-')).length > 0, 'items added after the cursor show up on later pages')
  })
})
