// The Procore stand-in, exercised over real HTTP the way the service's client will use it.
import { createServer, type IncomingHttpHeaders } from 'node:http'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { startProcoreStandin, type ProcoreStandin, type ProcoreStandinOptions } from './procore/index.js'

const COMPANY = '4100'

async function standin(test: Test, opts: ProcoreStandinOptions = {}): Promise<ProcoreStandin> {
  const s = await startProcoreStandin(opts)
  test.teardown(() => s.close())
  s.addCompany(COMPANY, 'Acme Builders')
  return s
}

type Json = any

interface Res {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
  json: Json
}

async function call(
  s: ProcoreStandin,
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
  path: string,
  opts: {
    token?: string
    company?: string | null
    body?: unknown
    rawBody?: string
    form?: Record<string, string>
  } = {},
): Promise<Res> {
  const headers: Record<string, string> = {}
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`
  if (opts.company !== null) headers['procore-company-id'] = opts.company ?? COMPANY
  let body: string | undefined
  if (opts.form) {
    headers['content-type'] = 'application/x-www-form-urlencoded'
    body = new URLSearchParams(opts.form).toString()
  } else if (opts.rawBody !== undefined || opts.body !== undefined) {
    headers['content-type'] = 'application/json'
    body = opts.rawBody ?? JSON.stringify(opts.body)
  }
  const res = await request(`${s.url}${path}`, { method, headers, ...(body === undefined ? {} : { body }) })
  const text = await res.body.text()
  let json: unknown
  try {
    json = text === '' ? undefined : JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: res.statusCode, headers: res.headers, text, json }
}

const clientCredentials = {
  grant_type: 'client_credentials',
  client_id: 'standin-client',
  client_secret: 'standin-secret',
}

/** A local webhook endpoint; `respond` picks the status for the n-th request (1-based). */
async function receiver(test: Test, respond: (n: number) => number = () => 200) {
  const got: Array<{ headers: IncomingHttpHeaders; body: string; json: Json }> = []
  const server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => (body += chunk))
    req.on('end', () => {
      got.push({ headers: req.headers, body, json: JSON.parse(body) })
      res.statusCode = respond(got.length)
      res.end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  test.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  return { url: `http://127.0.0.1:${port}/procore/webhooks`, got }
}

async function installHook(
  t: Test,
  s: ProcoreStandin,
  token: string,
  url: string,
  apiVersion: string,
  secret: string,
  resourceName: string,
  eventType = 'update',
) {
  const hook = await call(s, 'POST', '/rest/v1.0/webhooks/hooks', {
    token,
    body: {
      company_id: Number(COMPANY),
      hook: {
        api_version: apiVersion,
        namespace: 'acme-erp-sync',
        destination_url: url,
        destination_headers: { Authorization: secret },
      },
    },
  })
  t.equal(hook.status, 201, 'hook created')
  const trigger = await call(s, 'POST', `/rest/v1.0/webhooks/hooks/${hook.json.id}/triggers`, {
    token,
    body: {
      company_id: Number(COMPANY),
      api_version: apiVersion,
      trigger: { resource_name: resourceName, event_type: eventType },
    },
  })
  t.equal(trigger.status, 201, 'trigger created')
  return hook.json
}

void t.test('client credentials: bearer token without refresh token, accepted by the API', async (t) => {
  const s = await standin(t)
  const form = await call(s, 'POST', '/oauth/token', { company: null, form: clientCredentials })
  t.equal(form.status, 200)
  t.match(form.json, { token_type: 'bearer', expires_in: 5400, created_at: Number })
  t.type(form.json.access_token, 'string')
  t.notOk('refresh_token' in form.json, 'client credentials get no refresh token')

  const json = await call(s, 'POST', '/oauth/token', { company: null, body: clientCredentials })
  t.equal(json.status, 200, 'JSON bodies work too')

  const wrong = await call(s, 'POST', '/oauth/token', {
    company: null,
    form: { ...clientCredentials, client_secret: 'nope' },
  })
  t.equal(wrong.status, 401)
  t.equal(wrong.json.error, 'invalid_client')

  const token = form.json.access_token as string
  t.equal(
    (await call(s, 'GET', '/rest/v1.0/me', { token, company: null })).status,
    400,
    'a DMSA token needs Procore-Company-Id even on /me',
  )
  const me = await call(s, 'GET', '/rest/v1.0/me', { token })
  t.equal(me.status, 200)
  t.match(me.json, { id: Number, login: String })
  t.equal(s.oauth.tokenCalls, 3)

  const bad = await call(s, 'GET', `/rest/v1.0/vendors?company_id=${COMPANY}`, { token: 'not-a-token' })
  t.equal(bad.status, 401)
  t.same(bad.json, { errors: 'The access token is invalid' })

  s.oauth.expireAll()
  const expired = await call(s, 'GET', `/rest/v1.0/vendors?company_id=${COMPANY}`, { token })
  t.equal(expired.status, 401, 'expired tokens are refused')
  t.match(expired.headers['www-authenticate'], /expired/)
})

