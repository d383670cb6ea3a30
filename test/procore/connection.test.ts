// Connecting a company (service account, OAuth with a signed single-use expiring state),
// its state without secrets, disconnecting, and T17: secrets never readable in the database,
// the logs or responses; sealed values bound to their company.
import { Writable } from 'node:stream'
import { sql } from 'kysely'
import t from 'tap'
import type { Db } from '../../src/db/database.js'
import { unseal } from '../../src/procore/connection.js'
import { procoreRecords } from '../../src/sync/sides.js'
import {
  CLIENT,
  COMPANY,
  connectOAuth,
  connectServiceAccount,
  harness,
  installWebhook,
  newUlid,
  v2Event,
  type Harness,
} from './fixtures/harness.js'

const connect = (h: Harness, payload: unknown, companyId = COMPANY) =>
  h.app.inject({
    method: 'POST',
    url: `/v1/companies/${companyId}/procore/connect`,
    headers: h.admin,
    payload: payload as Record<string, unknown>,
  })
const state = (h: Harness) => h.app.inject({ method: 'GET', url: `/v1/companies/${COMPANY}/procore`, headers: h.admin })

// Generous but bounded: these run many apps and Procore round trips on a shared 2-core machine.
t.setTimeout(300_000)

t.test('service account: checked against Procore before it is stored', async (t) => {
  const h = await harness(t)
  t.match((await state(h)).json(), { status: 'not_connected', mode: null, webhook: null })

  const wrong = await connect(h, { mode: 'client_credentials', clientId: CLIENT.id, clientSecret: 'not-the-secret' })
  t.equal(wrong.statusCode, 422)
  t.equal(wrong.json().code, 'procore_credentials_rejected')
  t.match(wrong.headers['content-type'], /problem\+json/)

  // A company Procore does not know for these credentials (the app is not installed there).
  await h.app.inject({
    method: 'POST',
    url: '/v1/companies',
    headers: h.admin,
    payload: { id: '999', name: 'Elsewhere', erpSystem: 'vista' },
  })
  const elsewhere = await connect(
    h,
    { mode: 'client_credentials', clientId: CLIENT.id, clientSecret: CLIENT.secret },
    '999',
  )
  t.equal(elsewhere.statusCode, 422)
  t.equal(elsewhere.json().code, 'procore_company_not_accessible')
  t.notOk(
    await h.app.db.selectFrom('procore_connections').select('company_id').executeTakeFirst(),
    'nothing stored for refused credentials',
  )

  const ok = await connect(h, { mode: 'client_credentials', clientId: CLIENT.id, clientSecret: CLIENT.secret })
  t.equal(ok.statusCode, 200)
  t.match(ok.json(), {
    connection: { status: 'connected', mode: 'client_credentials', clientId: CLIENT.id },
    authorizeUrl: null,
  })
  const got = await state(h)
  t.ok(got.headers.etag)
  t.notMatch(got.body, /standin-secret/)
  t.ok(new Date(got.json().accessTokenExpiresAt).getTime() > Date.now())
  const calls = h.standin.calls.filter((c) => c.path.startsWith('/rest/'))
  t.ok(
    calls.length > 0 && calls.every((c) => c.companyHeader === COMPANY || c.companyHeader === '999'),
    'Procore-Company-Id on every REST call',
  )
})

