// A link's follow-up over HTTP against the stand-ins: the request commits the link and answers
// 201 with origin pending; the origins job then makes exactly one Procore write for it (the sync
// endpoint carrying origin_id and origin_code) and compares the pair; an unlink is one clearing
// write likewise. The stand-in's traffic log counts the calls.
import t from 'tap'
import { syncHarness } from './fixtures/harness.js'

t.test('one Procore write per link and per unlink, made by the follow-up job', async (t) => {
  const h = await syncHarness(t, { erpSystem: 'sage300' })
  const c = h.companyId
  const pairs = Array.from({ length: 4 }, (_, i) => ({
    p: h.procore.seed(c, 'vendors', { name: `Follow Up ${i}`, email_address: `ap${i}@follow.example` }),
    e: h.erp.seed('vendors', { code: `FOLLOW${i}`, name: `Follow Up ${i}`, email: `ap${i}@follow.example` }),
  }))
  await h.refresh(['vendor'])
  await h.quiet()
  const start = h.procore.calls.length
  const writesSince = (mark: number) =>
    h.procore.calls.slice(mark).filter((x) => x.method !== 'GET' && x.path.startsWith('/rest/'))

  // Links made in quick succession, as a person working down a list does.
  const links = await Promise.all(
    pairs.map(async ({ p, e }, i) => {
      const res = await h.api(
        'POST',
        `/v1/companies/${c}/links`,
        { type: 'vendor', procoreId: p.id, erpId: e.id },
        { 'idempotency-key': `follow-${i}` },
      )
      t.equal(res.status, 201, JSON.stringify(res.body))
      t.equal(res.headers.location, `/v1/companies/${c}/links/${res.body.id}`, 'the link, to follow its origin')
      return res.body
    }),
  )
  for (const [i, link] of links.entries()) {
    t.match(await h.settled(link.id), { origin: 'set', discrepancyId: null }, 'origin set, the pair in sync')
    t.equal(h.procore.get(c, 'vendors', pairs[i]!.p.id)?.origin_id, pairs[i]!.e.id)
    t.equal(h.procore.get(c, 'vendors', pairs[i]!.p.id)?.origin_code, `FOLLOW${i}`)
  }
  await h.quiet()
  const writes = writesSince(start)
  t.ok(
    writes.every((x) => x.path === '/rest/v1.0/vendors/sync'),
    'each write is a sync call carrying origin_id and origin_code',
  )
  t.ok(writes.length >= 1 && writes.length <= links.length, `no more calls than links (${writes.length})`)

  // Exactly one write for one link, counted alone.
  const one = pairs[0]!
  const etag = String((await h.api('GET', `/v1/companies/${c}/links/${links[0].id}`)).headers.etag)
  const mark = h.procore.calls.length
  const res = await h.api('DELETE', `/v1/companies/${c}/links/${links[0].id}`, undefined, { 'if-match': etag })
  t.equal(res.status, 200)
  t.match(await h.settled(links[0].id), { origin: 'cleared' })
  await h.quiet()
  t.equal(h.procore.get(c, 'vendors', one.p.id)?.origin_id, null, 'origin cleared')
  t.equal(
    h.procore.calls.slice(mark).filter((x) => x.method !== 'GET' && x.path.startsWith('/rest/')).length,
    1,
    'an unlink is one Procore write',
  )
  const relink = h.procore.calls.length
  const again = await h.api(
    'POST',
    `/v1/companies/${c}/links`,
    { type: 'vendor', procoreId: one.p.id, erpId: one.e.id },
    { 'idempotency-key': 'follow-again' },
  )
  t.equal(again.status, 201)
  t.match(again.body, { origin: 'pending' }, 'answered before Procore was written')
  t.match(await h.settled(again.body.id), { origin: 'set' })
  await h.quiet()
  t.equal(h.procore.calls.slice(relink).filter((x) => x.method !== 'GET').length, 1, 'a link is one Procore write')
})