void t.test('authorization code, refresh rotation, reused refresh token rejected', async (t) => {
  const s = await standin(t)
  const redirectUri = 'http://localhost:9999/callback'
  const authorize = await call(
    s,
    'GET',
    `/oauth/authorize?response_type=code&client_id=standin-client` +
      `&redirect_uri=${encodeURIComponent(redirectUri)}&state=xyz`,
    {
      company: null,
    },
  )
  t.equal(authorize.status, 302)
  const location = new URL(String(authorize.headers.location))
  t.equal(`${location.origin}${location.pathname}`, redirectUri)
  t.equal(location.searchParams.get('state'), 'xyz')
  const code = location.searchParams.get('code') ?? ''

  const exchange = {
    grant_type: 'authorization_code',
    client_id: 'standin-client',
    client_secret: 'standin-secret',
    code,
    redirect_uri: redirectUri,
  }
  const first = await call(s, 'POST', '/oauth/token', { company: null, form: exchange })
  t.equal(first.status, 200)
  t.type(first.json.refresh_token, 'string')
  t.equal(
    (await call(s, 'POST', '/oauth/token', { company: null, form: exchange })).json.error,
    'invalid_grant',
    'codes are single-use',
  )

  const user = await call(s, 'GET', '/rest/v1.0/me', { token: first.json.access_token, company: null })
  t.equal(user.status, 200, 'a user token may call /me without the company header')
  const info = await call(s, 'GET', '/oauth/token/info', { token: first.json.access_token, company: null })
  t.match(info.json, { resource_owner_id: user.json.id, application: { uid: 'standin-client' } })

  const refresh = (token: string) =>
    call(s, 'POST', '/oauth/token', {
      company: null,
      body: {
        grant_type: 'refresh_token',
        client_id: 'standin-client',
        client_secret: 'standin-secret',
        refresh_token: token,
        redirect_uri: redirectUri,
      },
    })
  const second = await refresh(first.json.refresh_token)
  t.equal(second.status, 200)
  t.not(second.json.refresh_token, first.json.refresh_token, 'refresh tokens rotate')
  const reused = await refresh(first.json.refresh_token)
  t.equal(reused.status, 400)
  t.equal(reused.json.error, 'invalid_grant', 'a used refresh token is dead')
  t.equal((await refresh(second.json.refresh_token)).status, 200, 'the new one works once')
  t.equal(s.oauth.refreshCalls, 3)

  await call(s, 'POST', '/oauth/revoke', {
    company: null,
    form: { token: second.json.access_token, client_id: 'standin-client', client_secret: 'standin-secret' },
  })
  t.equal(
    (await call(s, 'GET', '/rest/v1.0/me', { token: second.json.access_token, company: null })).status,
    401,
    'revoked',
  )
})

void t.test('company header: missing → 400, unknown company → 403, mismatching company_id → 403', async (t) => {
  const s = await standin(t)
  const token = s.oauth.accessToken()
  const missing = await call(s, 'GET', `/rest/v1.0/vendors?company_id=${COMPANY}`, { token, company: null })
  t.equal(missing.status, 400)
  t.same(missing.json, { errors: 'Missing Procore-Company-Id header!' })
  t.equal((await call(s, 'GET', `/rest/v1.0/vendors?company_id=77`, { token, company: '77' })).status, 403)
  s.addCompany('4200', 'Other Co')
  t.equal((await call(s, 'GET', `/rest/v1.0/vendors?company_id=4200`, { token })).status, 403)
  const ok = await call(s, 'GET', `/rest/v1.0/vendors?company_id=${COMPANY}`, { token })
  t.equal(ok.status, 200)
  t.type(ok.headers['x-request-id'], 'string')
  t.equal(ok.headers['x-rate-limit-limit'], '100000')
  t.same(
    s.calls.map((c) => c.status),
    [400, 403, 403, 200],
  )
})

