import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { sql } from 'kysely'
import t, { type Test } from 'tap'
import { build, createCompany } from '../helpers/app.js'
import { connected, newCompanyId, standin } from './fixtures/harness.js'

/** The problem+json body (throws when the response is not one). */
const problem = (res: { headers: Record<string, unknown>; json: <T>() => T }) => {
  if (!String(res.headers['content-type']).startsWith('application/problem+json'))
    throw new Error(`not problem+json: ${String(res.headers['content-type'])}`)
  return res.json<{
    code: string
    detail: string
    errors?: Array<{ pointer: string; message: string }>
    check?: { ok: boolean; failure: { code: string; message: string } }
  }>()
}

/** A loopback HTTP server answering every request with `handler`'s status, headers and body. */
async function fakeAgent(
  tt: Test,
  handler: () => { status: number; headers?: Record<string, string>; body?: unknown },
): Promise<string> {
  const server = createServer((_req, res) => {
    const { status, headers, body } = handler()
    res.writeHead(status, { 'content-type': 'application/json', ...headers })
    res.end(body === undefined ? '' : JSON.stringify(body))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  tt.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

const info = (overrides: Record<string, unknown> = {}) => ({
  protocol_version: '1.0',
  system: 'foundation',
  company_name: 'Fake Co',
  capabilities: { resources: ['departments', 'employees', 'jobs', 'cost-codes', 'job-cost-codes', 'vendors'] },
  limits: { max_page_size: 500, idempotency_key_ttl_seconds: 86_400, max_lengths: {} },
  ...overrides,
})

t.test(
  'PUT creates the connection after testing the agent; the secret is shown once and nothing secret is stored in clear',
  async (t) => {
    const erp = await standin(t)
    const { app, adminKey, auth } = await build(t, { WORKER_ENABLED: 'false' })
    const companyId = newCompanyId()
    await createCompany(app, adminKey, companyId, 'foundation')
    const url = `/v1/companies/${companyId}/erp/connection`

    const missing = await app.inject({ method: 'GET', url, headers: auth(adminKey) })
    t.equal(missing.statusCode, 404)
    t.equal(problem(missing).code, 'erp_not_connected')

    const res = await app.inject({
      method: 'PUT',
      url,
      headers: auth(adminKey),
      payload: { baseUrl: `${erp.url}/`, token: erp.token },
    })
    t.equal(res.statusCode, 201, res.body)
    t.equal(res.headers.location, url)
    t.equal(res.headers.etag, '"1"')
    const created = res.json()
    t.match(created.notificationSecret, /^whsec_[A-Za-z0-9+/]{43}=$/)
    t.equal(created.baseUrl, erp.url, 'trailing slash removed')
    t.match(created.agent, {
      system: 'foundation',
      protocolVersion: '1.2',
      maxPageSize: 500,
      maxLengths: { vendors: { name: 30, code: 10 } },
    })
    t.equal(created.notifications.url, `http://localhost:3000/webhooks/erp/${companyId}`)
    t.same(created.check.failure, null)
    t.equal(created.check.ok, true)

    const got = await app.inject({ method: 'GET', url, headers: auth(adminKey) })
    t.equal(got.statusCode, 200)
    t.equal(got.headers.etag, '"1"')
    t.notOk(got.body.includes(erp.token), 'GET never shows the token')
    t.notOk(got.body.includes(created.notificationSecret), 'GET never shows the notification secret')
    t.notOk('notificationSecret' in got.json())
    t.equal(got.json().lastCheck.ok, true)

    const { rows } = await sql<{ row: string }>`select erp_connections::text as row from erp_connections`.execute(
      app.db,
    )
    t.equal(rows.length, 1)
    t.notOk(rows[0]!.row.includes(erp.token), 'token sealed at rest')
    t.notOk(
      rows[0]!.row.includes(created.notificationSecret.slice('whsec_'.length)),
      'notification secret sealed at rest',
    )

    // A sealed value copied to another company does not open (AAD binds it to company and column).
    const other = newCompanyId()
    await createCompany(app, adminKey, other, 'foundation')
    await sql`insert into erp_connections (company_id, base_url, token_sealed, system, company_name, protocol_version,
      info, notification_secret_sealed)
    select ${other}, base_url, token_sealed, system, company_name, protocol_version, info, notification_secret_sealed
    from erp_connections where company_id = ${companyId}`.execute(app.db)
    const swapped = await app.inject({
      method: 'POST',
      url: `/v1/companies/${other}/erp/connection/test`,
      headers: auth(adminKey),
    })
    t.equal(swapped.statusCode, 500, 'a ciphertext from another company fails to open')
  },
)

t.test('replacing a connection needs If-Match, keeps the notification secret and re-tests the agent', async (t) => {
  const c = await connected(t, { env: { WORKER_ENABLED: 'false' } })
  const url = `/v1/companies/${c.companyId}/erp/connection`
  const body = { baseUrl: c.erp.url, token: c.erp.token }

  const noMatch = await c.app.inject({ method: 'PUT', url, headers: c.admin, payload: body })
  t.equal(noMatch.statusCode, 428)
  const stale = await c.app.inject({ method: 'PUT', url, headers: { ...c.admin, 'if-match': '"7"' }, payload: body })
  t.equal(stale.statusCode, 412)
  t.equal(stale.headers.etag, '"1"')

  const other = await standin(t, { system: 'foundation', companyName: 'Second agent' })
  const res = await c.app.inject({
    method: 'PUT',
    url,
    headers: { ...c.admin, 'if-match': '"1"' },
    payload: { baseUrl: other.url, token: other.token },
  })
  t.equal(res.statusCode, 200, res.body)
  t.equal(res.headers.etag, '"2"')
  t.notOk('notificationSecret' in res.json(), 'a replacement does not show or change the secret')
  t.equal(res.json().agent.companyName, 'Second agent')

  // A failing replacement changes nothing.
  const bad = await c.app.inject({
    method: 'PUT',
    url,
    headers: { ...c.admin, 'if-match': '"2"' },
    payload: { baseUrl: other.url, token: 'wrong' },
  })
  t.equal(bad.statusCode, 422)
  const after = await c.app.inject({ method: 'GET', url, headers: c.admin })
  t.equal(after.headers.etag, '"2"')
  t.equal(after.json().agent.companyName, 'Second agent')

  const fresh = await c.app.inject({
    method: 'PUT',
    url: `/v1/companies/${newCompanyId()}/erp/connection`,
    headers: c.admin,
    payload: body,
  })
  t.equal(fresh.statusCode, 404, 'unknown company')
})

t.test('a failing connection test says what failed and saves nothing', async (t) => {
  const { app, adminKey, auth } = await build(t, { WORKER_ENABLED: 'false' })
  const companyId = newCompanyId()
  await createCompany(app, adminKey, companyId, 'foundation')
  const url = `/v1/companies/${companyId}/erp/connection`
  const put = async (baseUrl: string, token = 'token') =>
    app.inject({ method: 'PUT', url, headers: auth(adminKey), payload: { baseUrl, token } })

  const closed = await fakeAgent(t, () => ({ status: 200, body: info() }))
  const closedPort = await new Promise<string>((resolve) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port
      s.close(() => resolve(`http://127.0.0.1:${port}`))
    })
  })
  const erp = await standin(t)
  const sage = await standin(t, { system: 'sage300' })
  const cases: Array<[string, string, string | undefined, RegExp]> = [
    ['unreachable', closedPort, undefined, /Could not reach the agent/],
    ['unauthorized', erp.url, 'not-the-token', /refused the token \(HTTP 401\)/],
    ['system_mismatch', sage.url, sage.token, /serves Sage 300 CRE .* registered with Foundation/],
    [
      'protocol_version_unsupported',
      await fakeAgent(t, () => ({ status: 200, body: info({ protocol_version: '2.0' }) })),
      undefined,
      /speaks ERP Connector Protocol 2\.0/,
    ],
    [
      'not_an_agent',
      await fakeAgent(t, () => ({ status: 404, body: { error: 'nope' } })),
      undefined,
      /does not answer as an ERP Connector Protocol/,
    ],
    [
      'not_an_agent',
      await fakeAgent(t, () => ({ status: 302, headers: { location: closed } })),
      undefined,
      /redirected/,
    ],
    [
      'not_an_agent',
      await fakeAgent(t, () => ({ status: 200, body: info({ limits: { max_page_size: 9000 } }) })),
      undefined,
      /\/limits/,
    ],
    [
      'agent_unavailable',
      await fakeAgent(t, () => ({ status: 503, headers: { 'retry-after': '600' }, body: {} })),
      undefined,
      /not available now \(HTTP 503\)/,
    ],
  ]
  for (const [code, baseUrl, token, message] of cases) {
    const res = await put(baseUrl, token)
    t.equal(res.statusCode, 422, `${code}: ${res.body}`)
    const body = problem(res)
    t.equal(body.code, 'erp_connection_test_failed')
    t.equal(body.check?.failure.code, code)
    t.match(body.check?.failure.message, message)
    t.match(body.detail, /Nothing was saved\.$/)
  }
  const got = await app.inject({ method: 'GET', url, headers: auth(adminKey) })
  t.equal(got.statusCode, 404, 'nothing was saved')
})

