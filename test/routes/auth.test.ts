import t from 'tap'
import { build, createCompany } from '../helpers/app.js'

t.test(
  'API keys: 401 for missing, malformed, unknown and revoked keys; 403 for roles; 404 outside scope',
  async (t) => {
    const { app, adminKey, key, auth } = await build(t)
    await createCompany(app, adminKey, '100')
    await createCompany(app, adminKey, '200')

    const unauthorised = [
      {},
      { authorization: 'Basic abc' },
      { authorization: 'Bearer ' },
      { authorization: 'Bearer esk_0000000000000000_' + 'A'.repeat(43) },
      { authorization: adminKey }, // scheme missing
      { authorization: `Bearer ${adminKey.slice(0, -1)}x` }, // right lookup, wrong secret
    ]
    for (const headers of unauthorised) {
      const res = await app.inject({ method: 'GET', url: '/v1/companies', headers })
      t.equal(res.statusCode, 401, `401 for ${JSON.stringify(headers).slice(0, 40)}`)
      t.match(res.headers['content-type'], /^application\/problem\+json/)
      t.equal(res.json().code, 'unauthorized')
      t.equal(res.headers['www-authenticate'], 'Bearer')
    }

    // Revocation takes effect on the next request.
    const viewer = await key('viewer')
    t.equal((await app.inject({ method: 'GET', url: '/v1/companies', headers: auth(viewer) })).statusCode, 200)
    const list = await app.inject({ method: 'GET', url: '/v1/api-keys?limit=200', headers: auth(adminKey) })
    const viewerId = list.json().items.find((k: { role: string }) => k.role === 'viewer').id
    t.equal(
      (await app.inject({ method: 'DELETE', url: `/v1/api-keys/${viewerId}`, headers: auth(adminKey) })).statusCode,
      200,
    )
    t.equal(
      (await app.inject({ method: 'GET', url: '/v1/companies', headers: auth(viewer) })).statusCode,
      401,
      'revoked key → 401',
    )

    // Roles: viewers, operators and approvers cannot do admin things.
    for (const role of ['viewer', 'operator', 'approver'] as const) {
      const k = await key(role)
      const res = await app.inject({
        method: 'POST',
        url: '/v1/companies',
        headers: auth(k),
        payload: { id: '300', name: 'x', erpSystem: 'generic' },
      })
      t.equal(res.statusCode, 403, `${role} cannot create companies`)
      t.equal(res.json().code, 'forbidden')
      t.equal(
        (await app.inject({ method: 'GET', url: '/v1/api-keys', headers: auth(k) })).statusCode,
        403,
        `${role} cannot list keys`,
      )
    }

    // Scope: a key for company 100 sees 100 only; 200 looks exactly like a company that does not exist.
    const scoped = await key('admin', ['100'])
    const listed = await app.inject({ method: 'GET', url: '/v1/companies', headers: auth(scoped) })
    t.same(
      listed.json().items.map((c: { id: string }) => c.id),
      ['100'],
    )
    t.equal((await app.inject({ method: 'GET', url: '/v1/companies/100', headers: auth(scoped) })).statusCode, 200)
    const other = await app.inject({ method: 'GET', url: '/v1/companies/200', headers: auth(scoped) })
    const missing = await app.inject({ method: 'GET', url: '/v1/companies/999', headers: auth(scoped) })
    t.equal(other.statusCode, 404)
    t.equal(missing.statusCode, 404)
    const strip = (b: Record<string, unknown>) => ({
      ...b,
      requestId: undefined,
      instance: undefined,
      detail: String(b.detail).replace(/\d+/g, 'N'),
    })
    t.same(strip(other.json()), strip(missing.json()), 'out-of-scope and non-existent are indistinguishable')
    const patch = await app.inject({
      method: 'PATCH',
      url: '/v1/companies/200',
      headers: { ...auth(scoped), 'if-match': '"1"' },
      payload: { name: 'taken over' },
    })
    t.equal(patch.statusCode, 404, 'cannot change a company outside scope')
    const afterPatch = await app.inject({ method: 'GET', url: '/v1/companies/200', headers: auth(adminKey) })
    t.equal(afterPatch.json().name, 'Company 200', 'and nothing changed')
    // A scoped admin cannot mint keys (which could be wider than its own scope) or register companies.
    t.equal(
      (
        await app.inject({
          method: 'POST',
          url: '/v1/api-keys',
          headers: auth(scoped),
          payload: { name: 'x', role: 'admin', companyIds: null },
        })
      ).statusCode,
      403,
    )
    t.equal(
      (
        await app.inject({
          method: 'POST',
          url: '/v1/companies',
          headers: auth(scoped),
          payload: { id: '400', name: 'x', erpSystem: 'generic' },
        })
      ).statusCode,
      403,
    )
  },
)

t.test('keys are stored only as hashes and shown once', async (t) => {
  const { app, adminKey, auth } = await build(t)
  await createCompany(app, adminKey, '100')
  const res = await app.inject({
    method: 'POST',
    url: '/v1/api-keys',
    headers: auth(adminKey),
    payload: { name: 'erp agent', role: 'operator', companyIds: ['100'] },
  })
  t.equal(res.statusCode, 201)
  const { key, apiKey } = res.json()
  t.match(key, /^esk_[a-z0-9]{16}_[\w-]{43}$/)
  t.same({ role: apiKey.role, companyIds: apiKey.companyIds }, { role: 'operator', companyIds: ['100'] })
  t.ok(key.startsWith(apiKey.prefix))
  const rows = await app.db.selectFrom('api_keys').selectAll().execute()
  const dump = JSON.stringify(rows.map((r) => ({ ...r, secret_hash: r.secret_hash.toString('hex') })))
  t.notOk(dump.includes(key.slice(21)), 'the secret part is not in the database')
  const get = await app.inject({ method: 'GET', url: `/v1/api-keys/${apiKey.id}`, headers: auth(adminKey) })
  t.notOk(get.body.includes(key.slice(21)), 'nor in later reads')
  t.equal(
    (await app.inject({ method: 'GET', url: '/v1/companies/100', headers: auth(key) })).statusCode,
    200,
    'the new key works',
  )
  const unknownCompany = await app.inject({
    method: 'POST',
    url: '/v1/api-keys',
    headers: auth(adminKey),
    payload: { name: 'x', role: 'viewer', companyIds: ['555'] },
  })
  t.equal(unknownCompany.statusCode, 400)
  t.same(unknownCompany.json().errors, [{ pointer: '/body/companyIds', message: 'unknown company 555' }])
})