void t.test('pagination: Total, Per-Page and Link across three pages', async (t) => {
  const s = await standin(t)
  const token = s.oauth.accessToken()
  for (let i = 1; i <= 25; i++) s.seed(COMPANY, 'vendors', { name: `Vendor ${i}` })

  const first = await call(s, 'GET', `/rest/v1.0/vendors?company_id=${COMPANY}&per_page=10`, { token })
  t.equal(first.headers.total, '25')
  t.equal(first.headers['per-page'], '10')
  const rels = (res: Res) => [...String(res.headers.link ?? '').matchAll(/rel="(\w+)"/g)].map((m) => m[1])
  t.same(rels(first), ['next', 'last'])
  const middle = await call(s, 'GET', `/rest/v1.0/vendors?company_id=${COMPANY}&per_page=10&page=2`, { token })
  t.same(rels(middle), ['first', 'prev', 'next', 'last'])

  const seen: number[] = []
  let res = first
  let pages = 1
  for (;;) {
    seen.push(...(res.json as Array<{ id: number }>).map((v) => v.id))
    const next = /<([^>]+)>; rel="next"/.exec(String(res.headers.link ?? ''))?.[1]
    if (!next) break
    t.ok(next.startsWith(s.url), 'links are absolute')
    res = await call(s, 'GET', next.slice(s.url.length), { token })
    pages++
  }
  t.equal(pages, 3)
  t.equal(new Set(seen).size, 25, 'every vendor exactly once')
  t.same(rels(res), ['first', 'prev'], 'no next on the last page')

  const clamped = await call(s, 'GET', `/rest/v1.0/vendors?company_id=${COMPANY}&per_page=5000`, { token })
  t.equal(clamped.headers['per-page'], '1000')
})

void t.test('filters: updated_at range, origin_id, id[]; departments ignore filters', async (t) => {
  const s = await standin(t)
  const token = s.oauth.accessToken()
  const [a, b, c] = [
    s.seed(COMPANY, 'vendors', { name: 'A', origin_id: 'V-A' }),
    s.seed(COMPANY, 'vendors', { name: 'B' }),
    s.seed(COMPANY, 'vendors', { name: 'C' }),
  ]
  const since = new Date(Date.parse(c.updated_at) + 1).toISOString()
  const changed = s.change(COMPANY, 'vendors', a.id, { name: 'A2' }, { emit: false })
  t.ok(changed.updated_at >= since, 'the change lies inside the range, the seeds before it')

  const range = `${since}...${new Date(Date.now() + 60_000).toISOString()}`
  const byTime = await call(
    s,
    'GET',
    `/rest/v1.0/vendors?company_id=${COMPANY}&filters[updated_at]=${encodeURIComponent(range)}`,
    { token },
  )
  t.same(
    byTime.json.map((v: { name: string }) => v.name),
    ['A2'],
  )
  const byOrigin = await call(s, 'GET', `/rest/v1.0/vendors?company_id=${COMPANY}&filters[origin_id]=V-A`, { token })
  t.equal(byOrigin.json.length, 1)
  const byIds = await call(
    s,
    'GET',
    `/rest/v1.0/vendors?company_id=${COMPANY}&filters[id][]=${a.id}&filters[id][]=${b.id}`,
    { token },
  )
  t.equal(byIds.json.length, 2)

  s.seed(COMPANY, 'departments', { name: 'Accounting' })
  const departments = await call(
    s,
    'GET',
    `/rest/v1.0/departments?company_id=${COMPANY}&filters[updated_at]=${encodeURIComponent(range)}`,
    { token },
  )
  t.equal(departments.json.length, 1, 'departments have no filters, so the filter is ignored')
})

