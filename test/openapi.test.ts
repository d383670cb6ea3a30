import { readFile } from 'node:fs/promises'
import { validate } from '@readme/openapi-parser'
import t from 'tap'
import { generateOpenApi } from '../src/cli/openapi.js'

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
