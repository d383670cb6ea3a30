// `GET /v1/jobs/{jobId}/cost-totals` (openapi/erp-connector.json, listJobCostTotals): a job's budget, actual and
// committed cost per cost code and cost type. Read-only and not paginated; money is a decimal string with two
// decimals, never a JSON number, and stays a string here.
import { Type, type Static } from 'typebox'
import { Compile } from 'typebox/compile'

const Money = Type.String({ pattern: '^-?[0-9]+\\.[0-9]{2}$' })

/** Unknown members are ignored (protocol 1.1): the objects stay open. */
export const CostTotal = Type.Object({
  cost_code: Type.String({ minLength: 1 }),
  cost_type: Type.String({ minLength: 1 }),
  budget: Money,
  actual: Money,
  committed: Money,
})
export type CostTotal = Static<typeof CostTotal>

const CostTotals = Compile(Type.Object({ data: Type.Array(CostTotal) }))

/** Throws an Error naming what is wrong; the HTTP layer turns it into an `invalid_response` UpstreamError. */
export function parseCostTotals(body: unknown): CostTotal[] {
  if (!CostTotals.Check(body)) {
    const first = [...CostTotals.Errors(body)][0]
    throw new Error(
      `cost-totals do not match the protocol: ${first ? `${first.instancePath || '/'} ${first.message}` : 'bad shape'}`,
    )
  }
  return body.data.map((t) => ({
    cost_code: t.cost_code,
    cost_type: t.cost_type,
    budget: t.budget,
    actual: t.actual,
    committed: t.committed,
  }))
}