t.test('OAuth: authorize URL with a signed, single-use, expiring state; the callback stores the tokens', async (t) => {
  const h = await harness(t, { listen: true })
  const started = await connect(h, { mode: 'authorization_code' })
  t.equal(started.statusCode, 200)
  const url = new URL(started.json().authorizeUrl)
  t.equal(url.origin + url.pathname, `${h.standin.url}/oauth/authorize`)
  t.equal(url.searchParams.get('client_id'), CLIENT.id)
  t.equal(url.searchParams.get('redirect_uri'), `${h.baseUrl}/oauth/procore/callback`)
  t.equal(url.searchParams.get('response_type'), 'code')
  const stateParam = url.searchParams.get('state')!
  t.match(stateParam, new RegExp(`^${COMPANY}\\.`))

  const { callback } = await connectOAuth(h)
  t.match((await state(h)).json(), { status: 'connected', mode: 'authorization_code', clientId: null })
  const replay = await h.app.inject({ method: 'GET', url: callback })
  t.equal(replay.statusCode, 400, 'a state works once')
  t.equal(replay.json().code, 'oauth_state_invalid')

  const [company, nonce, expires, signature] = stateParam.split('.')
  const tampered = `${company}.${nonce}.${Number(expires) + 3600_000}.${signature}`
  t.equal(
    (
      await h.app.inject({ method: 'GET', url: `/oauth/procore/callback?code=x&state=${encodeURIComponent(tampered)}` })
    ).json().code,
    'oauth_state_invalid',
    'a tampered state is refused',
  )
  const data = `${company}.${nonce}.${Date.now() - 1000}`
  const expired = `${data}.${h.app.ctx.secrets.sign('procore-oauth-state', data)}`
  t.equal(
    (
      await h.app.inject({ method: 'GET', url: `/oauth/procore/callback?code=x&state=${encodeURIComponent(expired)}` })
    ).json().code,
    'oauth_state_invalid',
    'an expired state is refused',
  )

  const again = await connect(h, { mode: 'authorization_code' })
  const denied = await h.app.inject({
    method: 'GET',
    url:
      `/oauth/procore/callback?error=access_denied&state=` +
      `${encodeURIComponent(new URL(again.json().authorizeUrl).searchParams.get('state')!)}`,
  })
  t.equal(denied.statusCode, 400)
  t.equal(denied.json().code, 'oauth_denied')
})

t.test('OAuth needs the app credentials configured', async (t) => {
  const h = await harness(t, { env: { PROCORE_CLIENT_ID: '', PROCORE_CLIENT_SECRET: '' } })
  const res = await connect(h, { mode: 'authorization_code' })
  t.equal(res.statusCode, 409)
  t.equal(res.json().code, 'procore_oauth_not_configured')
  const bad = await connect(h, { mode: 'client_credentials', clientId: 'x' })
  t.equal(bad.statusCode, 400, 'the body is validated')
})

t.test('disconnect: If-Match, hook deleted, secrets forgotten, deliveries refused', async (t) => {
  const h = await harness(t)
  await connectServiceAccount(h)
  await installWebhook(h)
  const auth = h.standin.webhooks.hooks()[0]!.destination_headers.Authorization!
  t.equal(
    (await h.app.inject({ method: 'DELETE', url: `/v1/companies/${COMPANY}/procore`, headers: h.admin })).statusCode,
    428,
  )
  t.equal(
    (
      await h.app.inject({
        method: 'DELETE',
        url: `/v1/companies/${COMPANY}/procore`,
        headers: { ...h.admin, 'if-match': '"999"' },
      })
    ).statusCode,
    412,
  )
  const etag = (await state(h)).headers.etag as string
  const res = await h.app.inject({
    method: 'DELETE',
    url: `/v1/companies/${COMPANY}/procore`,
    headers: { ...h.admin, 'if-match': etag },
  })
  t.equal(res.statusCode, 204)
  t.equal(h.standin.webhooks.hooks().length, 0, 'our hook is gone from Procore')
  t.match((await state(h)).json(), { status: 'disconnected', webhook: null })
  const row = await h.app.db.selectFrom('procore_connections').selectAll().executeTakeFirstOrThrow()
  t.same([row.client_secret, row.access_token, row.refresh_token], [null, null, null])
  const delivery = await h.app.inject({
    method: 'POST',
    url: '/webhooks/procore',
    headers: { authorization: auth, 'content-type': 'application/json' },
    payload: v2Event({ resourceName: 'Departments', resourceId: '1', ulid: newUlid() }),
  })
  t.equal(delivery.statusCode, 401)
  await t.rejects(procoreRecords(h.app.ctx, COMPANY), { code: 'procore_not_connected' })
})

