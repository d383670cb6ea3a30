import { sql } from 'kysely'
import t from 'tap'
import { build } from '../helpers/app.js'

const problemShape = {
  type: /^urn:procore-erp-sync:problem:/,
  title: String,
  status: Number,
  detail: String,
  instance: String,
  code: String,
  requestId: String,
}

t.test('every error class is application/problem+json', async (t) => {
  const { app, adminKey, auth } = await build(t, { BODY_LIMIT_BYTES: '2048' })
  const cases = [
    {
      name: 'unknown route',
      req: { method: 'GET' as const, url: '/v1/nothing-here', headers: auth(adminKey) },
      status: 404,
      code: 'route_not_found',
    },
    {
      name: 'unknown route outside /v1',
      req: { method: 'GET' as const, url: '/nope' },
      status: 404,
      code: 'route_not_found',
    },
    {
      name: 'wrong method',
      req: { method: 'PUT' as const, url: '/v1/companies', headers: auth(adminKey) },
      status: 405,
      code: 'method_not_allowed',
    },
    {
      name: 'body too large',
      req: {
        method: 'POST' as const,
        url: '/v1/companies',
        headers: { ...auth(adminKey), 'content-type': 'application/json' },
        payload: JSON.stringify({ id: '1', name: 'x'.repeat(5000), erpSystem: 'generic' }),
      },
      status: 413,
      code: 'body_too_large',
    },
    {
      name: 'unsupported media type',
      req: {
        method: 'POST' as const,
        url: '/v1/companies',
        headers: { ...auth(adminKey), 'content-type': 'text/plain' },
        payload: 'id=1',
      },
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'invalid JSON',
      req: {
        method: 'POST' as const,
        url: '/v1/companies',
        headers: { ...auth(adminKey), 'content-type': 'application/json' },
        payload: '{"id": "1",',
      },
      status: 400,
      code: 'invalid_json',
    },
    {
      name: 'validation',
      req: {
        method: 'POST' as const,
        url: '/v1/companies',
        headers: auth(adminKey),
        payload: { id: 'abc', erpSystem: 'sap' },
      },
      status: 400,
      code: 'validation_failed',
    },
    {
      name: 'unknown property',
      req: {
        method: 'POST' as const,
        url: '/v1/companies',
        headers: auth(adminKey),
        payload: { id: '5', name: 'x', erpSystem: 'generic', admin: true },
      },
      status: 400,
      code: 'validation_failed',
    },
    { name: 'no key', req: { method: 'GET' as const, url: '/v1/companies' }, status: 401, code: 'unauthorized' },
  ]
  for (const c of cases) {
    const res = await app.inject(c.req)
    t.equal(res.statusCode, c.status, `${c.name}: status`)
    t.match(res.headers['content-type'], /^application\/problem\+json/, `${c.name}: content type`)
    t.match(res.json(), { ...problemShape, status: c.status, code: c.code }, `${c.name}: body`)
    t.equal(res.json().requestId, res.headers['x-request-id'], `${c.name}: carries the request id`)
  }
  const wrongMethod = await app.inject({ method: 'PUT', url: '/v1/companies', headers: auth(adminKey) })
  t.equal(wrongMethod.headers.allow, 'GET, POST')
})

t.test('validation names every bad field by JSON pointer; unknown properties are rejected, not stripped', async (t) => {
  const { app, adminKey, auth } = await build(t)
  const res = await app.inject({
    method: 'POST',
    url: '/v1/companies',
    headers: auth(adminKey),
    payload: { id: 'abc', erpSystem: 'sap', extra: 1 },
  })
  const pointers = res
    .json()
    .errors.map((e: { pointer: string }) => e.pointer)
    .sort()
  t.same(pointers, ['/body/erpSystem', '/body/extra', '/body/id', '/body/name'])
  t.match(res.json().detail, /\/body\/name is required/)
  const listed = await app.inject({ method: 'GET', url: '/v1/companies', headers: auth(adminKey) })
  t.same(listed.json().items, [], 'nothing was created by the rejected request')
})

t.test('5xx bodies are generic: no SQL, driver text, stack or paths', async (t) => {
  const { app, adminKey, auth } = await build(t)
  await sql`drop table companies cascade`.execute(app.db) // make the next query fail inside the driver
  const res = await app.inject({ method: 'GET', url: '/v1/companies', headers: auth(adminKey) })
  t.equal(res.statusCode, 500)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  t.equal(res.json().code, 'internal_error')
  t.notMatch(res.body, /stack|at \w+ \(|select |relation |\/src\/|node_modules|ECONN|does not exist/i)
  t.equal(res.json().requestId, res.headers['x-request-id'])
})

t.test('a transaction PostgreSQL rolled back to break a deadlock is a 503 to retry, not a 500', async (t) => {
  const { app, adminKey, auth } = await build(t)
  // The same SQLSTATE PostgreSQL gives the transaction it picks as a deadlock's victim.
  await sql`create function refuse_as_deadlock() returns trigger language plpgsql as $$
    begin raise exception 'deadlock detected' using errcode = '40P01'; end $$`.execute(app.db)
  await sql`create trigger refuse_as_deadlock before insert on companies
    for each row execute function refuse_as_deadlock()`.execute(app.db)
  const res = await app.inject({
    method: 'POST',
    url: '/v1/companies',
    headers: auth(adminKey),
    payload: { id: '5358233', name: 'Riverside Builders', erpSystem: 'foundation' },
  })
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '1')
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  t.match(res.json(), { code: 'write_conflict', detail: /Send it again/ })
  t.notMatch(res.body, /deadlock detected|40P01/, 'no driver text')

  await sql`drop trigger refuse_as_deadlock on companies`.execute(app.db)
  const again = await app.inject({
    method: 'POST',
    url: '/v1/companies',
    headers: auth(adminKey),
    payload: { id: '5358233', name: 'Riverside Builders', erpSystem: 'foundation' },
  })
  t.equal(again.statusCode, 201, 'sent again, it succeeds')
})
