// Done-when: a company is connected to the stand-in (both credential modes), its webhook is
// installed, and Procore changes arrive as updated snapshots, all through the public HTTP API.
import t from 'tap'
import { getSnapshot } from '../../src/sync/snapshots.js'
import { COMPANY, connectOAuth, connectServiceAccount, harness, installWebhook, until } from './fixtures/harness.js'

for (const mode of ['client_credentials', 'authorization_code'] as const) {
  t.test(`${mode}: connect, install the webhook, and a change in Procore becomes a snapshot`, async (t) => {
    const h = await harness(t, { listen: true, worker: true })
    const vendor = h.standin.seed(COMPANY, 'vendors', { name: 'Ready Mix Ltd', origin_code: 'V-100' })

    if (mode === 'client_credentials') await connectServiceAccount(h)
    else await connectOAuth(h)
    const state = await h.app.inject({ method: 'GET', url: `/v1/companies/${COMPANY}/procore`, headers: h.admin })
    t.equal(state.statusCode, 200)
    t.match(state.json(), { status: 'connected', mode })

    const hook = await installWebhook(h, { payloadVersion: 'v4.0' })
    t.equal(h.standin.webhooks.hooks().length, 1, 'one hook in Procore')
    t.equal(h.standin.webhooks.hooks()[0]?.destination_url, `${h.baseUrl}/webhooks/procore`)
    t.ok(
      hook.triggers.some(
        (tr) => tr.resourceName === 'Company Vendors' && tr.eventType === 'update' && tr.status === 'active',
      ),
    )

    h.standin.change(COMPANY, 'vendors', vendor.id, { name: 'Ready Mix Limited' })
    await h.standin.webhooks.idle()
    await until(
      'snapshot updated',
      async () =>
        (await getSnapshot(h.app.db, COMPANY, 'procore', 'vendor', vendor.id))?.fields.name === 'Ready Mix Limited',
    )
    const snapshot = await getSnapshot(h.app.db, COMPANY, 'procore', 'vendor', vendor.id)
    t.match(snapshot?.fields, { name: 'Ready Mix Limited', code: 'V-100' })
    const delivered = h.standin.webhooks.deliveries()
    t.ok(delivered.length > 0 && delivered.every((d) => d.outcome === 'ok'), 'every delivery acknowledged with 2xx')

    const events = await h.app.inject({
      method: 'GET',
      url: `/v1/companies/${COMPANY}/webhook-events?status=processed`,
      headers: h.admin,
    })
    t.equal(events.json().items.length, 1, 'the event is listed as processed')
  })
}