t.test(
  'the base URL must be https (http only on loopback unless allowed), without credentials, query or /v1',
  async (t) => {
    const apps = {
      strict: await build(t, { WORKER_ENABLED: 'false' }),
      lax: await build(t, { WORKER_ENABLED: 'false', ERP_ALLOW_HTTP: 'true' }),
    }
    for (const [which, baseUrl, accepted] of [
      ['strict', 'ftp://127.0.0.1/agent', false],
      ['strict', 'http://user:pass@127.0.0.1:1', false],
      ['strict', 'http://erp-agent.example.com', false],
      ['strict', 'https://127.0.0.1:1/agent?token=x', false],
      ['strict', 'https://127.0.0.1:1/v1', false],
      ['strict', 'not a url', false],
      ['lax', 'http://erp-agent.invalid', true],
      ['strict', 'http://[::1]:1', true],
    ] as const) {
      const { app, adminKey, auth } = apps[which]
      const companyId = newCompanyId()
      await createCompany(app, adminKey, companyId, 'foundation')
      const res = await app.inject({
        method: 'PUT',
        url: `/v1/companies/${companyId}/erp/connection`,
        headers: auth(adminKey),
        payload: { baseUrl, token: 'x' },
      })
      if (accepted) {
        // Past validation, the agent is simply not there.
        t.equal(res.statusCode, 422, baseUrl)
        t.equal(problem(res).check?.failure.code, 'unreachable')
      } else {
        t.equal(res.statusCode, 400, baseUrl)
        const body = problem(res)
        t.equal(body.code, 'invalid_base_url')
        t.equal(body.errors?.[0]?.pointer, '/body/baseUrl')
      }
    }
  },
)

