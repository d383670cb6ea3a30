import { sql } from 'kysely'
import t from 'tap'
import { build, createCompany } from '../helpers/app.js'

const COMPANY = '7'
const isProblem = (res: { headers: Record<string, unknown> }) =>
  String(res.headers['content-type']).startsWith('application/problem+json')

t.test('request bodies are never coerced; query strings still are', async (t) => {
  const { app, adminKey, auth } = await build(t)
  const post = (payload: unknown) =>
    app.inject({ method: 'POST', url: '/v1/companies', headers: auth(adminKey), payload: payload as object })
  for (const [name, body, pointer] of [
    ['a number id above 2^53', '{"id": 9007199254740993, "name": "N", "erpSystem": "generic"}', '/body/id'],
    ['a number id', '{"id": 12, "name": "N", "erpSystem": "generic"}', '/body/id'],
    ['a boolean name', '{"id": "12", "name": true, "erpSystem": "generic"}', '/body/name'],
    ['an array name', '{"id": "12", "name": ["a"], "erpSystem": "generic"}', '/body/name'],
  ] as const) {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/companies',
      headers: { ...auth(adminKey), 'content-type': 'application/json' },
      payload: body,
    })
    t.equal(res.statusCode, 400, `${name}: ${res.body}`)
    t.ok(isProblem(res), name)
    t.match(res.json(), { errors: [{ pointer }] }, `${name} names the field`)
  }
  const big = await app.inject({
    method: 'POST',
    url: '/v1/companies',
    headers: { ...auth(adminKey), 'content-type': 'application/json' },
    payload: '{"id": 9007199254740993, "name": "N", "erpSystem": "generic"}',
  })
  t.match(big.json().detail, /string/, 'a number beyond 2^53 is told to be sent as a string')
  t.equal(
    await app.db
      .selectFrom('companies')
      .select('id')
      .execute()
      .then((r) => r.length),
    0,
    'nothing stored',
  )
  t.equal((await post({ id: '12', name: 'N', erpSystem: 'generic' })).statusCode, 201, 'a well-typed body passes')
  const page = await app.inject({ method: 'GET', url: '/v1/companies?limit=1', headers: auth(adminKey) })
  t.equal(page.statusCode, 200, 'a numeric query string is still read as a number')
})

t.test('limits that are not finite numbers are 400, on every list', async (t) => {
  const { app, adminKey, auth } = await build(t)
  await createCompany(app, adminKey, COMPANY)
  for (const url of ['/v1/companies', '/v1/api-keys', `/v1/companies/${COMPANY}/links`]) {
    for (const limit of ['Infinity', '1e400', '-Infinity', 'NaN']) {
      const res = await app.inject({ method: 'GET', url: `${url}?limit=${limit}`, headers: auth(adminKey) })
      t.equal(res.statusCode, 400, `${url}?limit=${limit}: ${res.body.slice(0, 200)}`)
      t.ok(isProblem(res))
    }
  }
})

t.test('deeply nested JSON and NUL characters in API bodies are 400 problems', async (t) => {
  const { app, adminKey, auth } = await build(t)
  const deep = '{"id":"1","name":"n","erpSystem":"generic","x":' + '['.repeat(5000) + ']'.repeat(5000) + '}'
  const res = await app.inject({
    method: 'POST',
    url: '/v1/companies',
    headers: { ...auth(adminKey), 'content-type': 'application/json', 'idempotency-key': 'deep-1' },
    payload: deep,
  })
  t.equal(res.statusCode, 400, res.body.slice(0, 300))
  t.ok(isProblem(res))
  t.equal(res.json().code, 'too_deeply_nested')
  const nul = await app.inject({
    method: 'POST',
    url: '/v1/companies',
    headers: { ...auth(adminKey), 'content-type': 'application/json' },
    payload: '{"id":"1","name":"a\\u0000b","erpSystem":"generic"}',
  })
  t.equal(nul.statusCode, 400, nul.body)
  t.match(nul.json(), { errors: [{ pointer: '/body/name' }] })
})

