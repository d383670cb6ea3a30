import { readFileSync } from 'node:fs'
import { compileErrors, validate } from '@readme/openapi-parser'
import t from 'tap'
import {
  CodeFormatSchema,
  ErpResources,
  InfoSchema,
  NonNullableText,
  RecordChangedSchema,
  RecordSchemas,
} from '../../src/erp/protocol.js'

// The client's view of the protocol (src/erp/protocol.ts) must be the document's, field for field.
type Json = ReturnType<typeof JSON.parse>
const doc: Json = JSON.parse(readFileSync(new URL('../../openapi/erp-connector.json', import.meta.url), 'utf8'))
const schemas = doc.components.schemas as Record<string, Json>
const SCHEMA_OF: Record<(typeof ErpResources)[number], string> = {
  departments: 'Department',
  employees: 'Employee',
  jobs: 'Job',
  'cost-codes': 'CostCode',
  vendors: 'Vendor',
  'ap-invoices': 'ApInvoice',
}

/** A schema's accepted JSON types and enum, from either TypeBox's or the document's spelling. */
function shape(s: Json): { types: string[]; enum?: string[] } {
  if (Array.isArray(s.anyOf)) {
    const parts = s.anyOf.map(shape)
    return { types: [...new Set(parts.flatMap((p: { types: string[] }) => p.types))].sort() as string[] }
  }
  const types = s.enum ? ['string'] : [s.type].flat()
  return { types: types.sort(), ...(s.enum && { enum: [...s.enum].sort() }) }
}

t.test('the protocol document is valid OpenAPI 3.1', async (t) => {
  const result = await validate(structuredClone(doc))
  t.ok(result.valid, result.valid ? 'valid' : compileErrors(result))
})

t.test('record schemas match the document field for field', async (t) => {
  for (const resource of ErpResources) {
    const ours = RecordSchemas[resource] as Json
    const theirs = schemas[SCHEMA_OF[resource]]
    t.same(Object.keys(ours.properties).sort(), Object.keys(theirs.properties).sort(), `${resource}: fields`)
    t.same([...ours.required].sort(), [...theirs.required].sort(), `${resource}: required`)
    for (const [field, s] of Object.entries(theirs.properties as Record<string, Json>)) {
      const { types, enum: values } = shape(s)
      t.same(shape(ours.properties[field]).types, types, `${resource}.${field}: type`)
      if (values) t.same(shape(ours.properties[field]).enum, values, `${resource}.${field}: values`)
    }
    const textNeverNull = Object.entries(theirs.properties as Record<string, Json>)
      .filter(([field, s]) => s.type === 'string' && !s.enum && !['id', 'updated_at'].includes(field))
      .map(([field]) => field)
      .sort()
    t.same([...NonNullableText[resource]].sort(), textNeverNull, `${resource}: text that is "" rather than null`)
  }
})

t.test('info and the notification body match the document', async (t) => {
  const info = InfoSchema as Json
  t.same([...info.required].sort(), [...schemas['Info'].required].sort())
  t.same(shape(info.properties.system).enum, [...schemas['Info'].properties.system.enum].sort())
  t.same([...info.properties.limits.required].sort(), [...schemas['Info'].properties.limits.required].sort())
  const theirFormat = schemas['CodeFormat']
  const ourFormat = CodeFormatSchema as Json
  t.same(Object.keys(ourFormat.properties).sort(), Object.keys(theirFormat.properties).sort(), 'code formats')
  t.same([...ourFormat.required].sort(), [...theirFormat.required].sort())
  t.notOk('additionalProperties' in schemas['RecordChangedEvent'], 'notifications may carry fields we do not know')
  const served = schemas['Info'].properties.capabilities.properties.resources.items.enum as string[]
  t.ok(ErpResources.every((r) => served.includes(r)))

  const ours = RecordChangedSchema as Json
  const theirs = schemas['RecordChangedEvent']
  t.same(Object.keys(ours.properties).sort(), Object.keys(theirs.properties).sort())
  t.same([...ours.required].sort(), [...theirs.required].sort())
  t.same(shape(ours.properties.type).enum, [...theirs.properties.type.enum].sort())
  t.same(shape(ours.properties.resource).enum, [...theirs.properties.resource.enum].sort())
  t.same(
    [...ErpResources].sort(),
    [...theirs.properties.resource.enum].sort(),
    'every notifiable resource is one the client reads',
  )
})
