// Swagger UI's "Try it out" with the pre-filled examples works against `npm run demo` as it is: the examples are the
// demo's ids, and Swagger UI's request interceptor gives each request a fresh Idempotency-Key.
import t from 'tap'
import { startDemo } from './helpers/demo.js'
import { generateOpenApi } from '../src/cli/openapi.js'
import { freshIdempotencyKey } from '../src/plugins/swagger.js'

type Schema = Record<string, any>

/** What Swagger UI pre-fills: a property's example, else its default, for every property that has one. */
function sample(schema: Schema): unknown {
  if (schema.examples) return schema.examples[0]
  if (schema.example !== undefined) return schema.example
  if (schema.type === 'object')
    return Object.fromEntries(
      Object.entries<Schema>(schema.properties ?? {})
        .map(([k, v]) => [k, sample(v)] as const)
        .filter(([, v]) => v !== undefined),
    )
  return schema.default
}

t.test('Try it out: link, create, apply and sync-settings succeed with the examples', async (t) => {
  t.setTimeout(180_000)
  const doc = JSON.parse(await generateOpenApi())
  const printed = await startDemo(t)
  const env = Object.fromEntries([...printed.matchAll(/\b(API|KEY|EDIT)=(\S+)/g)].map((m) => [m[1]!, m[2]!]))
  const auth = { authorization: `Bearer ${env.KEY}` }
  const get = (path: string) => fetch(`${env.API}${path}`, { headers: auth })

  /** The operation as Swagger UI sends it: examples for parameters and body, `given` for what a person types. */
  const tryIt = async (method: string, path: string, given: Record<string, string> = {}) => {
    const op = doc.paths[path][method]
    let url = path
    const headers: Record<string, string> = { ...auth, 'content-type': 'application/json' }
    for (const p of op.parameters ?? []) {
      const value = given[p.name] ?? p.example
      if (value === undefined) continue
      if (p.in === 'path') url = url.replace(`{${p.name}}`, value)
      if (p.in === 'header') headers[p.name] = value
    }
    const body = op.requestBody ? JSON.stringify(sample(op.requestBody.content['application/json'].schema)) : undefined
    const res = await fetch(`${env.API}${url}`, {
      method: method.toUpperCase(),
      headers: freshIdempotencyKey({ headers }).headers,
      ...(body ? { body } : {}),
    })
    return { status: res.status, body: await res.text() }
  }

  const link = await tryIt('post', '/v1/companies/{companyId}/links')
  t.equal(link.status, 201, link.body)
  for (const path of [
    '/v1/companies/{companyId}/records/{type}/create-in-erp',
    '/v1/companies/{companyId}/records/{type}/create-in-procore',
  ]) {
    const res = await tryIt('post', path)
    t.equal(res.status, 202, `${path}: ${res.body}`)
  }

  // A person edits the vendor on both sides, so the discrepancy has the fields the apply example names.
  await fetch(`${env.EDIT}/procore/vendors/4300000006`, { method: 'PATCH', body: '{"business_phone":"555-0199"}' })
  await fetch(`${env.EDIT}/erp/vendors/V000001`, { method: 'PATCH', body: '{"email":"billing@acme.example"}' })
  let id = ''
  for (let i = 0; i < 100 && !id; i++) {
    const list = (await (await get('/v1/companies/5358233/discrepancies?type=vendor')).json()) as any
    const fields: string[] = list.items[0]?.fields.map((f: any) => f.field) ?? []
    if (fields.includes('email') && fields.includes('phone')) id = list.items[0].id
    else await new Promise((r) => setTimeout(r, 200))
  }
  t.ok(id, 'the edits on both sides became one discrepancy')
  const etag = (await get(`/v1/companies/5358233/discrepancies/${id}`)).headers.get('etag')!
  const applied = await tryIt('post', '/v1/companies/{companyId}/discrepancies/{discrepancyId}/apply', {
    discrepancyId: id,
    'if-match': etag,
  })
  t.equal(applied.status, 200, applied.body)
  t.match(JSON.parse(applied.body), { status: 'resolved' })

  const settingsEtag = (await get('/v1/companies/5358233/sync-settings')).headers.get('etag')!
  const settings = await tryIt('put', '/v1/companies/{companyId}/sync-settings', { 'if-match': settingsEtag })
  t.equal(settings.status, 200, settings.body)
})