t.test('framework refusals are problem+json too', async (t) => {
  const { app, adminKey, auth } = await build(t)
  const cases = [
    { url: `/v1/companies/${'1'.repeat(101)}`, status: 414 },
    { url: '/v1/companies/%zz', status: 400 },
  ]
  for (const c of cases) {
    const res = await app.inject({ method: 'GET', url: c.url, headers: auth(adminKey) })
    t.equal(res.statusCode, c.status, `${c.url}: ${res.body}`)
    t.ok(isProblem(res), `${c.url} is problem+json`)
    t.type(res.json().requestId, 'string')
  }
  // A header larger than Node accepts never reaches Fastify: it must go over a real socket.
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const big = await fetch(`http://127.0.0.1:${port}/v1/companies`, { headers: { 'x-big': 'a'.repeat(20_000) } })
  t.equal(big.status, 431)
  t.ok(String(big.headers.get('content-type')).startsWith('application/problem+json'), 'a 431 is problem+json')
  t.equal(((await big.json()) as { code: string }).code, 'headers_too_large')
})

t.test('an ERP id with a space can be read, as the protocol allows', async (t) => {
  const { app, adminKey, auth } = await build(t)
  await createCompany(app, adminKey, COMPANY)
  await sql`insert into record_snapshots (company_id, side, type, external_id, fields, raw, content_hash)
    values (${COMPANY}, 'erp', 'vendor', 'D 60', ${JSON.stringify({ name: 'Vendor D 60' })}, '{}', 'h')`.execute(app.db)
  const res = await app.inject({
    method: 'GET',
    url: `/v1/companies/${COMPANY}/records/vendor/erp/D%2060`,
    headers: auth(adminKey),
  })
  t.equal(res.statusCode, 200, res.body.slice(0, 300))
})

t.test('of racing unlinks carrying one ETag, exactly one wins', async (t) => {
  const { app, adminKey, auth } = await build(t)
  await createCompany(app, adminKey, COMPANY)
  const { rows } = await sql<{ id: string }>`
    insert into record_links (company_id, type, procore_id, erp_id, origin_state, created_by)
    values (${COMPANY}, 'department', 'p1', 'e1', 'set', 'test') returning id`.execute(app.db)
  const url = `/v1/companies/${COMPANY}/links/${rows[0]!.id}`
  const etag = (await app.inject({ method: 'GET', url, headers: auth(adminKey) })).headers.etag as string
  const answers = await Promise.all(
    Array.from({ length: 20 }, () =>
      app.inject({ method: 'DELETE', url, headers: { ...auth(adminKey), 'if-match': etag } }),
    ),
  )
  const statuses = answers.map((a) => a.statusCode)
  t.equal(statuses.filter((s) => s === 200).length, 1, `one winner: ${statuses.join(',')}`)
  t.equal(statuses.filter((s) => s === 412).length, 19, 'the others are told the link changed')
  const current = answers.find((a) => a.statusCode === 200)!.headers.etag as string
  const again = await app.inject({ method: 'DELETE', url, headers: { ...auth(adminKey), 'if-match': current } })
  t.equal(again.statusCode, 200, 'repeating with the current ETag answers the ended link')
})

t.test('each API key has a per-minute limit: 429 problem+json with Retry-After, other keys unaffected', async (t) => {
  const { app, adminKey, key, auth } = await build(t, { RATE_LIMIT_PER_MINUTE: '5' })
  const other = await key('admin')
  const answers = []
  for (let i = 0; i < 6; i++)
    answers.push(await app.inject({ method: 'GET', url: '/v1/companies', headers: auth(adminKey) }))
  t.same(
    answers.map((a) => a.statusCode),
    [200, 200, 200, 200, 200, 429],
  )
  t.equal(answers[0]!.headers['ratelimit-limit'], '5')
  t.equal(answers[4]!.headers['ratelimit-remaining'], '0')
  const refused = answers[5]!
  t.ok(isProblem(refused))
  t.equal(refused.json().code, 'rate_limited')
  t.ok(Number(refused.headers['retry-after']) >= 1, 'Retry-After in seconds')
  t.equal((await app.inject({ method: 'GET', url: '/v1/companies', headers: auth(other) })).statusCode, 200)
  const metrics = await app.inject({ method: 'GET', url: '/metrics' })
  t.match(metrics.body, /http_rate_limited_total 1/)
})