void t.test('sync: create by origin_id, re-send is idempotent, per-item errors with 200', async (t) => {
  const s = await standin(t)
  const token = s.oauth.accessToken()
  const updates = [
    { origin_id: 'V-1', name: 'Alpha Steel', origin_code: 'ALP' },
    { origin_id: 'V-2', name: 'Beta Concrete' },
    { origin_id: 'V-3' },
    { id: 999, name: 'Ghost' },
  ]
  const first = await call(s, 'PATCH', '/rest/v1.0/vendors/sync', {
    token,
    body: { company_id: Number(COMPANY), updates },
  })
  t.equal(first.status, 200, 'sync always answers 200')
  t.equal(first.json.entities.length, 2)
  t.match(first.json.errors, [
    { origin_id: 'V-3', errors: { name: [String] } },
    { id: 999, name: 'Ghost', errors: { id: [String] } },
  ])
  t.equal(s.list(COMPANY, 'vendors').length, 2)

  const again = await call(s, 'PATCH', '/rest/v1.0/vendors/sync', {
    token,
    body: { company_id: Number(COMPANY), updates },
  })
  t.same(
    again.json.entities.map((e: { id: number }) => e.id),
    first.json.entities.map((e: { id: number }) => e.id),
    'same records',
  )
  t.equal(s.list(COMPANY, 'vendors').length, 2, 're-sending creates nothing new')

  const alpha = first.json.entities[0]
  const relink = await call(s, 'PATCH', '/rest/v1.0/vendors/sync', {
    token,
    body: { company_id: COMPANY, updates: [{ id: alpha.id, origin_id: 'V-100' }] },
  })
  t.equal(relink.json.entities[0].origin_id, 'V-100', 'id + origin_id changes the origin_id')

  const duplicate = await call(s, 'POST', '/rest/v1.0/vendors', {
    token,
    body: { company_id: COMPANY, vendor: { name: 'Dup', origin_id: 'V-2' } },
  })
  t.equal(duplicate.status, 409, 'origin_id is unique per company')
  const blank = await call(s, 'POST', '/rest/v1.0/vendors', {
    token,
    body: { company_id: COMPANY, vendor: { name: '' } },
  })
  t.equal(blank.status, 422)
  t.match(blank.json, { errors: { name: [String] } })
  t.equal((await call(s, 'GET', `/rest/v1.0/vendors/123?company_id=${COMPANY}`, { token })).status, 404)

  const tooMany = Array.from({ length: 1001 }, (_, i) => ({ origin_id: `X-${i}`, name: `X ${i}` }))
  t.equal(
    (await call(s, 'PATCH', '/rest/v1.0/vendors/sync', { token, body: { company_id: COMPANY, updates: tooMany } }))
      .status,
    413,
  )
})

void t.test('ids beyond 2^53 round-trip as bare JSON integers', async (t) => {
  const s = await standin(t)
  const token = s.oauth.accessToken()
  const big = '9007199254740993'
  s.addCompany(big, 'Big Region Co')
  s.seed(big, 'departments', { id: '9007199254740997', name: 'Ops' })
  s.seed(big, 'projects', { id: '9007199254740995', name: 'Tower', project_number: 'T-1' })

  const patched = await call(s, 'PATCH', `/rest/v1.0/projects/9007199254740995`, {
    token,
    company: big,
    rawBody: `{"company_id":${big},"project":{"department_ids":[9007199254740997],"erp_integrated":true}}`,
  })
  t.equal(patched.status, 200)
  t.match(patched.text, '"id":9007199254740995', 'record id is an unrounded integer')
  t.match(patched.text, `"company":{"id":${big},`)
  t.match(patched.text, '"departments":[{"id":9007199254740997,"name":"Ops"}]')
  t.match(patched.text, '"is_erp_integrated":true')
  t.same(s.get(big, 'projects', '9007199254740995')?.department_ids, ['9007199254740997'])

  const created = await call(s, 'POST', '/rest/v1.0/vendors', {
    token,
    company: big,
    rawBody: `{"company_id":${big},"vendor":{"name":"V","origin_id":"123"}}`,
  })
  t.equal(created.status, 201)
  t.match(created.text, /"origin_id":"123"/, 'origin_id stays a string')
})

void t.test('rate limit: headers on every response, 429 with Retry-After when over', async (t) => {
  const s = await standin(t, { rateLimit: { limit: 2, windowMs: 60_000 } })
  const token = s.oauth.accessToken()
  const path = `/rest/v1.0/projects?company_id=${COMPANY}`
  const r1 = await call(s, 'GET', path, { token })
  const r2 = await call(s, 'GET', path, { token })
  const r3 = await call(s, 'GET', path, { token })
  t.same([r1.status, r2.status, r3.status], [200, 200, 429])
  t.same(
    [r1.headers['x-rate-limit-remaining'], r2.headers['x-rate-limit-remaining'], r3.headers['x-rate-limit-remaining']],
    ['1', '0', '0'],
  )
  t.equal(r3.headers['x-rate-limit-limit'], '2')
  t.ok(Number(r3.headers['x-rate-limit-reset']) >= Math.floor(Date.now() / 1000), 'reset is a Unix time in seconds')
  t.ok(Number(r3.headers['retry-after']) >= 1)
  const other = await call(s, 'GET', path, { token, company: '4200' })
  t.equal(other.status, 403, 'a different company is a different bucket (and here unknown)')
})

