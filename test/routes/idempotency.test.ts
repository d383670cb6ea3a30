import { sql } from 'kysely'
import t from 'tap'
import { fingerprint } from '../../src/api/idempotency.js'
import { build } from '../helpers/app.js'

const body = (id: string) => ({ id, name: `Company ${id}`, erpSystem: 'vista' })

t.test('Idempotency-Key: replay, mismatch, validation, retention', async (t) => {
  const { app, adminKey, key, auth } = await build(t)
  const headers = { ...auth(adminKey), 'idempotency-key': 'create-77' }

  const first = await app.inject({ method: 'POST', url: '/v1/companies', headers, payload: body('77') })
  t.equal(first.statusCode, 201)
  const replay = await app.inject({ method: 'POST', url: '/v1/companies', headers, payload: body('77') })
  t.equal(replay.statusCode, 201, 'same status')
  t.equal(replay.body, first.body, 'same body, byte for byte')
  t.equal(replay.headers.etag, first.headers.etag)
  t.equal(replay.headers.location, first.headers.location)
  t.equal(replay.headers['idempotent-replayed'], 'true')
  t.equal(first.headers['idempotent-replayed'], undefined)
  // Key order in the body does not matter: same request, same fingerprint.
  const reordered = await app.inject({
    method: 'POST',
    url: '/v1/companies',
    headers,
    payload: { erpSystem: 'vista', name: 'Company 77', id: '77' },
  })
  t.equal(reordered.statusCode, 201)

  const mismatch = await app.inject({ method: 'POST', url: '/v1/companies', headers, payload: body('78') })
  t.equal(mismatch.statusCode, 422)
  t.equal(mismatch.json().code, 'idempotency_key_reused')
  t.equal(
    (await app.inject({ method: 'GET', url: '/v1/companies/78', headers: auth(adminKey) })).statusCode,
    404,
    'the mismatched request did nothing',
  )

  // Without a key, a repeat is an ordinary conflict — the key is what makes retries safe.
  const noKey = await app.inject({ method: 'POST', url: '/v1/companies', headers: auth(adminKey), payload: body('77') })
  t.equal(noKey.statusCode, 409)

  for (const bad of ['', 'x'.repeat(256), 'naïve']) {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/companies',
      headers: { ...auth(adminKey), 'idempotency-key': bad },
      payload: body('79'),
    })
    t.equal(res.statusCode, 400, `malformed key ${JSON.stringify(bad.slice(0, 10))} → 400`)
    t.equal(res.json().errors[0].pointer, '/headers/idempotency-key')
  }

  // Keys are scoped per API key: another caller's identical key is independent and sees nothing of the first.
  const other = await key('admin')
  const foreign = await app.inject({
    method: 'POST',
    url: '/v1/companies',
    headers: { ...auth(other), 'idempotency-key': 'create-77' },
    payload: body('80'),
  })
  t.equal(foreign.statusCode, 201, 'a different API key may use the same key string')
  t.equal(foreign.json().id, '80')

  // Errors the handler returns (4xx) are stored and replayed too; 5xx are not (the caller may retry).
  const conflictKey = { ...auth(adminKey), 'idempotency-key': 'dup-77' }
  const c1 = await app.inject({ method: 'POST', url: '/v1/companies', headers: conflictKey, payload: body('77') })
  const c2 = await app.inject({ method: 'POST', url: '/v1/companies', headers: conflictKey, payload: body('77') })
  t.same([c1.statusCode, c2.statusCode], [409, 409])
  t.equal(c2.headers['idempotent-replayed'], 'true')

  // Past the retention (24 h), a key is forgotten and the request runs anew.
  await sql`update idempotency_keys set created_at = now() - interval '25 hours' where key = 'create-77'`.execute(
    app.db,
  )
  const afterRetention = await app.inject({ method: 'POST', url: '/v1/companies', headers, payload: body('77') })
  t.equal(afterRetention.statusCode, 409, 'executed again (and found the company exists)')
  t.equal(afterRetention.headers['idempotent-replayed'], undefined)
})

t.test('Idempotency-Key: 20 parallel requests with one key → exactly one effect', async (t) => {
  const { app, adminKey, auth } = await build(t)
  const headers = { ...auth(adminKey), 'idempotency-key': 'parallel' }
  const results = await Promise.all(
    Array.from({ length: 20 }, () =>
      app.inject({ method: 'POST', url: '/v1/companies', headers, payload: body('500') }),
    ),
  )
  const statuses = results.map((r) => r.statusCode)
  t.ok(
    statuses.every((s) => s === 201 || s === 409),
    `only 201 (first or replay) and 409 (in flight): ${statuses.join(',')}`,
  )
  const executed = results.filter((r) => r.statusCode === 201 && r.headers['idempotent-replayed'] === undefined)
  t.equal(executed.length, 1, 'exactly one request executed')
  for (const r of results.filter((r) => r.statusCode === 409)) t.equal(r.json().code, 'idempotency_key_in_flight')
  const { n } = await app.db
    .selectFrom('companies')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .executeTakeFirstOrThrow()
  t.equal(Number(n), 1, 'one company created')
  const after = await app.inject({ method: 'POST', url: '/v1/companies', headers, payload: body('500') })
  t.equal(after.statusCode, 201)
  t.equal(after.headers['idempotent-replayed'], 'true', 'later retries replay the one result')
})

t.test('Idempotency-Key: a claim whose holder died is taken over after its lease', async (t) => {
  const { app, adminKey, auth } = await build(t)
  const principal = await app.db.selectFrom('api_keys').select('id').executeTakeFirstOrThrow()
  // What a crash mid-request leaves behind: a claim with no response.
  await app.db
    .insertInto('idempotency_keys')
    .values({
      api_key_id: principal.id,
      key: 'crashed',
      method: 'POST',
      route: '/v1/companies',
      fingerprint: fingerprint('POST', '/v1/companies', body('600')),
      locked_until: sql<Date>`now() + interval '5 minutes'`,
      response_status: null,
      response_headers: null,
      response_body: null,
      completed_at: null,
    })
    .execute()
  const headers = { ...auth(adminKey), 'idempotency-key': 'crashed' }
  const during = await app.inject({ method: 'POST', url: '/v1/companies', headers, payload: body('600') })
  t.equal(during.statusCode, 409, 'while the lease runs: in flight')
  t.equal(during.headers['retry-after'], '1')
  await sql`update idempotency_keys set locked_until = now() - interval '1 second'`.execute(app.db)
  const after = await app.inject({ method: 'POST', url: '/v1/companies', headers, payload: body('600') })
  t.equal(after.statusCode, 201, 'after the lease: the retry runs')
})

t.test('stored responses are sealed: a key shown once is not readable in the database', async (t) => {
  const { app, adminKey, auth } = await build(t)
  const headers = { ...auth(adminKey), 'idempotency-key': 'mint-1' }
  const payload = { name: 'agent', role: 'operator', companyIds: null }
  const first = await app.inject({ method: 'POST', url: '/v1/api-keys', headers, payload })
  t.equal(first.statusCode, 201)
  const secret = first.json().key.slice(21)
  const rows = await app.db.selectFrom('idempotency_keys').selectAll().execute()
  t.notOk(JSON.stringify(rows).includes(secret), 'the new key is not stored in clear')
  const replay = await app.inject({ method: 'POST', url: '/v1/api-keys', headers, payload })
  t.equal(replay.body, first.body, 'yet the replay is byte for byte the first response')
})