t.test('POST …/connection/test reports the stored connection and keeps the outcome', async (t) => {
  const c = await connected(t, { env: { WORKER_ENABLED: 'false' } })
  const url = `/v1/companies/${c.companyId}/erp/connection/test`
  const ok = await c.app.inject({ method: 'POST', url, headers: c.admin })
  t.equal(ok.statusCode, 200)
  t.match(ok.json(), { ok: true, failure: null, agent: { system: 'foundation' } })

  c.erp.faults.push({ match: { pathPrefix: '/v1/info' }, status: 401 })
  const failed = await c.app.inject({ method: 'POST', url, headers: c.admin })
  t.equal(failed.statusCode, 200)
  t.match(failed.json(), { ok: false, failure: { code: 'unauthorized' } })
  const got = await c.app.inject({
    method: 'GET',
    url: `/v1/companies/${c.companyId}/erp/connection`,
    headers: c.admin,
  })
  t.match(got.json().lastCheck, { ok: false, failure: { code: 'unauthorized' } })
  t.equal(got.headers.etag, '"1"', 'a test is not a change of the connection')

  const viewer = await c.key('viewer')
  t.equal((await c.app.inject({ method: 'POST', url, headers: c.auth(viewer) })).statusCode, 403)
  const operator = await c.key('operator', [c.companyId])
  t.equal((await c.app.inject({ method: 'POST', url, headers: c.auth(operator) })).statusCode, 200)
  t.equal(
    (
      await c.app.inject({
        method: 'PUT',
        url: `/v1/companies/${c.companyId}/erp/connection`,
        headers: c.auth(operator),
        payload: { baseUrl: c.erp.url, token: c.erp.token },
      })
    ).statusCode,
    403,
  )
  const elsewhere = await c.key('admin', [])
  t.equal(
    (
      await c.app.inject({
        method: 'GET',
        url: `/v1/companies/${c.companyId}/erp/connection`,
        headers: c.auth(elsewhere),
      })
    ).statusCode,
    404,
  )
})

t.test(
  'rotating the notification secret returns a new one once and keeps the previous valid for the grace period',
  async (t) => {
    const c = await connected(t, { env: { WORKER_ENABLED: 'false' } })
    const url = `/v1/companies/${c.companyId}/erp/notification-secret`
    const noKey = await c.app.inject({ method: 'POST', url, headers: c.admin })
    t.equal(noKey.statusCode, 400)
    t.equal(problem(noKey).code, 'idempotency_key_required')

    const res = await c.app.inject({ method: 'POST', url, headers: { ...c.admin, 'idempotency-key': 'rotate-1' } })
    t.equal(res.statusCode, 200, res.body)
    const rotated = res.json()
    t.match(rotated.notificationSecret, /^whsec_/)
    t.not(rotated.notificationSecret, c.secret)
    t.ok(
      Date.parse(rotated.previousSecretValidUntil) > Date.now() + 23 * 3600_000,
      'previous secret valid for about 24 h',
    )

    const replay = await c.app.inject({ method: 'POST', url, headers: { ...c.admin, 'idempotency-key': 'rotate-1' } })
    t.equal(
      replay.json().notificationSecret,
      rotated.notificationSecret,
      'a retry with the same key does not rotate twice',
    )

    const got = await c.app.inject({
      method: 'GET',
      url: `/v1/companies/${c.companyId}/erp/connection`,
      headers: c.admin,
    })
    t.equal(got.json().notifications.previousSecretValidUntil, rotated.previousSecretValidUntil)
    t.equal(got.headers.etag, '"2"')

    const none = newCompanyId()
    await createCompany(c.app, c.adminKey, none, 'foundation')
    const missing = await c.app.inject({
      method: 'POST',
      url: `/v1/companies/${none}/erp/notification-secret`,
      headers: { ...c.admin, 'idempotency-key': 'rotate-2' },
    })
    t.equal(missing.statusCode, 404)
    const refresh = await c.app.inject({
      method: 'POST',
      url: `/v1/companies/${none}/erp/refresh`,
      headers: c.admin,
      payload: {},
    })
    t.equal(refresh.statusCode, 409)
    t.equal(problem(refresh).code, 'erp_not_connected')
  },
)