void t.test('faults: scripted statuses, resets, redirects, bad bodies, delays', async (t) => {
  const s = await standin(t)
  const token = s.oauth.accessToken()
  const path = `/rest/v1.0/vendors?company_id=${COMPANY}`
  s.faults.push({ match: { pathPrefix: '/rest/v1.0/vendors' }, status: 503, retryAfterSeconds: 120, times: 2 })
  s.faults.push({ match: { method: 'GET' }, status: 429, rateLimitResetInSeconds: 40 })
  s.faults.push({ resetConnection: true })
  s.faults.push({ redirectTo: 'http://127.0.0.1:1/canary' })
  s.faults.push({ rawBody: '{"truncated": ' })
  s.faults.push({ delayMs: 20 })

  const a = await call(s, 'GET', path, { token })
  const b = await call(s, 'GET', path, { token })
  t.same([a.status, b.status, a.headers['retry-after']], [503, 503, '120'])
  const limited = await call(s, 'GET', path, { token })
  t.equal(limited.status, 429)
  t.ok(Number(limited.headers['x-rate-limit-reset']) >= Math.floor(Date.now() / 1000) + 39)
  await t.rejects(call(s, 'GET', path, { token }), 'socket reset')
  const redirect = await call(s, 'GET', path, { token })
  t.equal(redirect.status, 302)
  t.equal(redirect.headers.location, 'http://127.0.0.1:1/canary')
  const raw = await call(s, 'GET', path, { token })
  t.same([raw.status, raw.json], [200, undefined], 'unparseable body')
  t.equal((await call(s, 'GET', path, { token })).status, 200, 'a delay alone lets the request through')
  t.equal((await call(s, 'GET', path, { token })).status, 200, 'faults are used up')
  t.equal(s.calls.find((c) => c.status === 0)?.path, '/rest/v1.0/vendors', 'a reset call is recorded with status 0')
})

void t.test('webhooks: v2 and v4 payloads with the stored Authorization header', async (t) => {
  const s = await standin(t)
  const token = s.oauth.accessToken()
  const endpoint = await receiver(t)
  const v2 = await installHook(t, s, token, endpoint.url, 'v2', 'Bearer v2-secret', 'Company Vendors')
  await installHook(t, s, token, endpoint.url, 'v4.0', 'Bearer v4-secret', 'Company Vendors')

  const vendor = s.seed(COMPANY, 'vendors', { name: 'Alpha' })
  s.change(COMPANY, 'vendors', vendor.id, { name: 'Alpha Steel' })
  await s.webhooks.idle()
  t.equal(endpoint.got.length, 2)
  const sent = (secret: string) => endpoint.got.find((g) => g.headers.authorization === secret)
  const legacy = sent('Bearer v2-secret')
  const modern = sent('Bearer v4-secret')
  t.equal(legacy?.headers['content-type'], 'application/json')
  t.match(legacy?.json, {
    id: Number,
    ulid: /^[0-9A-HJKMNP-TV-Z]{26}$/,
    timestamp: String,
    metadata: { source_company_id: Number(COMPANY), source_application_id: null },
    company_id: Number(COMPANY),
    project_id: null,
    api_version: 'v2.0',
    event_type: 'update',
    resource_name: 'Company Vendors',
    resource_id: Number(vendor.id),
  })
  t.match(legacy?.body, `"resource_id":${vendor.id}`, 'integer ids in v2')
  t.same(modern?.json, {
    id: legacy?.json.ulid,
    timestamp: legacy?.json.timestamp,
    reason: 'update',
    company_id: COMPANY,
    project_id: null,
    user_id: String(legacy?.json.user_id),
    resource_type: 'Company Vendors',
    resource_id: vendor.id,
  })

  // A change made through the API names the calling app, so the service can drop its own echoes.
  const patched = await call(s, 'PATCH', `/rest/v1.0/vendors/${vendor.id}`, {
    token,
    body: { company_id: COMPANY, vendor: { name: 'Alpha Steel Inc' } },
  })
  t.equal(patched.status, 200)
  await s.webhooks.idle()
  const echo = endpoint.got.find(
    (g) => g.headers.authorization === 'Bearer v2-secret' && g.json.metadata.source_application_id !== null,
  )
  t.equal(echo?.json.metadata.source_application_id, 'standin-client')
  const unchanged = await call(s, 'PATCH', `/rest/v1.0/vendors/${vendor.id}`, {
    token,
    body: { company_id: COMPANY, vendor: { name: 'Alpha Steel Inc' } },
  })
  t.equal(unchanged.status, 200)
  await s.webhooks.idle()
  t.equal(endpoint.got.length, 4, 'a write that changes nothing emits nothing')

  const deliveries = await call(
    s,
    'GET',
    `/rest/v1.0/webhooks/hooks/${v2.id}/deliveries?company_id=${COMPANY}&filters[status]=successful&page_size=1`,
    { token },
  )
  t.equal(deliveries.json.length, 1)
  t.match(deliveries.json[0], {
    outcome: 'ok',
    response_status: 200,
    event: { resource_name: 'Company Vendors', event_type: 'update' },
  })
  const nextPage = await call(
    s,
    'GET',
    `/rest/v1.0/webhooks/hooks/${v2.id}/deliveries?company_id=${COMPANY}&page_size=100` +
      `&page_start=${deliveries.json[0].id}`,
    { token },
  )
  t.equal(nextPage.json.length, 1, 'cursor paging continues after page_start')
})

