import fc from 'fast-check'
import type { FastifyInstance } from 'fastify'
import { sql } from 'kysely'
import t, { type Test } from 'tap'
import { build, createCompany } from '../helpers/app.js'

const COMPANY = '7'
// One millisecond, rows a microsecond apart (and two at the same instant): a cursor cut to
// milliseconds would skip rows here.
const instants = ['000004', '000003', '000003', '000002', '000001'].map((us) => `2024-05-01T12:00:00.${us}Z`)

/** Every list, with the name its cursors carry and a key of the right shape but the wrong types. */
const lists = [
  { name: 'companies', url: '/v1/companies', wrongTypes: [['abc'], ['-1'], ['99999999999999999999']] },
  {
    name: 'api-keys',
    url: '/v1/api-keys',
    wrongTypes: [
      ['2024-02-30T00:00:00Z', crypto.randomUUID()],
      ['2024-05-01T12:00:00Z', 'not-a-uuid'],
    ],
  },
  {
    name: 'runs',
    url: `/v1/companies/${COMPANY}/runs`,
    wrongTypes: [
      ['yesterday', crypto.randomUUID()],
      ['0000-01-01T00:00:00Z', crypto.randomUUID()],
    ],
  },
  { name: 'audit', url: `/v1/companies/${COMPANY}/audit`, wrongTypes: [['1.5'], ['9223372036854775808']] },
  { name: 'webhook-events', url: `/v1/companies/${COMPANY}/webhook-events`, wrongTypes: [['x'], ['']] },
  { name: 'links', url: `/v1/companies/${COMPANY}/links`, wrongTypes: [['2024-05-01T25:00:00Z', crypto.randomUUID()]] },
  {
    name: 'discrepancies',
    url: `/v1/companies/${COMPANY}/discrepancies`,
    wrongTypes: [['2024-05-01', crypto.randomUUID()]],
  },
  { name: 'records', url: `/v1/companies/${COMPANY}/records/vendor`, wrongTypes: [['a\u0000b', 'erp:1']] },
] as const

const forge = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

async function seed(app: FastifyInstance) {
  const db = app.db
  for (const [i, at] of instants.entries()) {
    await sql`insert into sync_runs (company_id, kind, status, params, requested_by, created_at)
      values (${COMPANY}, 'erp_refresh', 'succeeded', '{}', 'test', ${at})`.execute(db)
    await sql`insert into audit_entries (company_id, actor, action, request_ids)
      values (${COMPANY}, 'test', 'link', '{}')`.execute(db)
    await sql`insert into inbox_events (company_id, source, dedupe_key, headers, body, status)
      values (${COMPANY}, 'erp', ${`event-${i}`}, '{}', '{}', 'processed')`.execute(db)
    const { rows } = await sql<{ id: string }>`
      insert into record_links (company_id, type, procore_id, erp_id, origin_state, created_by, created_at)
      values (${COMPANY}, 'department', ${`p${i}`}, ${`e${i}`}, 'set', 'test', ${at}) returning id`.execute(db)
    await sql`insert into discrepancies (company_id, type, link_id, status, fields, created_at)
      values (${COMPANY}, 'department', ${rows[0]!.id}, 'open', '[]', ${at})`.execute(db)
    await sql`insert into record_snapshots (company_id, side, type, external_id, fields, raw, content_hash)
      values (${COMPANY}, 'erp', 'vendor', ${`V${i}`}, ${JSON.stringify({ name: `Vendor ${i % 3}` })}, '{}', ${`h${i}`})
    `.execute(db)
  }
  // API keys list oldest first: the same instants, ascending.
  await sql`update api_keys set created_at = v.at::timestamptz from (
    select id, (array[${sql.join(instants.toReversed())}])[row_number() over (order by id)] as at from api_keys
  ) v where v.id = api_keys.id`.execute(db)
}

async function walk(t: Test, app: FastifyInstance, headers: Record<string, string>, url: string, limit: number) {
  const seen: string[] = []
  const cursors: string[] = []
  let cursor: string | null = null
  do {
    const pageUrl: string = `${url}?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`
    const res = await app.inject({ method: 'GET', url: pageUrl, headers })
    t.equal(res.statusCode, 200, `${url}: ${res.body.slice(0, 200)}`)
    const page = res.json<{ items: Array<{ id?: string; key?: string }>; next: string | null }>()
    t.ok(page.items.length <= limit)
    seen.push(...page.items.map((item) => item.id ?? item.key!))
    cursor = page.next
    if (cursor) cursors.push(cursor)
  } while (cursor && seen.length < 100)
  return { seen, cursors }
}

