import { readFile } from 'node:fs/promises'
import { validate } from '@readme/openapi-parser'
import t from 'tap'
import { generateOpenApi } from '../src/cli/openapi.js'
import { freshIdempotencyKey, IDEMPOTENCY_KEY_EXAMPLE } from '../src/plugins/swagger.js'

t.test('the committed openapi/openapi.json is what the code generates', async (t) => {
  const committed = await readFile(new URL('../openapi/openapi.json', import.meta.url), 'utf8')
  const generated = await generateOpenApi()
  t.ok(committed === generated, 'openapi/openapi.json is stale: run `npm run openapi` and commit the result')
})

t.test('the document is valid OpenAPI and every operation is fully described', async (t) => {
  const document = JSON.parse(await generateOpenApi())
  const result = await validate(structuredClone(document))
  t.ok(result.valid, `valid OpenAPI: ${result.valid ? '' : JSON.stringify(result.errors).slice(0, 500)}`)
  t.equal(document.openapi, '3.1.0')
  t.ok(document.components.schemas.Problem, 'Problem is a named component')
  let operations = 0
  for (const [path, item] of Object.entries<Record<string, any>>(document.paths)) {
    for (const [method, op] of Object.entries<any>(item)) {
      operations++
      const where = `${method.toUpperCase()} ${path}`
      t.ok(op.tags?.length, `${where} has tags`)
      t.ok(op.summary, `${where} has a summary`)
      t.ok(op.description, `${where} has a description`)
      const success = Object.keys(op.responses).filter((s) => s.startsWith('2'))
      t.ok(success.length, `${where} documents its success response`)
      if (path.startsWith('/v1/')) {
        t.same(op.security, [{ apiKey: [] }], `${where} requires an API key`)
        t.ok(op.responses['401']?.content?.['application/problem+json'], `${where} documents 401 as problem+json`)
      }
    }
  }
  t.ok(operations >= 10, `${operations} operations checked`)
})

t.test('Swagger UI: realistic examples, required Idempotency-Key, groups in workflow order', async (t) => {
  const document = JSON.parse(await generateOpenApi())
  // Nothing for Swagger UI to fill from a pattern with random characters.
  const missing: string[] = []
  const walk = (node: unknown, where: string): void => {
    if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${where}/${i}`))
    if (typeof node !== 'object' || node === null) return
    const o = node as Record<string, any>
    if (typeof o.in === 'string' && o.schema) {
      if (o.schema.pattern && o.example === undefined && o.schema.examples === undefined)
        missing.push(`${where} ${o.name}`)
      return
    }
    if (o.pattern && o.example === undefined && o.examples === undefined) missing.push(where)
    for (const [k, v] of Object.entries(o)) if (k !== 'example' && k !== 'examples') walk(v, `${where}/${k}`)
  }
  walk(document.paths, '')
  t.same(missing, [], 'every patterned id has an example')

  for (const [path, item] of Object.entries<Record<string, any>>(document.paths)) {
    for (const [method, op] of Object.entries<any>(item)) {
      for (const [status, response] of Object.entries<any>(op.responses)) {
        const problem = response.content?.['application/problem+json']
        if (problem) t.equal(problem.example?.status, Number(status), `${method} ${path} ${status}: a problem example`)
      }
    }
  }

  // The operations that answer 400 without the header document it as required.
  const required = (path: string) =>
    document.paths[path].post.parameters.find((p: any) => p.name === 'idempotency-key')?.required === true
  for (const path of [
    '/v1/companies/{companyId}/links',
    '/v1/companies/{companyId}/links/bulk',
    '/v1/companies/{companyId}/discrepancies/{discrepancyId}/apply',
    '/v1/companies/{companyId}/records/{type}/create-in-procore',
    '/v1/companies/{companyId}/records/{type}/create-in-erp',
  ])
    t.ok(required(path), `${path}: Idempotency-Key required`)
  t.notOk(required('/v1/companies'), 'optional where it is optional')

  const link = document.paths['/v1/companies/{companyId}/links'].post.requestBody.content['application/json'].schema
  t.same(
    Object.fromEntries(Object.entries<any>(link.properties).map(([k, v]) => [k, v.examples?.[0]])),
    { type: 'vendor', procoreId: '4300000006', erpId: 'V000001' },
    "the link example names the demo's Acme Concrete on both sides",
  )

  t.same(
    document.tags.slice(0, 6).map((tag: any) => tag.name),
    ['companies', 'procore', 'erp', 'records', 'links', 'discrepancies'],
  )
  t.same(document.paths['/webhooks/erp/{companyId}'].post.tags, ['webhooks'])
  t.same(document.paths['/webhooks/procore'].post.tags, ['webhooks'])
  // What the description claims exists: approvals (exports) and schedules each have their routes.
  for (const [claim, path] of [
    [/approver/i, '/v1/companies/{companyId}/exports/{exportId}/accept'],
    [/schedule/i, '/v1/companies/{companyId}/sync-schedule'],
  ] as const) {
    if (claim.test(document.info.description)) t.ok(document.paths[path], `claims only what exists: ${path}`)
  }
})

t.test('Swagger UI sends a fresh Idempotency-Key in place of the example, and a typed one as it is', async (t) => {
  const first = freshIdempotencyKey({ headers: { 'idempotency-key': IDEMPOTENCY_KEY_EXAMPLE } })
  const second = freshIdempotencyKey({ headers: { 'Idempotency-Key': IDEMPOTENCY_KEY_EXAMPLE } })
  t.not(first.headers['idempotency-key'], IDEMPOTENCY_KEY_EXAMPLE)
  t.not(first.headers['idempotency-key'], second.headers['Idempotency-Key'])
  t.same(freshIdempotencyKey({ headers: { 'idempotency-key': 'mine-1' } }).headers, { 'idempotency-key': 'mine-1' })
  // It runs in the browser from its source text: no reference to anything outside itself.
  t.match(String(freshIdempotencyKey), IDEMPOTENCY_KEY_EXAMPLE)
})