void t.test('webhooks: a failing endpoint pauses its queue, retries with backoff, keeps order', async (t) => {
  const s = await standin(t, { webhookRetry: { initialDelayMs: 5, maxDelayMs: 20, discardAfterMs: 60_000 } })
  const token = s.oauth.accessToken()
  const endpoint = await receiver(t, (n) => (n <= 2 ? 500 : 204))
  await installHook(t, s, token, endpoint.url, 'v2', 'Bearer s', 'Departments', 'create')

  const ids = ['D1', 'D2', 'D3'].map((name) => s.seed(COMPANY, 'departments', { name }).id)
  for (const id of ids) s.webhooks.emit(COMPANY, 'Departments', 'create', id)
  await s.webhooks.idle()

  t.same(
    endpoint.got.map((g) => String(g.json.resource_id)),
    [ids[0], ids[0], ids[0], ids[1], ids[2]],
    'the head is retried until it succeeds; later events wait behind it',
  )
  t.same(
    s.webhooks.deliveries().map((d) => d.outcome),
    ['retried', 'retried', 'ok', 'ok', 'ok'],
  )
})

void t.test('webhooks: continuous failure beyond the discard window flushes the queue', async (t) => {
  const s = await standin(t, { webhookRetry: { initialDelayMs: 2, maxDelayMs: 5, discardAfterMs: 30 } })
  const token = s.oauth.accessToken()
  const endpoint = await receiver(t, () => 503)
  const hook = await installHook(t, s, token, endpoint.url, 'v2', 'Bearer s', 'Departments', 'delete')
  s.webhooks.emit(COMPANY, 'Departments', 'delete', '1')
  s.webhooks.emit(COMPANY, 'Departments', 'delete', '2')
  await s.webhooks.idle()

  const outcomes = s.webhooks.deliveries().map((d) => d.outcome)
  t.ok(outcomes.filter((o) => o === 'retried').length >= 1)
  t.same(outcomes.slice(-2), ['failed', 'discarded'], 'the failing event fails, the queued one is discarded')
  t.ok(
    endpoint.got.every((g) => g.json.resource_id === 1),
    'the second event was never sent',
  )
  const discarded = await call(
    s,
    'GET',
    `/rest/v1.0/webhooks/hooks/${hook.id}/deliveries?company_id=${COMPANY}&filters[status]=discarded`,
    { token },
  )
  t.equal(discarded.json.length, 1)
})

void t.test('webhooks: duplicates carry the same id and ulid', async (t) => {
  const s = await standin(t)
  const token = s.oauth.accessToken()
  const endpoint = await receiver(t)
  await installHook(t, s, token, endpoint.url, 'v3.0', 'Bearer s', 'Projects')
  const project = s.seed(COMPANY, 'projects', { name: 'Tower' })

  s.webhooks.emit(COMPANY, 'Projects', 'update', project.id, { duplicate: 2 })
  await s.webhooks.idle()
  t.equal(endpoint.got.length, 3)
  t.equal(new Set(endpoint.got.map((g) => g.json.ulid)).size, 1)
  t.same(endpoint.got[0]?.json.related_resources, [], 'v3 adds related_resources')

  s.webhooks.setDuplicateRate(1)
  s.change(COMPANY, 'projects', project.id, { name: 'Tower II' })
  await s.webhooks.idle()
  t.equal(endpoint.got.length, 5)
  t.equal(endpoint.got[3]?.json.id, endpoint.got[4]?.json.id)
})