t.test('every list pages through all its rows exactly once, also rows a microsecond apart', async (t) => {
  const { app, adminKey, key, auth } = await build(t)
  for (const id of [COMPANY, '8', '9', '10']) await createCompany(app, adminKey, id)
  for (let i = 0; i < 4; i++) await key('viewer')
  await seed(app)
  for (const list of lists) {
    const all = await app.inject({ method: 'GET', url: `${list.url}?limit=200`, headers: auth(adminKey) })
    const expected = all
      .json<{ items: Array<{ id?: string; key?: string }> }>()
      .items.map((item) => item.id ?? item.key!)
    t.ok(expected.length >= 4, `${list.name}: ${expected.length} rows`)
    for (const limit of [1, 2]) {
      const { seen } = await walk(t, app, auth(adminKey), list.url, limit)
      t.same(seen, expected, `${list.name}, pages of ${limit}: every row once, in order`)
    }
  }
})

t.test('a forged, truncated, foreign or wrong-typed cursor is 400 naming `cursor`, on every list', async (t) => {
  const { app, adminKey, key, auth } = await build(t)
  for (const id of [COMPANY, '8', '9']) await createCompany(app, adminKey, id)
  for (let i = 0; i < 4; i++) await key('viewer')
  await seed(app)
  const issued = new Map<string, string>()
  for (const list of lists) {
    const { cursors } = await walk(t, app, auth(adminKey), list.url, 1)
    issued.set(list.name, cursors[0]!)
  }
  for (const [i, list] of lists.entries()) {
    const own = issued.get(list.name)!
    const foreign = issued.get(lists[(i + 1) % lists.length]!.name)!
    const bad: Array<[string, string]> = [
      ['garbage', 'bm9wZQ'],
      ['not base64 JSON', 'not-a-cursor!'],
      ['truncated', own.slice(0, -6)],
      ['from another list', foreign],
      ['no list name', forge([])],
      ['another shape', forge([list.name, 'a', 'b', 'c'])],
      ['numbers instead of text', forge([list.name, 1, 2])],
      ...list.wrongTypes.map((key): [string, string] => [
        `wrong type ${JSON.stringify(key)}`,
        forge([list.name, ...key]),
      ]),
    ]
    for (const [what, cursor] of bad) {
      const url = `${list.url}?cursor=${encodeURIComponent(cursor)}`
      const res = await app.inject({ method: 'GET', url, headers: auth(adminKey) })
      t.equal(res.statusCode, 400, `${list.name}, ${what}: ${res.body.slice(0, 200)}`)
      t.match(res.headers['content-type'], /^application\/problem\+json/)
      const problem = res.json()
      t.equal(problem.code, 'invalid_cursor', `${list.name}, ${what}`)
      t.match(problem.detail, /`cursor`.*first page/s)
      t.equal(problem.errors[0].pointer, '/query/cursor')
    }
  }
})

t.test('no cursor reaches PostgreSQL unchecked: anything is 200 or 400, never 500', async (t) => {
  const { app, adminKey, auth } = await build(t)
  await createCompany(app, adminKey, COMPANY)
  const digits = (n: number) => fc.integer({ min: 0, max: 10 ** n - 1 }).map((v) => String(v).padStart(n, '0'))
  // Near-timestamps: impossible months, days, hours, year 0, 0–9 fraction digits.
  const fraction = fc.string({ unit: fc.constantFrom('0', '9'), maxLength: 9 })
  const nearTimestamp = fc
    .tuple(digits(4), digits(2), digits(2), digits(2), digits(2), digits(2), fraction)
    .map(([y, mo, d, h, mi, s, f]) => `${y}-${mo}-${d}T${h}:${mi}:${s}${f ? `.${f}` : ''}Z`)
  const component = fc.oneof(fc.string(), nearTimestamp, fc.uuid(), fc.bigInt().map(String), fc.constant(''))
  const cursors = fc.oneof(
    fc.string({ minLength: 1, maxLength: 80 }),
    fc
      .tuple(fc.constantFrom(...lists.map((l) => l.name)), fc.array(component, { maxLength: 3 }))
      .map(([name, key]) => forge([name, ...key])),
  )
  await fc.assert(
    fc.asyncProperty(cursors, fc.constantFrom(...lists), async (cursor, list) => {
      const url = `${list.url}?cursor=${encodeURIComponent(cursor)}`
      const res = await app.inject({ method: 'GET', url, headers: auth(adminKey) })
      if (res.statusCode !== 200 && res.statusCode !== 400) {
        throw new Error(`${list.name} ${JSON.stringify(cursor)}: ${res.statusCode} ${res.body}`)
      }
    }),
    { numRuns: 300 },
  )
  t.pass('300 cursors, none a server error')
})
