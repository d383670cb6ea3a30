// T16: single-flight token refresh (in a process and across processes), the new refresh token
// stored before use, and a rejected refresh → needs_reauth with no retry loop.
import t from 'tap'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { unseal } from '../../src/procore/connection.js'
import { procoreRecords } from '../../src/sync/sides.js'
import { testEnv } from '../helpers/app.js'
import { CLIENT, COMPANY, connectOAuth, connectServiceAccount, harness, type Harness } from './fixtures/harness.js'

const expireStoredToken = (h: Harness) =>
  h.app.db
    .updateTable('procore_connections')
    .set({ access_token_expires_at: new Date(Date.now() - 1000) })
    .where('company_id', '=', COMPANY)
    .execute()
const row = (h: Harness) =>
  h.app.db.selectFrom('procore_connections').selectAll().where('company_id', '=', COMPANY).executeTakeFirstOrThrow()
const fifty = async (h: Harness, id: string) => {
  const records = await procoreRecords(h.app.ctx, COMPANY)
  return Promise.all(Array.from({ length: 50 }, () => records.get('vendor', id)))
}

// Generous but bounded: these run many apps and Procore round trips on a shared 2-core machine.
t.setTimeout(300_000)

t.test('50 concurrent callers with an expired token: one refresh, the new refresh token stored', async (t) => {
  const h = await harness(t)
  const vendor = h.standin.seed(COMPANY, 'vendors', { name: 'Concrete Co' })
  await connectOAuth(h)
  const before = await row(h)
  const oldRefresh = unseal(h.app.ctx, COMPANY, 'refresh_token', before.refresh_token!)
  await expireStoredToken(h)

  const results = await fifty(h, vendor.id)
  t.ok(
    results.every((r) => r?.name === 'Concrete Co'),
    'all 50 calls succeed',
  )
  t.equal(h.standin.oauth.refreshCalls, 1, 'exactly one refresh call')
  const after = await row(h)
  t.equal(after.token_version, before.token_version + 1)
  t.not(
    unseal(h.app.ctx, COMPANY, 'refresh_token', after.refresh_token!),
    oldRefresh,
    'the rotated refresh token is stored',
  )
  t.ok(after.refreshed_at)
  t.equal(after.refresh_lease_until, null, 'lease released')
})

t.test('Procore refuses a token we thought valid (401): one refresh for all, no 401 after it', async (t) => {
  const h = await harness(t)
  const vendor = h.standin.seed(COMPANY, 'vendors', { name: 'Steel Co' })
  await connectOAuth(h)
  await fifty(h, vendor.id) // warm: the token is cached in memory
  h.standin.oauth.expireAll()
  const from = h.standin.calls.length

  const results = await fifty(h, vendor.id)
  t.ok(results.every((r) => r?.name === 'Steel Co'))
  t.equal(h.standin.oauth.refreshCalls, 1)
  const calls = h.standin.calls.slice(from)
  const refreshAt = calls.findIndex((c) => c.path === '/oauth/token')
  t.ok(refreshAt >= 0)
  t.equal(calls.slice(refreshAt).filter((c) => c.status === 401).length, 0, '401s after the refresh: 0')
})

t.test('client credentials: re-requested on expiry, once for 50 callers', async (t) => {
  const h = await harness(t)
  const vendor = h.standin.seed(COMPANY, 'vendors', { name: 'Lumber Co' })
  await connectServiceAccount(h)
  const tokenCalls = h.standin.oauth.tokenCalls
  await expireStoredToken(h)
  const results = await fifty(h, vendor.id)
  t.ok(results.every((r) => r?.name === 'Lumber Co'))
  t.equal(h.standin.oauth.tokenCalls, tokenCalls + 1, 'one token request')
  t.equal(h.standin.oauth.refreshCalls, 0, 'no refresh token involved')
})

t.test('two processes, one refresh: the lease in the row decides who calls Procore', async (t) => {
  const h = await harness(t)
  const vendor = h.standin.seed(COMPANY, 'vendors', { name: 'Glass Co' })
  await connectOAuth(h)
  const second = await buildApp(
    loadConfig({
      ...testEnv(h.databaseUrl),
      PROCORE_API_URL: h.standin.url,
      PROCORE_LOGIN_URL: h.standin.url,
      PROCORE_CLIENT_ID: CLIENT.id,
      PROCORE_CLIENT_SECRET: CLIENT.secret,
      WORKER_ENABLED: 'false',
    }),
  )
  t.teardown(() => second.close())
  await expireStoredToken(h)
  const [a, b] = await Promise.all([procoreRecords(h.app.ctx, COMPANY), procoreRecords(second.ctx, COMPANY)])
  const results = await Promise.all(
    Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? a : b).get('vendor', vendor.id)),
  )
  t.ok(
    results.every((r) => r?.name === 'Glass Co'),
    'every caller in both processes succeeds',
  )
  t.equal(h.standin.oauth.refreshCalls, 1, 'one refresh across both processes')
})

t.test('a reused (already burnt) refresh token → needs_reauth, visible, and no retry loop', async (t) => {
  const h = await harness(t)
  const vendor = h.standin.seed(COMPANY, 'vendors', { name: 'Paint Co' })
  await connectOAuth(h)
  // A refresh whose response was lost: Procore burnt the token, we still hold it.
  const stored = unseal(h.app.ctx, COMPANY, 'refresh_token', (await row(h)).refresh_token!)
  const burn = await fetch(`${h.standin.url}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      grant_type: 'refresh_token',
      refresh_token: stored,
      client_id: CLIENT.id,
      client_secret: CLIENT.secret,
      redirect_uri: 'x',
    }),
  })
  t.equal(burn.status, 200)
  await expireStoredToken(h)
  const refreshCalls = h.standin.oauth.refreshCalls

  const records = await procoreRecords(h.app.ctx, COMPANY)
  const outcomes = await Promise.allSettled(Array.from({ length: 10 }, () => records.get('vendor', vendor.id)))
  t.ok(
    outcomes.every((o) => o.status === 'rejected' && (o.reason as { code?: string }).code === 'procore_needs_reauth'),
    'every caller is told to reconnect',
  )
  t.equal(h.standin.oauth.refreshCalls, refreshCalls + 1, 'one refresh attempt')

  const state = await h.app.inject({ method: 'GET', url: `/v1/companies/${COMPANY}/procore`, headers: h.admin })
  t.match(state.json(), { status: 'needs_reauth', reauthReason: /invalid_grant/ })
  const company = await h.app.inject({ method: 'GET', url: `/v1/companies/${COMPANY}`, headers: h.admin })
  t.equal(company.json().procoreConnection, 'needs_reauth', 'visible on the company resource')
  t.equal((await row(h)).refresh_token, null, 'the dead token is forgotten')

  const tokenCalls = h.standin.oauth.tokenCalls
  await t.rejects(procoreRecords(h.app.ctx, COMPANY), { code: 'procore_needs_reauth' })
  await t.rejects(records.get('vendor', vendor.id), { code: 'procore_needs_reauth' })
  t.equal(h.standin.oauth.tokenCalls, tokenCalls, 'no further call to the token endpoint')

  await connectOAuth(h)
  t.equal(
    (await procoreRecords(h.app.ctx, COMPANY).then((r) => r.get('vendor', vendor.id)))?.name,
    'Paint Co',
    'reconnecting heals it',
  )
})