void t.test('webhooks API: namespaces, trigger validation, bulk triggers', async (t) => {
  const s = await standin(t)
  const token = s.oauth.accessToken()
  const bad = await call(s, 'POST', '/rest/v1.0/webhooks/hooks', {
    token,
    body: {
      company_id: COMPANY,
      hook: { namespace: 'Acme_ERP', destination_url: 'https://example.com/h', api_version: 'v2' },
    },
  })
  t.equal(bad.status, 422)
  t.match(bad.json, { errors: { namespace: [String] } })

  const hook = await call(s, 'POST', '/rest/v1.0/webhooks/hooks', {
    token,
    body: {
      company_id: COMPANY,
      hook: { namespace: 'acme-erp', destination_url: 'https://example.com/h', api_version: 'v4.0' },
    },
  })
  t.equal(hook.status, 201)
  t.match(hook.json, { owned_by_company_id: Number(COMPANY), owned_by_project_id: null, namespace: 'acme-erp' })
  t.equal(
    (await call(s, 'GET', `/rest/v1.0/webhooks/hooks?company_id=${COMPANY}&namespace=acme-erp`, { token })).json.length,
    1,
  )
  t.equal(
    (await call(s, 'GET', `/rest/v1.0/webhooks/hooks?company_id=${COMPANY}&namespace=other`, { token })).json.length,
    0,
  )
  t.equal(
    (await call(s, 'GET', `/rest/v1.0/webhooks/hooks?company_id=${COMPANY}&namespace=*`, { token })).json.length,
    1,
  )

  const bulk = await call(s, 'POST', `/rest/v1.0/webhooks/hooks/${hook.json.id}/triggers/bulk`, {
    token,
    body: {
      company_id: COMPANY,
      api_version: 'v4.0',
      triggers: [
        { resource_name: 'Projects', event_type: 'create' },
        { resource_name: 'Projects', event_type: 'delete' },
        { resource_name: 'ERP Requests', event_type: 'create' },
      ],
    },
  })
  t.equal(bulk.status, 207)
  t.equal(bulk.json.success.length, 2)
  t.match(bulk.json.failed, [{ code: 422, trigger: { event_type: 'delete' }, errors: { event_type: [String] } }])
  const tooMany = Array.from({ length: 501 }, () => ({ resource_name: 'Projects', event_type: 'update' }))
  t.equal(
    (
      await call(s, 'POST', `/rest/v1.0/webhooks/hooks/${hook.json.id}/triggers/bulk`, {
        token,
        body: { company_id: COMPANY, triggers: tooMany },
      })
    ).status,
    413,
  )
  t.equal(s.webhooks.triggers().length, 2)
})

void t.test('cost codes: ERP-integrated projects only accept sync; standard codes list a minimal view', async (t) => {
  const s = await standin(t)
  const token = s.oauth.accessToken()
  const list = s.seed(COMPANY, 'standard_cost_code_lists', { name: 'ERP list', is_erp_list: true })
  const second = await call(s, 'POST', '/rest/v1.0/standard_cost_code_lists', {
    token,
    body: { company_id: COMPANY, standard_cost_code_list: { name: 'Another', is_erp_list: true } },
  })
  t.equal(second.status, 422, 'one ERP list per company')

  const std = await call(s, 'PATCH', '/rest/v1.0/standard_cost_codes/sync', {
    token,
    body: {
      company_id: COMPANY,
      standard_cost_code_list_id: list.id,
      updates: [{ code: '01', name: 'General', origin_id: 'CC-01' }],
    },
  })
  t.equal(std.json.entities.length, 1)
  const listed = await call(
    s,
    'GET',
    `/rest/v1.0/standard_cost_codes?company_id=${COMPANY}&standard_cost_code_list_id=${list.id}`,
    { token },
  )
  t.same(Object.keys(listed.json[0]), ['id', 'standard_cost_code_list_id'], 'default view')
  const extended = await call(
    s,
    'GET',
    `/rest/v1.0/standard_cost_codes?company_id=${COMPANY}&standard_cost_code_list_id=${list.id}&view=extended`,
    { token },
  )
  t.match(extended.json[0], { code: '01', name: 'General', origin_id: 'CC-01', full_code: '01' })

  const project = await call(s, 'POST', '/rest/v1.0/projects', {
    token,
    body: { company_id: COMPANY, project: { name: 'Job 7', project_number: '7', erp_integrated: true } },
  })
  t.equal(project.status, 201)
  t.match(project.json, {
    is_erp_integrated: true,
    standard_cost_code_list_id: Number(list.id),
    display_name: '7 - Job 7',
  })
  const plain = await call(s, 'POST', '/rest/v1.0/cost_codes', {
    token,
    body: { project_id: project.json.id, cost_code: { code: '01', name: 'General' } },
  })
  t.equal(plain.status, 422)
  const synced = await call(s, 'PATCH', `/rest/v1.0/cost_codes/sync?project_id=${project.json.id}`, {
    token,
    body: {
      updates: [{ code: '01', name: 'General', origin_id: 'JOB7-01', standard_cost_code_id: std.json.entities[0].id }],
    },
  })
  t.equal(synced.status, 200)
  t.match(synced.json.entities[0], {
    biller_type: 'Project',
    biller_id: project.json.id,
    standard_cost_code_list_id: Number(list.id),
  })
  t.equal((await call(s, 'GET', `/rest/v1.0/cost_codes?project_id=${project.json.id}`, { token })).json.length, 1)
})

