import { createHmac, timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { compileErrors, validate } from '@readme/openapi-parser'
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'
import formats from 'ajv-formats'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { ERP_SYSTEMS, signStandardWebhook, startErpStandin, type ErpStandin } from './erp/index.js'

// ---------------------------------------------------------------------------------------------
// The protocol document, and a client that checks every response it gets against it

/** Parsed JSON, loosely typed as test code reads it. */
type Json = ReturnType<typeof JSON.parse>

const doc: Json = JSON.parse(readFileSync(new URL('../../openapi/erp-connector.json', import.meta.url), 'utf8'))
const readme = readFileSync(new URL('../../openapi/README.md', import.meta.url), 'utf8')

const ajv = new Ajv2020({ strict: false, allErrors: true })
formats.default(ajv)
ajv.addSchema(doc, 'erp-connector.json')
const validators = new Map<string, ValidateFunction>()
function validatorFor(ref: string): ValidateFunction {
  let v = validators.get(ref)
  if (!v) {
    v = ajv.compile({ $ref: `erp-connector.json${ref}` })
    validators.set(ref, v)
  }
  return v
}

function deref(node: Json): Json {
  if (node && typeof node.$ref === 'string' && node.$ref.startsWith('#/')) {
    const target = node.$ref
      .slice(2)
      .split('/')
      .reduce((at: Json, part: string) => at?.[part.replace(/~1/g, '/').replace(/~0/g, '~')], doc)
    return deref(target)
  }
  return node
}

const METHODS = ['get', 'post', 'patch', 'put', 'delete'] as const
const operations = Object.entries(doc.paths as Record<string, Json>).flatMap(([template, item]) =>
  METHODS.filter((m) => item[m] !== undefined).map((method) => ({
    key: `${method.toUpperCase()} ${template}`,
    method: method.toUpperCase(),
    regex: new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`),
    params: (template.match(/\{/g) ?? []).length,
    responses: item[method].responses as Record<string, Json>,
  })),
)
const exercised = new Set<string>()

/** Every response the tests see must be one the document describes: status, headers and body. */
function conform(method: string, path: string, status: number, headers: IncomingHttpHeaders, body: unknown): void {
  const candidates = operations
    .filter((op) => op.method === method && op.regex.test(path))
    .sort((a, b) => a.params - b.params)
  const op = candidates[0]
  if (!op) throw new Error(`${method} ${path} is not an operation of the document`)
  const response = deref(op.responses[String(status)] ?? op.responses['default'])
  if (!response) throw new Error(`${op.key} answered ${status}, which the document does not list`)
  for (const [name, h] of Object.entries((response.headers ?? {}) as Record<string, Json>)) {
    const header = deref(h)
    const value = headers[name.toLowerCase()]
    if (header.required === true && value === undefined)
      throw new Error(`${op.key} ${status}: header ${name} is required but missing`)
    if (value !== undefined && header.schema?.pattern && !new RegExp(header.schema.pattern).test(String(value))) {
      throw new Error(`${op.key} ${status}: header ${name}: ${String(value)} does not match ${header.schema.pattern}`)
    }
  }
  const mediaType = String(headers['content-type'] ?? '').split(';')[0] ?? ''
  const content = response.content as Record<string, { schema: { $ref: string } }> | undefined
  if (!content) {
    if (body !== undefined) throw new Error(`${op.key} ${status}: the document lists no body`)
  } else {
    const media = content[mediaType]
    if (!media)
      throw new Error(`${op.key} ${status}: content type ${mediaType} is not one of ${Object.keys(content).join(', ')}`)
    const v = validatorFor(media.schema.$ref)
    if (!v(body))
      throw new Error(
        `${op.key} ${status}: body does not match ${media.schema.$ref}: ${ajv.errorsText(v.errors)}\n` +
          `${JSON.stringify(body)}`,
      )
  }
  exercised.add(op.key)
}

interface Reply {
  status: number
  headers: IncomingHttpHeaders
  body: Json
}

async function api(
  erp: ErpStandin,
  method: 'GET' | 'POST' | 'PATCH',
  path: string,
  opts: { body?: unknown; raw?: string; headers?: Record<string, string>; token?: string | null } = {},
): Promise<Reply> {
  const headers: Record<string, string> = {}
  if (opts.token !== null) headers['authorization'] = `Bearer ${opts.token ?? erp.token}`
  const payload = opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body))
  if (payload !== undefined) headers['content-type'] = 'application/json'
  const res = await request(`${erp.url}${path}`, {
    method,
    headers: { ...headers, ...opts.headers },
    ...(payload !== undefined ? { body: payload } : {}),
  })
  const text = await res.body.text()
  const body = text === '' ? undefined : JSON.parse(text)
  conform(method, path.split('?')[0] ?? path, res.statusCode, res.headers, body)
  return { status: res.statusCode, headers: res.headers, body }
}

let keyCounter = 0
const newKey = (): string => `test-key-${++keyCounter}`
const post = (erp: ErpStandin, path: string, body: unknown, key = newKey()): Promise<Reply> =>
  api(erp, 'POST', path, { body, headers: { 'idempotency-key': key } })
const patch = (erp: ErpStandin, path: string, body: unknown, version?: number): Promise<Reply> =>
  api(erp, 'PATCH', path, { body, headers: version === undefined ? {} : { 'if-match': `"${version}"` } })

async function standin(t: Test, opts: Parameters<typeof startErpStandin>[0] = {}): Promise<ErpStandin> {
  const erp = await startErpStandin(opts)
  t.teardown(() => erp.close())
  return erp
}

// ---------------------------------------------------------------------------------------------

void t.test('the protocol document is valid OpenAPI 3.1 and says what an implementer needs', async (t) => {
  const result = await validate(structuredClone(doc))
  t.ok(result.valid, result.valid ? 'valid' : compileErrors(result))
  t.equal(doc.openapi, '3.1.0')
  t.equal(doc.info.title, 'ERP Connector Protocol')
  t.equal(doc.info.version, '1.2.0')
  t.ok(
    Object.keys(doc.paths).every((p) => p.startsWith('/v1/')),
    'every path is under /v1',
  )
  t.ok(doc.webhooks?.recordChanged?.post, 'the change notification is an OpenAPI webhook')
  for (const section of [
    '## Authentication',
    '## Creating: idempotency',
    '## Updating: optimistic concurrency',
    '## Errors',
    '## Versioning',
    '## Change notifications',
    '## Changes in 1.1',
    '## Changes in 1.2',
  ]) {
    t.ok(doc.info.description.includes(section), `the description has "${section}"`)
  }
})

void t.test('every operation answers as the document says', async (t) => {
  const erp = await standin(t, { system: 'sage300', companyName: 'Riverside Builders' })

  const info = await api(erp, 'GET', '/v1/info')
  t.equal(info.status, 200)
  t.match(info.body, {
    protocol_version: '1.2',
    system: 'sage300',
    company_name: 'Riverside Builders',
    limits: { max_lengths: { vendors: { name: 30 } } },
  })

  const dept = await post(erp, '/v1/departments', { code: '10', name: 'Estimating' })
  t.equal(dept.status, 201)
  const emp = await post(erp, '/v1/employees', {
    first_name: 'Maria',
    last_name: 'Lopez',
    email: 'maria@example.com',
    department_id: dept.body.id,
  })
  t.equal(emp.status, 201)
  t.equal(emp.body.employee_number, '1001', 'the ERP assigns the employee number')
  const job = await post(erp, '/v1/jobs', {
    number: '24-101',
    name: 'Riverside MOB',
    start_date: '2024-03-01',
    customer: 'Riverside Health',
    department_id: dept.body.id,
  })
  t.equal(job.status, 201)
  const std = await post(erp, '/v1/cost-codes', { code: '01-100', name: 'Supervision', parent_code: '01' })
  t.equal(std.status, 201)
  t.equal(std.body.job_id, null, 'the standard list has no job')
  const jobCode = await post(erp, `/v1/jobs/${job.body.id}/cost-codes`, { code: '01-100', name: 'Supervision' })
  t.equal(jobCode.status, 201)
  t.equal(jobCode.body.job_id, job.body.id, 'the job code belongs to its job')
  const vendor = await post(erp, '/v1/vendors', { name: 'Acme Concrete, Inc.', tax_id: '12-3456789' })
  t.equal(vendor.status, 201)
  t.equal(vendor.headers['location'], `/v1/vendors/${vendor.body.id}`)

  // Protocol 1.2: AP invoices, money as decimal strings.
  const invoice = await post(erp, '/v1/ap-invoices', {
    invoice_number: 'INV-1042',
    vendor_id: vendor.body.id,
    job_id: job.body.id,
    amount: '1250.10',
  })
  t.equal(invoice.status, 201, JSON.stringify(invoice.body))
  t.match(invoice.body, { job_id: job.body.id, amount: '1250.10', reference: '' })
  t.match((await post(erp, '/v1/ap-invoices', { invoice_number: 'X', vendor_id: vendor.body.id, amount: 12.5 })).body, {
    status: 422,
    errors: [{ field: 'amount' }],
  })

  const created = {
    departments: dept,
    employees: emp,
    jobs: job,
    'cost-codes': std,
    vendors: vendor,
    'ap-invoices': invoice,
  }
  for (const [resource, reply] of Object.entries(created)) {
    const list = await api(erp, 'GET', `/v1/${resource}?limit=10`)
    t.equal(list.status, 200)
    t.same(
      list.body.data.map((r: Json) => r.id),
      [reply.body.id],
      `GET /v1/${resource} lists the record`,
    )
    const one = await api(erp, 'GET', `/v1/${resource}/${reply.body.id}`)
    t.equal(one.headers['etag'], '"1"')
    const field = resource === 'employees' ? 'job_title' : resource === 'ap-invoices' ? 'description' : 'name'
    const changed = await patch(erp, `/v1/${resource}/${reply.body.id}`, { [field]: 'Changed' }, 1)
    t.equal(changed.status, 200)
    t.equal(changed.body.version, 2)
    t.equal(changed.headers['etag'], '"2"')
  }

  const jobCodes = await api(erp, 'GET', `/v1/jobs/${job.body.id}/cost-codes`)
  t.same(
    jobCodes.body.data.map((r: Json) => r.id),
    [jobCode.body.id],
  )
  t.equal(
    (await api(erp, 'GET', `/v1/cost-codes/${jobCode.body.id}`)).body.job_id,
    job.body.id,
    'a job code is readable by id',
  )

  erp.setCostTotals(job.body.id, [
    { cost_code: '01-100', cost_type: 'L', budget: '12000.00', actual: '4310.50', committed: '0.00' },
  ])
  const totals = await api(erp, 'GET', `/v1/jobs/${job.body.id}/cost-totals`)
  t.same(totals.body.data, [
    { cost_code: '01-100', cost_type: 'L', budget: '12000.00', actual: '4310.50', committed: '0.00' },
  ])
  erp.seedPayment({ vendor_id: vendor.body.id, job_id: job.body.id, amount: '4310.50', invoice_number: 'A-1001' })
  erp.seedPayment({ vendor_id: vendor.body.id, check_number: null })
  const payments = await api(erp, 'GET', '/v1/payments?limit=1')
  t.equal(payments.body.data.length, 1)
  const rest = await api(erp, 'GET', `/v1/payments?cursor=${payments.body.next_cursor}`)
  t.equal(rest.body.data.length, 1)
  t.equal(rest.body.next_cursor, null)

  // The refusals, each checked against the document by api()
  t.equal((await api(erp, 'GET', '/v1/vendors', { token: 'wrong' })).status, 401)
  t.equal((await api(erp, 'GET', '/v1/vendors/V999999')).status, 404)
  t.equal((await api(erp, 'GET', '/v1/jobs/J999999/cost-codes')).status, 404)
  t.equal((await api(erp, 'GET', '/v1/jobs/J999999/cost-totals')).status, 404)
  t.equal((await post(erp, '/v1/jobs/J999999/cost-codes', { code: '1', name: 'x' })).status, 404)
  t.equal((await api(erp, 'GET', '/v1/vendors?limit=501')).status, 400)
  t.equal((await api(erp, 'GET', '/v1/payments?updated_since=yesterday')).status, 400)
  const badCursor = await api(erp, 'GET', '/v1/jobs?cursor=not-a-cursor')
  t.match(badCursor.body, { status: 400, code: 'invalid_cursor' })
  t.match((await api(erp, 'POST', '/v1/vendors', { body: { name: 'No key' } })).body, {
    status: 400,
    code: 'idempotency_key_missing',
  })
  t.match((await post(erp, '/v1/departments', { code: '10', name: 'Again' })).body, {
    status: 409,
    code: 'already_exists',
    existing_id: dept.body.id,
  })
  t.match((await patch(erp, `/v1/jobs/${job.body.id}`, { name: 'x' }, 1)).body, {
    status: 412,
    code: 'version_mismatch',
    current_version: 2,
  })
  t.match((await patch(erp, `/v1/jobs/${job.body.id}`, { name: 'x' })).body, { status: 428, code: 'if_match_required' })
  const wrongType = await api(erp, 'POST', '/v1/vendors', {
    raw: 'name=Acme',
    headers: { 'idempotency-key': newKey(), 'content-type': 'application/x-www-form-urlencoded' },
  })
  t.match(wrongType.body, { status: 415, code: 'unsupported_media_type' })
  t.match((await api(erp, 'POST', '/v1/vendors', { raw: '{"name":', headers: { 'idempotency-key': newKey() } })).body, {
    status: 400,
    code: 'bad_request',
  })
  t.match((await patch(erp, `/v1/cost-codes/${std.body.id}`, { job_id: job.body.id }, 2)).body, {
    status: 422,
    errors: [{ field: 'job_id', message: 'job_id is read-only' }],
  })
  erp.faults.push({ match: { pathPrefix: '/v1/info' }, status: 503, retryAfterSeconds: 30 })
  const busy = await api(erp, 'GET', '/v1/info')
  t.match(busy, { status: 503, headers: { 'retry-after': '30' }, body: { code: 'unavailable' } })
  erp.faults.push({ match: { method: 'GET', pathPrefix: '/v1/employees' }, status: 429, retryAfterSeconds: 1 })
  t.match((await api(erp, 'GET', '/v1/employees')).body, { status: 429, code: 'rate_limited' })

  const all = operations.map((op) => op.key).filter((k) => !exercised.has(k))
  t.same(all, [], 'a real response of every operation was checked against the document')
})

void t.test('a create is idempotent, even when its response is lost', async (t) => {
  const erp = await standin(t, { system: 'foundation' })
  const key = '5f0c7e1e-7d6b-4a8e-9a63-3b4b8a9d2f10'

  const first = await post(erp, '/v1/vendors', { name: 'Bright Electric', tax_id: '98-7654321' }, key)
  t.equal(first.status, 201)
  t.notOk(first.headers['idempotent-replayed'])
  const again = await api(erp, 'POST', '/v1/vendors', {
    raw: '{ "tax_id": "98-7654321",  "name": "Bright Electric" }',
    headers: { 'idempotency-key': key },
  })
  t.equal(again.status, 200, 'the replay is 200')
  t.equal(again.headers['idempotent-replayed'], 'true')
  t.equal(again.body.id, first.body.id, 'same key and same body (keys reordered) → same record')
  t.match(erp.stats(), { creates: 1, distinctCreateKeys: 1, records: { vendors: 1 } })

  const other = await post(erp, '/v1/vendors', { name: 'Someone Else' }, key)
  t.match(other.body, { status: 422, code: 'idempotency_key_reused' })
  const otherPath = await post(erp, '/v1/departments', { code: '20', name: 'Bright Electric' }, key)
  t.match(otherPath.body, { status: 422, code: 'idempotency_key_reused' }, 'a key is bound to its path too')

  // A refused create binds nothing: the same key works once the body is fixed.
  const refusedKey = newKey()
  t.equal((await post(erp, '/v1/vendors', { name: 'x'.repeat(31) }, refusedKey)).status, 422)
  t.equal((await post(erp, '/v1/vendors', { name: 'Short Name Co' }, refusedKey)).status, 201)

  // The write commits, the response is lost; the retry with the same key finds the record.
  const lostKey = newKey()
  erp.faults.push({ match: { method: 'POST', pathPrefix: '/v1/vendors' }, dropResponseAfterCommit: true })
  await t.rejects(
    post(erp, '/v1/vendors', { name: 'Lost Response LLC' }, lostKey),
    'the caller sees a broken connection',
  )
  t.equal(erp.calls.at(-1)?.status, 201, 'the stand-in committed the create')
  const retry = await post(erp, '/v1/vendors', { name: 'Lost Response LLC' }, lostKey)
  t.equal(retry.status, 200)
  t.equal(retry.headers['idempotent-replayed'], 'true')
  t.equal(erp.list('vendors').filter((v) => v['name'] === 'Lost Response LLC').length, 1, 'exactly one record')
  t.match(erp.stats(), { creates: 3, distinctCreateKeys: 3, records: { vendors: 3 } })
  t.same(
    erp.calls.filter((c) => c.idempotencyKey === lostKey).map((c) => c.status),
    [201, 200],
  )
})

void t.test('updates need the current version', async (t) => {
  const erp = await standin(t)
  const job = erp.seed('jobs', { name: 'Harbor Bridge' })
  t.equal((await api(erp, 'GET', `/v1/jobs/${job.id}`)).headers['etag'], '"1"')

  const first = await patch(erp, `/v1/jobs/${job.id}`, { city: 'Portland' }, 1)
  t.match(first, { status: 200, headers: { etag: '"2"' }, body: { city: 'Portland', version: 2 } })
  const stale = await patch(erp, `/v1/jobs/${job.id}`, { city: 'Salem' }, 1)
  t.match(stale.body, { status: 412, code: 'version_mismatch', current_version: 2 })
  t.equal(erp.get('jobs', job.id)?.['city'], 'Portland', 'the stale update changed nothing')
  t.match((await patch(erp, `/v1/jobs/${job.id}`, { city: 'Salem' })).body, { status: 428 })
  t.match(
    (await api(erp, 'PATCH', `/v1/jobs/${job.id}`, { body: { city: 'Salem' }, headers: { 'if-match': '*' } })).body,
    { status: 428 },
  )

  const same = await patch(erp, `/v1/jobs/${job.id}`, { city: 'Portland' }, 2)
  t.equal(same.body.version, 2, 'a PATCH that changes nothing keeps the version')
  erp.change('jobs', job.id, { name: 'Harbor Bridge Phase 2' }, { notify: false })
  t.match(
    (await patch(erp, `/v1/jobs/${job.id}`, { city: 'Salem' }, 2)).body,
    { status: 412, current_version: 3 },
    'an edit in the ERP makes the old ETag stale',
  )
  const closed = await patch(erp, `/v1/jobs/${job.id}`, { status: 'inactive' }, 3)
  t.match(closed.body, { status: 'inactive', version: 4 })
})

void t.test('vendor name length follows the ERP', async (t) => {
  const limits = { foundation: 30, sage300: 30, vista: 60, spectrum: 30, quickbooks_desktop: 41, generic: 255 } as const
  for (const system of ERP_SYSTEMS) {
    const erp = await standin(t, { system })
    const max = limits[system]
    const info = await api(erp, 'GET', '/v1/info')
    t.equal(info.body.limits.max_lengths.vendors?.name ?? 255, max, `${system} reports its limit`)

    const tooLong = await post(erp, '/v1/vendors', { name: 'N'.repeat(max + 1) })
    t.equal(tooLong.status, 422, `${system}: ${max + 1} characters are refused`)
    t.same(tooLong.body.errors, [{ field: 'name', message: `name must be at most ${max} characters` }])
    t.equal(erp.stats().records.vendors, 0)
    const fits = await post(erp, '/v1/vendors', { name: 'N'.repeat(max) })
    t.equal(fits.status, 201, `${system}: ${max} characters are accepted`)
    const longer = await patch(erp, `/v1/vendors/${fits.body.id}`, { name: `${'N'.repeat(max)}X` }, 1)
    t.same(
      longer.body.errors,
      [{ field: 'name', message: `name must be at most ${max} characters` }],
      `${system}: an update is held to the same rule`,
    )
  }

  const foundation = await standin(t, { system: 'foundation' })
  const codes = await post(foundation, '/v1/vendors', { name: 'Acme', code: 'ACMECONCRETE' })
  t.same(codes.body.errors, [{ field: 'code', message: 'code must be at most 10 characters' }])
  const dept = await post(foundation, '/v1/departments', { name: 'Field', code: '12345678901' })
  t.same(dept.body.errors, [{ field: 'code', message: 'code must be at most 10 characters' }])
})

void t.test('field rules answer with one message per field', async (t) => {
  const erp = await standin(t)
  const empty = await post(erp, '/v1/employees', {})
  t.match(empty.body, { status: 422, code: 'validation_failed' })
  t.same(empty.body.errors, [
    { field: 'first_name', message: 'first_name is required' },
    { field: 'last_name', message: 'last_name is required' },
  ])
  const bad = await post(erp, '/v1/employees', {
    first_name: ' ',
    last_name: 7,
    email: 'nope',
    department_id: 'D404',
    id: 'E1',
    favourite_color: 'red',
  })
  t.same(bad.body.errors, [
    { field: 'id', message: 'id is read-only' },
    { field: 'favourite_color', message: 'favourite_color is not a employee field' },
    { field: 'first_name', message: 'first_name must not be empty' },
    { field: 'last_name', message: 'last_name must be a string' },
    { field: 'email', message: 'email must be an e-mail address such as ap@example.com' },
    { field: 'department_id', message: 'department_id "D404" does not match any department' },
  ])
  const job = await post(erp, '/v1/jobs', {
    number: 'J-1',
    name: 'Dates',
    status: 'closed',
    start_date: '2024-05-01',
    completion_date: '2024-04-01',
  })
  t.same(job.body.errors, [
    { field: 'status', message: 'status must be one of: active, inactive' },
    { field: 'completion_date', message: 'completion_date must not be before start_date (2024-05-01)' },
  ])
  const noJob = await post(erp, '/v1/jobs', { name: 'No number', start_date: '2024-02-30' })
  t.same(noJob.body.errors, [
    { field: 'number', message: 'number is required' },
    { field: 'start_date', message: 'start_date must be a date in the form YYYY-MM-DD, or null' },
  ])
  const vendor = erp.seed('vendors', { name: 'Acme', code: 'ACME01' })
  const dup = await post(erp, '/v1/vendors', { name: 'Acme Again', code: 'acme01' })
  t.match(
    dup.body,
    { status: 409, code: 'already_exists', existing_id: vendor.id, errors: [{ field: 'code' }] },
    'codes are unique regardless of case',
  )
  t.match((await patch(erp, `/v1/vendors/${vendor.id}`, {}, 1)).body, { status: 422 })
})

void t.test('a cursor walk returns each of 3,000 records exactly once', async (t) => {
  const erp = await standin(t, { system: 'vista' })
  const ids: string[] = []
  for (let i = 0; i < 3000; i += 1) ids.push(erp.seed('vendors', { name: `Vendor ${i}` }).id)

  async function walk(
    limit: number,
    between?: (page: number, seen: string[]) => void,
  ): Promise<{ seen: string[]; pages: number }> {
    const seen: string[] = []
    let cursor: string | null = null
    let pages = 0
    let previous: [string, string] | undefined
    do {
      const q: string = cursor === null ? `limit=${limit}` : `limit=${limit}&cursor=${encodeURIComponent(cursor)}`
      const page = await api(erp, 'GET', `/v1/vendors?${q}`)
      t.equal(page.status, 200)
      for (const r of page.body.data) {
        const key: [string, string] = [r.updated_at, r.id]
        if (previous && !(previous[0] < key[0] || (previous[0] === key[0] && previous[1] < key[1])))
          t.fail(`out of order at ${r.id}`)
        previous = key
        seen.push(r.id)
      }
      cursor = page.body.next_cursor
      pages += 1
      if (cursor !== null) between?.(pages, seen)
    } while (cursor !== null)
    return { seen, pages }
  }
  const count = (list: string[]) => list.reduce((m, id) => m.set(id, (m.get(id) ?? 0) + 1), new Map<string, number>())

  const still = await walk(500)
  t.equal(still.pages, 6, 'six full pages, the last with next_cursor null')
  t.equal(still.seen.length, 3000)
  t.same(new Set(still.seen), new Set(ids))

  // Inserts during the walk land after every existing record: nothing is skipped or repeated.
  const inserted: string[] = []
  const growing = await walk(137, () => {
    inserted.push(erp.seed('vendors', { name: `Late ${inserted.length}` }).id)
  })
  const counts = count(growing.seen)
  t.ok(
    ids.every((id) => counts.get(id) === 1),
    'each original record exactly once',
  )
  t.ok(
    [...counts.values()].every((n) => n === 1),
    'no record twice',
  )
  t.ok(
    inserted.length > 0 && inserted.every((id) => counts.get(id) === 1),
    'records inserted during the walk are returned once too',
  )

  // A record changed after it was returned moves to the end: seen again, never skipped.
  const changedMidWalk = ids[5] ?? ''
  const moving = await walk(400, (page) => {
    if (page === 2) erp.change('vendors', changedMidWalk, { phone: '555-0100' }, { notify: false })
  })
  const movingCounts = count(moving.seen)
  t.equal(movingCounts.get(changedMidWalk), 2, 'the changed record comes again')
  t.ok(
    ids.every((id) => (movingCounts.get(id) ?? 0) >= 1),
    'no record skipped',
  )

  // updated_since is inclusive and narrows the walk.
  const ordered = erp.list('vendors')
  const from = ordered[2000]
  const since = await api(
    erp,
    'GET',
    `/v1/vendors?limit=500&updated_since=${encodeURIComponent(String(from?.updated_at))}`,
  )
  t.equal(since.body.data[0]?.id, from?.id, 'updated_since is inclusive')
  let total = since.body.data.length
  let cursor: string | null = since.body.next_cursor
  while (cursor !== null) {
    const page = await api(
      erp,
      'GET',
      `/v1/vendors?limit=500&updated_since=${encodeURIComponent(String(from?.updated_at))}` +
        `&cursor=${encodeURIComponent(cursor)}`,
    )
    total += page.body.data.length
    cursor = page.body.next_cursor
  }
  t.equal(total, ordered.length - 2000)
  const otherList = await api(
    erp,
    'GET',
    `/v1/jobs?cursor=${encodeURIComponent(String(since.body.next_cursor ?? still.seen.length))}`,
  )
  t.equal(otherList.status, 400, 'a cursor only works for its own list')
})

void t.test('change notifications are signed per Standard Webhooks', async (t) => {
  const received: Array<{ headers: IncomingHttpHeaders; raw: Buffer }> = []
  let answer = 204
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      received.push({ headers: req.headers, raw: Buffer.concat(chunks) })
      res.writeHead(answer).end()
    })
  })
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => receiver.close(() => resolve())))
  const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/webhooks/erp`
  const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'

  // Our own check, written from the spec rather than from signStandardWebhook.
  const verify = (headers: IncomingHttpHeaders, raw: Buffer, key = secret): boolean => {
    const id = String(headers['webhook-id'])
    const ts = String(headers['webhook-timestamp'])
    const expected = createHmac('sha256', Buffer.from(key.slice(6), 'base64'))
      .update(Buffer.concat([Buffer.from(`${id}.${ts}.`), raw]))
      .digest()
    return String(headers['webhook-signature'])
      .split(' ')
      .some((sig) => {
        const [version, value] = sig.split(',')
        const given = Buffer.from(value ?? '', 'base64')
        return version === 'v1' && given.length === expected.length && timingSafeEqual(given, expected)
      })
  }
  const eventSchema = validatorFor('#/components/schemas/RecordChangedEvent')

  const erp = await standin(t, { system: 'spectrum' })
  t.throws(() => erp.notifications.configure(hookUrl, 'not-a-secret'), 'the secret must be whsec_…')
  erp.notifications.configure(hookUrl, secret)

  const job = erp.seed('jobs', {})
  const code = erp.seed('cost-codes', { job_id: job.id })
  await erp.notifications.idle()
  t.equal(received.length, 0, 'seeding does not notify')

  const vendor = await post(erp, '/v1/vendors', { name: 'Notify Me Inc' })
  await patch(erp, `/v1/vendors/${vendor.body.id}`, { phone: '555-0101' }, 1)
  await patch(erp, `/v1/vendors/${vendor.body.id}`, { active: false }, 2)
  erp.change('jobs', job.id, { city: 'Austin' })
  erp.change('jobs', job.id, { city: 'Dallas' }, { notify: false })
  erp.deactivate('cost-codes', code.id)
  await erp.notifications.idle()

  const events = received.map((r) => JSON.parse(r.raw.toString('utf8')))
  t.same(
    events.map((e) => [e.type, e.resource, e.id, e.job_id]).sort(),
    [
      ['record.created', 'vendors', vendor.body.id, undefined],
      ['record.deactivated', 'cost-codes', code.id, job.id],
      ['record.deactivated', 'vendors', vendor.body.id, undefined],
      ['record.updated', 'jobs', job.id, undefined],
      ['record.updated', 'vendors', vendor.body.id, undefined],
    ].sort(),
  )
  for (const r of received) {
    t.ok(verify(r.headers, r.raw), `signature of ${String(r.headers['webhook-id'])} verifies`)
    t.match(r.headers, { 'content-type': 'application/json', 'webhook-id': /^msg_/, 'webhook-timestamp': /^\d+$/ })
    t.ok(eventSchema(JSON.parse(r.raw.toString('utf8'))), 'the body matches RecordChangedEvent')
  }
  const sample = received[0]
  if (!sample) throw new Error('no notification received')
  t.notOk(verify(sample.headers, Buffer.concat([sample.raw, Buffer.from(' ')])), 'a changed body fails the check')
  t.notOk(
    verify(sample.headers, sample.raw, 'whsec_dGhpcyBpcyBub3QgdGhlIHNlY3JldCBhdCBhbGwh'),
    'another secret fails the check',
  )
  t.same(
    erp.notifications.sent().map((s) => s.status),
    received.map(() => 204),
  )

  // A redelivery keeps the webhook-id (the receiver's dedupe key) and is signed afresh.
  const firstId = String(sample.headers['webhook-id'])
  answer = 500
  erp.notifications.redeliver(firstId)
  await erp.notifications.idle()
  const redelivered = received.at(-1)
  t.equal(redelivered?.headers['webhook-id'], firstId)
  t.equal(redelivered?.raw.toString(), sample.raw.toString())
  t.ok(redelivered && verify(redelivered.headers, redelivered.raw))
  t.equal(erp.notifications.sent().at(-1)?.status, 500, 'the receiver answer is recorded')

  await new Promise<void>((resolve) => receiver.close(() => resolve()))
  erp.change('vendors', vendor.body.id, { phone: '555-0102' })
  await erp.notifications.idle()
  t.equal(erp.notifications.sent().at(-1)?.status, 'error', 'an unreachable receiver is recorded as error')
})

void t.test('the README signing examples match signStandardWebhook', (t) => {
  const vectors = [
    ...readme.matchAll(/secret:\s+(\S+)\nid:\s+(\S+)\ntimestamp:\s+(\d+)\nbody:\s+(.+)\nsignature:\s+(\S+)/g),
  ]
  t.equal(vectors.length, 2, 'the README has the worked example and the Standard Webhooks vector')
  for (const [, secret, id, timestamp, body, signature] of vectors) {
    t.equal(
      signStandardWebhook(String(secret), String(id), String(timestamp), String(body)),
      signature,
      `vector ${String(id)}`,
    )
  }
  t.end()
})

void t.test('bearer token, faults and the call log', async (t) => {
  const erp = await standin(t, { token: 'fixed-token' })
  t.equal(erp.token, 'fixed-token')
  const none = await api(erp, 'GET', '/v1/info', { token: null })
  t.match(none, { status: 401, headers: { 'www-authenticate': 'Bearer' }, body: { code: 'unauthorized' } })
  t.equal((await api(erp, 'GET', '/v1/info', { token: 'fixed-token-2' })).status, 401)

  erp.faults.push({ match: { method: 'GET', pathPrefix: '/v1/jobs' }, status: 503, times: 2 })
  t.equal((await api(erp, 'GET', '/v1/vendors')).status, 200, 'a fault hits only what it matches')
  t.equal((await api(erp, 'GET', '/v1/jobs')).status, 503)
  t.equal((await api(erp, 'GET', '/v1/jobs')).status, 503)
  t.equal((await api(erp, 'GET', '/v1/jobs')).status, 200, 'and only `times` times')

  erp.faults.push({ resetConnection: true })
  await t.rejects(api(erp, 'GET', '/v1/info'))
  t.match(erp.calls.at(-1), { method: 'GET', path: '/v1/info', status: 0 })
  erp.faults.push({ delayMs: 20 })
  t.equal((await api(erp, 'GET', '/v1/info')).status, 200, 'a delay still answers')
  erp.faults.push({ status: 500, times: Infinity })
  t.equal((await api(erp, 'GET', '/v1/info')).status, 500)
  erp.faults.clear()
  t.equal((await api(erp, 'GET', '/v1/info')).status, 200)
  t.match(erp.calls.at(-1), { method: 'GET', path: '/v1/info', status: 200 })
})

void t.test('ids and codes look like each ERP', async (t) => {
  const qbd = await standin(t, { system: 'quickbooks_desktop' })
  const v = await post(qbd, '/v1/vendors', { name: 'Quick Vendor' })
  t.match(v.body.id, /^[0-9A-F]{8}-\d{10}$/, 'QuickBooks Desktop ListIDs')
  t.equal(v.body.code, 'QUICKV01')
  const foundation = await standin(t, { system: 'foundation' })
  const fv = await post(foundation, '/v1/vendors', { name: 'Acme Concrete, Inc.' })
  t.match(fv.body, { id: 'V000001', code: 'ACMECO01' })
  t.equal((await post(foundation, '/v1/vendors', { name: 'ACME Co-op' })).body.code, 'ACMECO02', 'codes stay unique')
  t.match(foundation.seed('departments', {}), { id: 'D000001', code: '10' })
  t.match(foundation.seed('jobs', {}).number, /^J-\d{4}-001$/)
  const vista = await standin(t, { system: 'vista' })
  t.equal(
    (await post(vista, '/v1/vendors', { name: 'Numbered Vendor' })).body.code,
    '1001',
    'Vista vendor numbers are numeric',
  )
  t.match(vista.seed('jobs', {}).number, /^\d{2}-101$/)
  t.match(vista.seed('cost-codes', {}), { code: '01-100', parent_code: '01', job_id: null })
})
