import t from 'tap'
import { build, createCompany } from '../helpers/app.js'

t.test('companies: create, read, list with cursor pagination, 64-bit ids', async (t) => {
  const { app, adminKey, auth } = await build(t)
  const big = '9223372036854775807' // the largest int8: far past 2^53
  const res = await app.inject({
    method: 'POST',
    url: '/v1/companies',
    headers: auth(adminKey),
    payload: { id: big, name: 'Acme Builders', erpSystem: 'sage300' },
  })
  t.equal(res.statusCode, 201)
  t.equal(res.json().id, big, 'the id round-trips exactly')
  t.equal(res.headers.location, `/v1/companies/${big}`)
  t.equal(res.headers.etag, '"1"')
  t.equal(
    (await app.inject({ method: 'GET', url: `/v1/companies/${big}`, headers: auth(adminKey) })).json().name,
    'Acme Builders',
  )

  const dup = await app.inject({
    method: 'POST',
    url: '/v1/companies',
    headers: auth(adminKey),
    payload: { id: big, name: 'Again', erpSystem: 'vista' },
  })
  t.equal(dup.statusCode, 409)
  t.equal(dup.json().code, 'company_exists')

  for (let i = 1; i <= 11; i++) await createCompany(app, adminKey, String(i * 10))
  const seen: string[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const url: string = `/v1/companies?limit=5${cursor ? `&cursor=${cursor}` : ''}`
    const page = await app.inject({ method: 'GET', url, headers: auth(adminKey) })
    t.equal(page.statusCode, 200)
    const body = page.json()
    t.ok(body.items.length <= 5)
    seen.push(...body.items.map((c: { id: string }) => c.id))
    cursor = body.next
    pages++
  } while (cursor)
  t.equal(pages, 3, '12 companies in pages of 5')
  t.same(
    seen,
    ['10', '20', '30', '40', '50', '60', '70', '80', '90', '100', '110', big],
    'each once, in numeric id order',
  )

  const tooBig = await app.inject({ method: 'GET', url: '/v1/companies?limit=201', headers: auth(adminKey) })
  t.equal(tooBig.statusCode, 400)
  t.equal(tooBig.json().errors[0].pointer, '/query/limit')
  const badCursor = await app.inject({ method: 'GET', url: '/v1/companies?cursor=bm9wZQ', headers: auth(adminKey) })
  t.equal(badCursor.statusCode, 400)
  t.equal(badCursor.json().code, 'invalid_cursor')
  const badId = await app.inject({ method: 'GET', url: '/v1/companies/01x', headers: auth(adminKey) })
  t.equal(badId.statusCode, 400, 'a malformed id is a validation error')
  t.equal(badId.json().errors[0].pointer, '/params/companyId')
  // 19 digits but past the 64-bit range: no company can have it, and PostgreSQL must not see it.
  for (const url of ['/v1/companies/9223372036854775808', '/v1/companies/9999999999999999999/records/vendor']) {
    const tooLarge = await app.inject({ method: 'GET', url, headers: auth(adminKey) })
    t.equal(tooLarge.statusCode, 404, `${url}: ${tooLarge.body}`)
    t.equal(tooLarge.json().code, 'not_found')
  }
})

t.test('companies: ETag and If-Match guard changes (428, 412, lost update)', async (t) => {
  const { app, adminKey, auth } = await build(t)
  await createCompany(app, adminKey, '42')
  const url = '/v1/companies/42'
  const first = await app.inject({ method: 'GET', url, headers: auth(adminKey) })
  const etag = first.headers.etag as string
  t.equal(etag, '"1"')

  const missing = await app.inject({ method: 'PATCH', url, headers: auth(adminKey), payload: { name: 'x' } })
  t.equal(missing.statusCode, 428)
  t.equal(missing.json().code, 'precondition_required')
  const malformed = await app.inject({
    method: 'PATCH',
    url,
    headers: { ...auth(adminKey), 'if-match': 'W/"1"' },
    payload: { name: 'x' },
  })
  t.equal(malformed.statusCode, 400)

  const ok = await app.inject({
    method: 'PATCH',
    url,
    headers: { ...auth(adminKey), 'if-match': etag },
    payload: { name: 'Renamed', erpSystem: 'spectrum' },
  })
  t.equal(ok.statusCode, 200)
  t.equal(ok.headers.etag, '"2"')
  t.same({ name: ok.json().name, erpSystem: ok.json().erpSystem }, { name: 'Renamed', erpSystem: 'spectrum' })

  const stale = await app.inject({
    method: 'PATCH',
    url,
    headers: { ...auth(adminKey), 'if-match': etag },
    payload: { name: 'Lost update' },
  })
  t.equal(stale.statusCode, 412)
  t.equal(stale.headers.etag, '"2"', 'the 412 tells the current ETag')
  t.equal(
    (await app.inject({ method: 'GET', url, headers: auth(adminKey) })).json().name,
    'Renamed',
    'the stale write changed nothing',
  )

  // Two writers race with the same ETag: exactly one wins.
  const race = await Promise.all(
    ['A', 'B', 'C', 'D'].map((name) =>
      app.inject({ method: 'PATCH', url, headers: { ...auth(adminKey), 'if-match': '"2"' }, payload: { name } }),
    ),
  )
  t.same(race.map((r) => r.statusCode).sort(), [200, 412, 412, 412])

  const empty = await app.inject({
    method: 'PATCH',
    url,
    headers: { ...auth(adminKey), 'if-match': '"3"' },
    payload: {},
  })
  t.equal(empty.statusCode, 400, 'an empty patch is refused')
  const badSystem = await app.inject({
    method: 'PATCH',
    url,
    headers: { ...auth(adminKey), 'if-match': '"3"' },
    payload: { erpSystem: 'sap' },
  })
  t.equal(badSystem.statusCode, 400)
  t.match(badSystem.json().errors[0], { pointer: '/body/erpSystem', message: /one of: foundation, sage300/ })
})

t.test('companies: deleted only while empty', async (t) => {
  const { app, adminKey, key, auth } = await build(t)
  await createCompany(app, adminKey, '7')
  await createCompany(app, adminKey, '8')
  await key('viewer', ['8']) // a key scoped to company 8 is data that refers to it
  const blocked = await app.inject({
    method: 'DELETE',
    url: '/v1/companies/8',
    headers: { ...auth(adminKey), 'if-match': '"1"' },
  })
  t.equal(blocked.statusCode, 409)
  t.equal(blocked.json().code, 'company_has_data')
  t.equal(
    (await app.inject({ method: 'GET', url: '/v1/companies/8', headers: auth(adminKey) })).statusCode,
    200,
    'still there',
  )
  const noEtag = await app.inject({ method: 'DELETE', url: '/v1/companies/7', headers: auth(adminKey) })
  t.equal(noEtag.statusCode, 428)
  const gone = await app.inject({
    method: 'DELETE',
    url: '/v1/companies/7',
    headers: { ...auth(adminKey), 'if-match': '"1"' },
  })
  t.equal(gone.statusCode, 204)
  t.equal((await app.inject({ method: 'GET', url: '/v1/companies/7', headers: auth(adminKey) })).statusCode, 404)
})