void t.test('users: v1.3 company paths, no origin_code, inactive users listed apart', async (t) => {
  const s = await standin(t)
  const token = s.oauth.accessToken()
  const base = `/rest/v1.3/companies/${COMPANY}/users`
  const created = await call(s, 'POST', base, {
    token,
    body: { user: { first_name: 'Ann', last_name: 'Lee', email_address: 'ann@example.com', origin_code: 'X' } },
  })
  t.equal(created.status, 201)
  t.equal(created.json.name, 'Ann Lee')
  t.notOk('origin_code' in created.json)
  const sync = await call(s, 'PATCH', `${base}/sync`, {
    token,
    body: { updates: [{ last_name: 'Lee', email_address: 'ANN@example.com' }] },
  })
  t.match(sync.json.errors, [{ errors: { email_address: ['has already been taken'] } }])
  s.change(COMPANY, 'users', String(created.json.id), { is_active: false }, { emit: false })
  t.equal((await call(s, 'GET', base, { token })).json.length, 0)
  t.equal((await call(s, 'GET', `${base}/inactive`, { token })).json.length, 1)
})

void t.test('projects: active only unless filters[by_status] says otherwise; bad JSON is a 400', async (t) => {
  const s = await standin(t)
  const token = s.oauth.accessToken()
  s.seed(COMPANY, 'projects', { name: 'Live' })
  s.seed(COMPANY, 'projects', { name: 'Closed', active: false })
  const names = async (query: string) =>
    (await call(s, 'GET', `/rest/v1.0/projects?company_id=${COMPANY}${query}`, { token })).json.map(
      (p: { name: string }) => p.name,
    )
  t.same(await names(''), ['Live'])
  t.same(await names('&filters[by_status]=Inactive'), ['Closed'])
  t.same(await names('&filters[by_status]=All'), ['Live', 'Closed'])

  const broken = await call(s, 'POST', '/rest/v1.0/projects', { token, rawBody: '{"company_id": 4100, "project": {' })
  t.equal(broken.status, 400)
  t.type(broken.json.errors, 'string')
  t.equal(
    (await call(s, 'POST', '/rest/v1.0/projects', { token, body: { company_id: COMPANY } })).status,
    400,
    'missing wrapper',
  )
})

void t.test('webhooks: project hooks get their project only; company hooks get every project', async (t) => {
  const s = await standin(t)
  const token = s.oauth.accessToken()
  const [p1, p2] = [s.seed(COMPANY, 'projects', { name: 'P1' }), s.seed(COMPANY, 'projects', { name: 'P2' })]
  const endpoint = await receiver(t)
  const projectHook = await call(s, 'POST', '/rest/v1.0/webhooks/hooks', {
    token,
    body: {
      project_id: p1.id,
      hook: {
        api_version: 'v2',
        namespace: 'acme',
        destination_url: endpoint.url,
        destination_headers: { Authorization: 'project' },
      },
    },
  })
  t.equal(projectHook.status, 201)
  t.match(projectHook.json, { owned_by_project_id: Number(p1.id), owned_by_company_id: null })
  const trigger = await call(s, 'POST', `/rest/v1.0/webhooks/hooks/${projectHook.json.id}/triggers`, {
    token,
    body: { project_id: p1.id, trigger: { resource_name: 'Cost Codes', event_type: 'create' } },
  })
  t.equal(trigger.status, 201)
  await installHook(t, s, token, endpoint.url, 'v2', 'company', 'Cost Codes', 'create')

  for (const project of [p1, p2]) {
    const created = await call(s, 'POST', '/rest/v1.0/cost_codes', {
      token,
      body: { project_id: project.id, cost_code: { code: '01', name: 'General' } },
    })
    t.equal(created.status, 201)
  }
  await s.webhooks.idle()
  const seen = endpoint.got.map((g) => `${String(g.headers.authorization)}:${g.json.project_id}`).sort()
  t.same(seen, [`company:${p1.id}`, `company:${p2.id}`, `project:${p1.id}`].sort())
})
