// Seed 000's flows for project records, through the same code as every other type (fixtures/flows.ts).
import t from 'tap'
import { cases, flow } from './fixtures/flows.js'

t.test('project: link, create both ways, resolve a discrepancy, propagate an owned field', (t) =>
  flow(t, cases.project),
)
