import t from 'tap'
import { ErpNotConnectedError, ErpRefusedError, ErpStaleVersionError } from '../../src/erp/errors.js'
import { erpRecords } from '../../src/sync/sides.js'
import { UpstreamError } from '../../src/http/errors.js'
import { createCompany } from '../helpers/app.js'
import { connected, newCompanyId } from './fixtures/harness.js'

/** Every log line the app writes, at trace level, to search for secrets afterwards. */
function logSink() {
  const lines: string[] = []
  return { lines, stream: { write: (line: string) => void lines.push(line) } }
}

t.test('the ERP side of the sync contract against the stand-in', async (t) => {
  const logs = logSink()
  const c = await connected(t, {
    env: { WORKER_ENABLED: 'false', LOG_LEVEL: 'trace' },
    build: { logStream: logs.stream },
  })
  const erp = await erpRecords(c.app.ctx, c.companyId)

  t.test(
    'a create whose response is lost is retried with its Idempotency-Key and yields exactly one record',
    async (t) => {
      c.erp.faults.push({ match: { method: 'POST', pathPrefix: '/v1/vendors' }, dropResponseAfterCommit: true })
      const before = c.erp.stats()
      const record = await erp.create(
        'vendor',
        { name: 'Bright Electric LLC', tax_id: '98-7654321' },
        'key-lost-response',
      )
      const after = c.erp.stats()
      t.equal(after.creates - before.creates, 1, 'the agent created once')
      t.equal(after.records.vendors - before.records.vendors, 1, 'one vendor record exists')
      const posts = c.erp.calls.filter((call) => call.method === 'POST' && call.path === '/v1/vendors')
      t.same(
        posts.map((p) => [p.idempotencyKey, p.status]),
        [
          ['key-lost-response', 201],
          ['key-lost-response', 200],
        ],
        'the retry carried the same key and was a replay',
      )
      t.equal(record['id'], c.erp.list('vendors').find((v) => v['name'] === 'Bright Electric LLC')?.id)
      t.equal(record['code'], 'BRIGHT01', 'the ERP assigned the code')

      // The same key later: the same record, still one.
      const again = await erp.create(
        'vendor',
        { tax_id: '98-7654321', name: 'Bright Electric LLC' },
        'key-lost-response',
      )
      t.equal(again['id'], record['id'])
      t.equal(c.erp.stats().records.vendors, after.records.vendors)
    },
  )

  t.test("refusals carry the ERP's per-field messages; a refused key stays free", async (t) => {
    const refused = await erp
      .create('vendor', { name: 'Bad Mail Co', email: 'not-an-email' }, 'key-refused')
      .catch((e: unknown) => e)
    t.type(refused, ErpRefusedError)
    const r = refused as ErpRefusedError
    t.equal(r.erpStatus, 422)
    t.equal(r.erpCode, 'validation_failed')
    t.match(r.fieldErrors, [{ field: 'email', message: /email/ }])
    t.match(r.erpDetail, /not created/)
    t.equal(r.status, 422, 'rendered as 422 if it reaches a route')
    const fixed = await erp.create('vendor', { name: 'Bad Mail Co', email: 'ap@badmail.example' }, 'key-refused')
    t.equal(fixed['email'], 'ap@badmail.example', 'the corrected body was accepted with the same key')

    const existing = c.erp.seed('departments', { code: '40', name: 'Estimating' })
    const duplicate = await erp
      .create('department', { code: '40', name: 'Estimating 2' }, 'key-duplicate')
      .catch((e: unknown) => e)
    t.type(duplicate, ErpRefusedError)
    t.match(duplicate, {
      erpStatus: 409,
      erpCode: 'already_exists',
      existingId: existing.id,
      status: 409,
      code: 'erp_record_exists',
    })

    const callsBefore = c.erp.calls.length
    const tooLong = await erp
      .create('vendor', { name: 'Bright Electric and Low Voltage Systems LLC' }, 'key-too-long')
      .catch((e: unknown) => e)
    t.type(tooLong, ErpRefusedError)
    t.match((tooLong as ErpRefusedError).fieldErrors, [
      { field: 'name', message: 'name must be at most 30 characters' },
    ])
    t.equal(c.erp.calls.length, callsBefore, 'refused from limits.max_lengths before sending anything')

    const noJob = await erp
      .create('cost_code', { code: '01-100', name: 'General' }, 'key-no-job', 'J999999')
      .catch((e: unknown) => e)
    t.match(noJob, { erpStatus: 404, erpCode: 'not_found' })
  })

  t.test('get, update with If-Match, stale versions', async (t) => {
    const seeded = c.erp.seed('employees', { first_name: 'Dana', last_name: 'Ruiz', email: 'dana@example.com' })
    t.equal(await erp.get('user', 'E999999'), null, '404 is null')
    const read = await erp.get('user', seeded.id)
    t.match(read, { id: seeded.id, version: 1, first_name: 'Dana' })

    const updated = await erp.update('user', seeded.id, { job_title: 'Estimator' }, 1)
    t.match(updated, { version: 2, job_title: 'Estimator' })
    const stale = await erp.update('user', seeded.id, { job_title: 'Chief' }, 1).catch((e: unknown) => e)
    t.type(stale, ErpStaleVersionError)
    t.equal((stale as ErpStaleVersionError).currentVersion, 2)
    t.equal(c.erp.get('employees', seeded.id)?.['job_title'], 'Estimator', 'the stale update changed nothing')

    // The PATCH is applied but its response is lost: the retry meets 412, re-reads, finds our values.
    c.erp.faults.push({
      match: { method: 'PATCH', pathPrefix: `/v1/employees/${seeded.id}` },
      dropResponseAfterCommit: true,
    })
    const afterLoss = await erp.update('user', seeded.id, { phone: '555-0123' }, 2)
    t.match(afterLoss, { version: 3, phone: '555-0123' })
    t.equal(c.erp.get('employees', seeded.id)?.version, 3, 'applied once')

    // Canonical nulls become the protocol's "" where a text field is not nullable.
    const cleared = await erp.update('user', seeded.id, { job_title: null, department_id: null }, 3)
    t.match(cleared, { version: 4, job_title: '', department_id: null })

    const refused = await erp.update('user', seeded.id, { email: 'nope' }, 4).catch((e: unknown) => e)
    t.match(refused, { erpStatus: 422, fieldErrors: [{ field: 'email' }] })
  })

  t.test('lists page through every record; job cost codes live under their job', async (t) => {
    for (let i = 0; i < 1_203; i++) c.erp.seed('departments', { code: `D${i}`, name: `Department ${i}` })
    const pages: number[] = []
    const ids = new Set<string>()
    for await (const page of erp.list('department')) {
      pages.push(page.length)
      for (const d of page) ids.add(d['id'] as string)
    }
    t.same(pages, [500, 500, 204], 'the page size the agent announced')
    t.equal(ids.size, c.erp.stats().records.departments)

    const job = c.erp.seed('jobs', { name: 'Harbor Point' })
    c.erp.seed('cost-codes', { code: '01-100', name: 'General conditions' })
    c.erp.seed('cost-codes', { code: '01-100', name: 'General conditions', job_id: job.id })
    c.erp.seed('cost-codes', { code: '02-200', name: 'Site work', job_id: job.id })
    const jobCodes = []
    for await (const page of erp.list('cost_code', { jobId: job.id })) jobCodes.push(...page)
    t.same(
      jobCodes.map((cc) => [cc['code'], cc['job_id']]),
      [
        ['01-100', job.id],
        ['02-200', job.id],
      ],
    )
    const standard = []
    for await (const page of erp.list('cost_code')) standard.push(...page)
    t.same(
      standard.map((cc) => cc['job_id']),
      [null],
      'without jobId: the standard list',
    )
    const created = await erp.create('cost_code', { code: '03-300', name: 'Concrete' }, 'key-job-code', job.id)
    t.equal(created['job_id'], job.id)

    // updated_since is inclusive (and a Date has only milliseconds): every record changed since then, nothing older.
    const all = c.erp.list('departments')
    const since = new Date(all.at(-2)!.updated_at)
    const recent: Array<Record<string, unknown>> = []
    for await (const page of erp.list('department', { updatedSince: since })) recent.push(...page)
    const expected = all.filter((d) => Date.parse(d.updated_at) >= since.getTime()).map((d) => d.id)
    t.same(
      recent.map((d) => d['id']),
      expected,
    )
    t.ok(expected.length >= 2 && expected.length < all.length)
  })

  t.test('transient failures are retried by the HTTP layer; final ones are typed', async (t) => {
    const vendor = c.erp.seed('vendors', { name: 'Retry Supply' })
    c.erp.faults.push({
      match: { method: 'GET', pathPrefix: `/v1/vendors/${vendor.id}` },
      status: 503,
      retryAfterSeconds: 1,
    })
    c.erp.faults.push({ match: { method: 'GET', pathPrefix: `/v1/vendors/${vendor.id}` }, resetConnection: true })
    t.match(await erp.get('vendor', vendor.id), { id: vendor.id })
    t.same(
      c.erp.calls.filter((call) => call.path === `/v1/vendors/${vendor.id}`).map((call) => call.status),
      [503, 0, 200],
    )

    c.erp.faults.push({ match: { method: 'GET', pathPrefix: `/v1/vendors/${vendor.id}` }, status: 401 })
    const unauthorized = await erp.get('vendor', vendor.id).catch((e: unknown) => e)
    t.match(unauthorized, { name: 'UpstreamError', reason: 'unauthorized', retryable: false, attempts: 1 })

    // A record that breaks the protocol is refused, naming the record and the field.
    const bad = c.erp.seed('jobs', { name: 'Broken', status: 'closed' })
    const invalid = await erp.get('project', bad.id).catch((e: unknown) => e)
    t.type(invalid, UpstreamError)
    t.equal((invalid as UpstreamError).reason, 'invalid_response')
    t.match(
      ((invalid as UpstreamError).cause as Error).message,
      new RegExp(`jobs record ${bad.id} does not match the protocol: /status`),
    )
  })

  t.test('a company without a connection', async (t) => {
    const other = newCompanyId()
    await createCompany(c.app, c.adminKey, other, 'foundation')
    await t.rejects(erpRecords(c.app.ctx, other), ErpNotConnectedError)
  })

  t.test('neither the agent token nor the notification secret is ever logged', async (t) => {
    t.ok(logs.lines.length >= 5, 'trace logs were written')
    const all = logs.lines.join('\n')
    t.notOk(all.includes(c.erp.token), 'token')
    t.notOk(all.includes(c.secret.slice('whsec_'.length)), 'notification secret')
  })
})