/** Every row of every table, as text: what a database dump would show. */
async function dump(db: Db): Promise<string> {
  const { rows: tables } = await sql<{ name: string }>`
    select quote_ident(schemaname) || '.' || quote_ident(tablename) as name
    from pg_tables where schemaname in ('public', 'graphile_worker')`.execute(db)
  let out = ''
  for (const { name } of tables) {
    const { rows } = await sql<{ row: string }>`select row_to_json(t)::text as row from ${sql.raw(name)} t`.execute(db)
    out += rows.map((r) => r.row).join('\n')
  }
  return out
}

t.test(
  'T17: tokens, client secrets and webhook secrets are not readable in the database, logs or responses',
  async (t) => {
    let logs = ''
    const logStream = new Writable({
      write(chunk: Buffer, _enc, done) {
        logs += chunk.toString()
        done()
      },
    })
    const clientSecret = 'canary-client-secret-4f1d9b'
    const h = await harness(t, {
      env: { LOG_LEVEL: 'trace', PROCORE_CLIENT_SECRET: clientSecret },
      standin: { clientSecret },
      logStream,
      worker: true,
    })
    const other = '7700'
    h.standin.addCompany(other, 'Other')
    await h.app.inject({
      method: 'POST',
      url: '/v1/companies',
      headers: h.admin,
      payload: { id: other, name: 'Other', erpSystem: 'vista' },
    })
    const vendor = h.standin.seed(COMPANY, 'vendors', { name: 'Canary Co' })

    const responses: string[] = []
    const res1 = await connect(h, { mode: 'client_credentials', clientId: CLIENT.id, clientSecret }, other)
    responses.push(res1.body)
    await connectOAuth(h)
    await h.app.db
      .updateTable('procore_connections')
      .set({ access_token_expires_at: new Date(0) })
      .where('company_id', '=', COMPANY)
      .execute()
    await (await procoreRecords(h.app.ctx, COMPANY)).get('vendor', vendor.id) // a refresh
    responses.push((await installWebhook(h)) as unknown as string)
    responses.push((await state(h)).body)
    const bad = await h.app.inject({
      method: 'POST',
      url: '/webhooks/procore',
      headers: { authorization: 'Bearer 1.wrongwrongwrongwrongwrongwrongwrongwrong' },
      payload: '{}',
    })
    responses.push(bad.body)

    const row = await h.app.db
      .selectFrom('procore_connections')
      .selectAll()
      .where('company_id', '=', COMPANY)
      .executeTakeFirstOrThrow()
    const accessToken = unseal(h.app.ctx, COMPANY, 'access_token', row.access_token!)
    const refreshToken = unseal(h.app.ctx, COMPANY, 'refresh_token', row.refresh_token!)
    const webhookAuth = h.standin.webhooks.hooks()[0]!.destination_headers.Authorization!
    const webhookSecret = webhookAuth.slice(webhookAuth.indexOf('.') + 1)
    const canaries = { accessToken, refreshToken, clientSecret, webhookSecret }

    // A delivery with the real secret, logged at trace level too.
    await h.app.inject({
      method: 'POST',
      url: '/webhooks/procore',
      headers: { authorization: webhookAuth, 'content-type': 'application/json' },
      payload: v2Event({ resourceName: 'Company Vendors', resourceId: vendor.id, ulid: newUlid() }),
    })

    const database = await dump(h.app.db)
    const everything = JSON.stringify(responses)
    t.ok(logs.length > 1000, 'trace logs were written')
    for (const [name, value] of Object.entries(canaries)) {
      t.notOk(logs.includes(value), `${name}: not in the logs`)
      t.notOk(database.includes(value), `${name}: not in the database`)
      t.notOk(everything.includes(value), `${name}: not in HTTP responses`)
    }
    t.match(row.access_token, /^v1\.test\./, 'sealed with the current key id')

    // A sealed value moved to another company's row does not open there.
    await h.app.db
      .updateTable('procore_connections')
      .set({ access_token: row.access_token, access_token_expires_at: new Date(Date.now() + 3600_000) })
      .where('company_id', '=', other)
      .execute()
    t.throws(
      () => unseal(h.app.ctx, other, 'access_token', row.access_token!),
      'GCM authentication fails for another company',
    )
    await t.rejects(
      (await procoreRecords(h.app.ctx, other)).get('vendor', vendor.id),
      'and the other company cannot use it',
    )
  },
)
