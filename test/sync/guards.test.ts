// The guards around the sync core, over HTTP against the stand-ins: the duplicate guard, ERP
// rules checked before the call, If-Match on apply (one winner per ETag), a field that changed
// again meanwhile, unlink, bulk link, and company scope.
import t from 'tap'
import { syncHarness, until } from './fixtures/harness.js'

t.test('guards', async (t) => {
  const h = await syncHarness(t, { erpSystem: 'sage300' })
  const c = h.companyId
  const p = {
    acme: h.procore.seed(c, 'vendors', { name: 'Acme Concrete', email_address: 'ap@acme.example' }),
    long: h.procore.seed(c, 'vendors', { name: 'Bright Electric and Low Voltage Systems LLC' }),
    delta: h.procore.seed(c, 'vendors', { name: 'Delta Paving', email_address: 'ap@delta.example' }),
    echo: h.procore.seed(c, 'vendors', { name: 'Echo Glass', email_address: 'ap@echo.example' }),
    fox: h.procore.seed(c, 'vendors', { name: 'Foxtrot Masonry', email_address: 'ap@fox.example' }),
    golf: h.procore.seed(c, 'vendors', { name: 'Golf Roofing' }),
  }
  const e = {
    acme: h.erp.seed('vendors', { code: 'ACME01', name: 'Acme Concrete', email: 'ap@acme.example' }),
    delta: h.erp.seed('vendors', { code: 'DELTA01', name: 'Delta Paving', email: 'ap@delta.example' }),
    echo: h.erp.seed('vendors', { code: 'ECHO01', name: 'Echo Glass', email: 'ap@echo.example' }),
    fox: h.erp.seed('vendors', { code: 'FOX01', name: 'Foxtrot Masonry Inc.', email: 'AP@fox.example' }),
    golfA: h.erp.seed('vendors', { code: 'GOLF01', name: 'Golf Roofing' }),
    golfB: h.erp.seed('vendors', { code: 'GOLF02', name: 'Golf Roofing' }),
  }
  await h.refresh(['vendor'])
  const link = async (procoreId: string, erpId: string) => {
    const res = await h.api(
      'POST',
      `/v1/companies/${c}/links`,
      { type: 'vendor', procoreId, erpId },
      { 'idempotency-key': `link-${procoreId}` },
    )
    t.equal(res.status, 201, JSON.stringify(res.body))
    return res.body
  }
  const vendorPosts = () => h.erp.calls.filter((x) => x.method === 'POST' && x.path === '/v1/vendors').length

  await t.test(
    'duplicate guard: a strong match on the target side refuses the create and names it; force creates',
    async (t) => {
      const run = await h.waitRun(
        (
          await h.api(
            'POST',
            `/v1/companies/${c}/records/vendor/create-in-erp`,
            { procoreIds: [p.acme.id] },
            { 'idempotency-key': 'dup-1' },
          )
        ).body.id,
      )
      t.match(run.result.items[0], {
        status: 'refused',
        match: { id: e.acme.id, reasons: ['same e-mail', 'same name'] },
        reason: new RegExp(`already has vendor ${e.acme.id} "Acme Concrete"`),
      })
      t.equal(vendorPosts(), 0, 'nothing was sent to the ERP')
      const back = await h.waitRun(
        (
          await h.api(
            'POST',
            `/v1/companies/${c}/records/vendor/create-in-procore`,
            { erpIds: [e.acme.id] },
            { 'idempotency-key': 'dup-2' },
          )
        ).body.id,
      )
      t.match(back.result.items[0], { status: 'refused', match: { id: p.acme.id } })
      t.equal(h.procore.list(c, 'vendors').length, 6, 'nothing was created in Procore')
      const failed = await h.api('GET', `/v1/companies/${c}/records/vendor/procore/${p.acme.id}`)
      t.match(failed.body, { status: 'failed', failure: { action: 'create', reason: /already has vendor/ } })

      const forced = await h.waitRun(
        (
          await h.api(
            'POST',
            `/v1/companies/${c}/records/vendor/create-in-erp`,
            { procoreIds: [p.acme.id], force: true },
            { 'idempotency-key': 'dup-3' },
          )
        ).body.id,
      )
      t.match(forced.result.items[0], { status: 'created' })
      t.equal(vendorPosts(), 1)
      t.equal(
        (await h.api('GET', `/v1/companies/${c}/records/vendor/procore/${p.acme.id}`)).body.status,
        'linked',
        'a success clears the failure',
      )
    },
  )

  await t.test('ERP rules are checked before the call, with what to fix', async (t) => {
    const before = vendorPosts()
    const run = await h.waitRun(
      (
        await h.api(
          'POST',
          `/v1/companies/${c}/records/vendor/create-in-erp`,
          { procoreIds: [p.long.id] },
          { 'idempotency-key': 'long' },
        )
      ).body.id,
    )
    t.match(run.result.items[0], {
      status: 'refused',
      reason: /Name must be at most 30 characters in Sage 300 CRE \(it has 43\); shorten it/,
    })
    t.equal(vendorPosts(), before, 'not sent')
  })

  await t.test('two applies with the same ETag: one succeeds, one gets 412', async (t) => {
    await link(p.delta.id, e.delta.id)
    h.procore.change(c, 'vendors', p.delta.id, { name: 'Delta Paving Co' })
    const open = await until('discrepancy', async () =>
      (await h.api('GET', `/v1/companies/${c}/discrepancies?type=vendor`)).body.items.find(
        (d: any) => d.procoreId === p.delta.id,
      ),
    )
    const etag = String((await h.api('GET', `/v1/companies/${c}/discrepancies/${open.id}`)).headers.etag)
    const [a, b] = await Promise.all([
      h.api(
        'POST',
        `/v1/companies/${c}/discrepancies/${open.id}/apply`,
        { fields: { name: 'procore' } },
        { 'if-match': etag, 'idempotency-key': 'race-a' },
      ),
      h.api(
        'POST',
        `/v1/companies/${c}/discrepancies/${open.id}/apply`,
        { fields: { name: { value: 'Delta Paving Company' } } },
        { 'if-match': etag, 'idempotency-key': 'race-b' },
      ),
    ])
    t.same(
      [a.status, b.status].sort(),
      [200, 412],
      `${a.status} ${JSON.stringify(a.body)} / ${b.status} ${JSON.stringify(b.body)}`,
    )
    const winner = a.status === 200 ? 'Delta Paving Co' : 'Delta Paving Company'
    t.equal(h.erp.get('vendors', e.delta.id)?.name, winner)
    t.equal(h.procore.get(c, 'vendors', p.delta.id)?.name, winner)
    const missing = await h.api(
      'POST',
      `/v1/companies/${c}/discrepancies/${open.id}/apply`,
      { fields: { name: 'erp' } },
      { 'idempotency-key': 'no-if-match' },
    )
    t.equal(missing.status, 428)
  })

  await t.test(
    'a field that changed again meanwhile updates the discrepancy instead of being overwritten',
    async (t) => {
      await link(p.echo.id, e.echo.id)
      h.procore.change(c, 'vendors', p.echo.id, { name: 'Echo Glass & Glazing' })
      const open = await until('discrepancy', async () =>
        (await h.api('GET', `/v1/companies/${c}/discrepancies?type=vendor`)).body.items.find(
          (d: any) => d.procoreId === p.echo.id,
        ),
      )
      const etag = String((await h.api('GET', `/v1/companies/${c}/discrepancies/${open.id}`)).headers.etag)
      h.erp.change('vendors', e.echo.id, { name: 'Echo Glass Ltd' }, { notify: false })
      const res = await h.api(
        'POST',
        `/v1/companies/${c}/discrepancies/${open.id}/apply`,
        { fields: { name: 'procore' } },
        { 'if-match': etag, 'idempotency-key': 'meanwhile' },
      )
      t.equal(res.status, 409, JSON.stringify(res.body))
      t.match(res.body, { code: 'discrepancy_changed', fields: ['name'] })
      t.equal(h.erp.get('vendors', e.echo.id)?.name, 'Echo Glass Ltd', 'the newer ERP value was not overwritten')
      const now = await h.api('GET', `/v1/companies/${c}/discrepancies/${open.id}`)
      t.match(now.body.fields, [{ field: 'name', procore: 'Echo Glass & Glazing', erp: 'Echo Glass Ltd' }])
      t.not(now.headers.etag, etag, 'new ETag')
      t.equal(res.headers.etag, now.headers.etag)
    },
  )

  await t.test('unlink: If-Match, origin cleared, history kept, safe to repeat', async (t) => {
    const l = (await h.api('GET', `/v1/companies/${c}/links?type=vendor&active=true`)).body.items.find(
      (x: any) => x.procoreId === p.delta.id,
    )
    t.equal((await h.api('DELETE', `/v1/companies/${c}/links/${l.id}`)).status, 428)
    const etag = String((await h.api('GET', `/v1/companies/${c}/links/${l.id}`)).headers.etag)
    const res = await h.api('DELETE', `/v1/companies/${c}/links/${l.id}`, undefined, { 'if-match': etag })
    t.equal(res.status, 200, JSON.stringify(res.body))
    t.match(res.body, { active: false, unlinkedBy: /^api-key:/ })
    t.match(await h.settled(l.id), { origin: 'cleared' }, "the unlink's job clears the origin")
    t.equal(h.procore.get(c, 'vendors', p.delta.id)?.origin_id, null)
    t.equal(h.procore.get(c, 'vendors', p.delta.id)?.origin_code, null)
    t.equal(
      (await h.api('DELETE', `/v1/companies/${c}/links/${l.id}`, undefined, { 'if-match': etag })).status,
      412,
      'the ETag from before the unlink is stale: of racing unlinks only one wins',
    )
    t.equal(
      (await h.api('DELETE', `/v1/companies/${c}/links/${l.id}`, undefined, { 'if-match': String(res.headers.etag) }))
        .status,
      200,
      'a repeat with the ended link’s ETag answers the ended link',
    )
    t.equal(
      (await h.api('GET', `/v1/companies/${c}/records/vendor/procore/${p.delta.id}`)).body.status,
      'only_in_procore',
    )
    const history = await h.api('GET', `/v1/companies/${c}/audit?recordId=${l.id}`)
    t.same(
      history.body.items.map((x: any) => x.action),
      ['unlink', 'apply', 'link'],
    )
  })

  await t.test('bulk link: unambiguous pairs above the score are linked, ties are reported', async (t) => {
    const start = await h.api(
      'POST',
      `/v1/companies/${c}/links/bulk`,
      { type: 'vendor', minScore: 0.9 },
      { 'idempotency-key': 'bulk' },
    )
    t.equal(start.status, 202)
    const run = await h.waitRun(start.body.id)
    t.equal(run.status, 'succeeded', JSON.stringify(run))
    const byProcore = (id: string) => run.result.items.filter((x: any) => x.procoreId === id)
    t.match(byProcore(p.fox.id), [{ erpId: e.fox.id, status: 'linked', reasons: ['same e-mail', 'same name'] }])
    t.match(byProcore(p.delta.id), [{ erpId: e.delta.id, status: 'linked' }], 'the unlinked pair is found again')
    t.equal(byProcore(p.golf.id).length, 2)
    t.ok(byProcore(p.golf.id).every((x: any) => x.status === 'ambiguous'))
    t.equal(
      (await h.api('GET', `/v1/companies/${c}/records/vendor/procore/${p.golf.id}`)).body.status,
      'only_in_procore',
    )
  })

  await t.test(
    'a vendor code changed in the ERP is written to origin_code by the link, not opened as a discrepancy',
    async (t) => {
      const l = (await h.api('GET', `/v1/companies/${c}/links?type=vendor&active=true`)).body.items.find(
        (x: any) => x.procoreId === p.delta.id,
      )
      await h.quiet()
      t.equal(
        (await h.api('GET', `/v1/companies/${c}/records/vendor/procore/${p.delta.id}`)).body.status,
        'linked',
        'in sync before',
      )
      t.equal(h.procore.get(c, 'vendors', p.delta.id)?.origin_code, 'DELTA01')
      h.erp.change('vendors', e.delta.id, { code: 'DELTA02' })
      await until('origin_code follows', async () => h.procore.get(c, 'vendors', p.delta.id)?.origin_code === 'DELTA02')
      await h.quiet()
      t.match((await h.api('GET', `/v1/companies/${c}/links/${l.id}`)).body, { origin: 'set', discrepancyId: null })
      t.equal(
        (await h.api('GET', `/v1/companies/${c}/records/vendor/procore/${p.delta.id}`)).body.status,
        'linked',
        'in sync after',
      )
    },
  )

  await t.test('a key scoped to another company sees none of it', async (t) => {
    const other = String(Number(c) + 500_000)
    await h.api('POST', '/v1/companies', { id: other, name: 'Other', erpSystem: 'vista' })
    const key = h.auth(await h.key('admin', [other]))
    const d =
      (await h.api('GET', `/v1/companies/${c}/discrepancies?type=vendor`)).body.items[0] ??
      (await h.api('GET', `/v1/companies/${c}/discrepancies?status=resolved`)).body.items[0]
    const l = (await h.api('GET', `/v1/companies/${c}/links`)).body.items[0]
    t.ok(d && l)
    for (const url of [
      `/v1/companies/${c}/records/vendor`,
      `/v1/companies/${c}/records/vendor/procore/${p.fox.id}`,
      `/v1/companies/${c}/records/vendor/procore/${p.fox.id}/suggestions`,
      `/v1/companies/${c}/discrepancies`,
      `/v1/companies/${c}/discrepancies/${d.id}`,
      `/v1/companies/${c}/links`,
      `/v1/companies/${c}/links/${l.id}`,
      `/v1/companies/${c}/audit`,
      `/v1/companies/${c}/sync-settings`,
      // its own company in the path, our ids in the rest
      `/v1/companies/${other}/discrepancies/${d.id}`,
      `/v1/companies/${other}/links/${l.id}`,
      `/v1/companies/${other}/records/vendor/procore/${p.fox.id}`,
    ]) {
      const res = await h.api('GET', url, undefined, key)
      t.equal(res.status, 404, url)
    }
    for (const [method, url, body] of [
      ['POST', `/v1/companies/${c}/links`, { type: 'vendor', procoreId: p.golf.id, erpId: e.golfA.id }],
      ['POST', `/v1/companies/${other}/links`, { type: 'vendor', procoreId: p.golf.id, erpId: e.golfA.id }],
      ['POST', `/v1/companies/${other}/discrepancies/${d.id}/apply`, { fields: { name: 'erp' } }],
      ['POST', `/v1/companies/${c}/records/vendor/create-in-erp`, { procoreIds: [p.golf.id] }],
      ['DELETE', `/v1/companies/${other}/links/${l.id}`, undefined],
    ] as const) {
      const res = await h.api(method, url, body, { ...key, 'idempotency-key': `x-${url}`, 'if-match': '"1"' })
      t.ok(res.status === 404 || res.status === 422, `${method} ${url}: ${res.status}`)
    }
    const otherRecords = await h.api('GET', `/v1/companies/${other}/records/vendor`, undefined, key)
    t.equal(otherRecords.status, 200)
    t.equal(otherRecords.body.items.length, 0)
    t.equal((await h.api('GET', `/v1/companies/${other}/audit`, undefined, key)).body.items.length, 0)
    t.equal(
      (await h.api('GET', `/v1/companies/${c}/records/vendor/procore/${p.golf.id}`)).body.status,
      'only_in_procore',
      'nothing changed in our company',
    )
  })
})
