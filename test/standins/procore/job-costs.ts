// ERP job costs as the service's Procore connector sends them (src/procore/job-costs.ts, [UNCONFIRMED] paths
// and bodies of Procore's partner-gated ERP endpoints, PROCORE.md §2.3 and §2.9): the project setting that
// lets them in, and the sync endpoint that upserts totals by origin_id — a total replaces the one of the same
// origin, never adds to it. Tests read what each project holds per cost code and cost type.
import type { FastifyInstance } from 'fastify'
import { bodyOf, obj, paramsOf, str, type FieldErrors } from './http.js'
import { resolveScope, type RouteContext } from './resources.js'

/** At most 1,000 items per sync call (§2.8). */
const MAX_ITEMS = 1000
const MONEY = /^-?\d+\.\d{2}$/

/** One job-to-date cost total as Procore holds it. Amounts are the decimal strings received. */
export interface JobCostRow {
  id: string
  project_id: string
  origin_id: string
  cost_code_id: string
  line_item_type_id: string
  job_to_date_cost: string
  committed_cost: string
  budget: string
  updated_at: string
}

export class JobCosts {
  /** project id → origin_id → row */
  readonly rows = new Map<string, Map<string, JobCostRow>>()
  readonly enabled = new Set<string>()
  /** The next sync calls store their updates, then answer this status instead of 200 (the answer is lost). */
  private breaks: Array<{ status: number }> = []
  /** How many item writes were applied in all (a resend counts again; totals do not). */
  applied = 0

  of(projectId: string): JobCostRow[] {
    return [...(this.rows.get(projectId)?.values() ?? [])].map((r) => ({ ...r }))
  }

  failAfterApplying(status: number, times = 1): void {
    for (let i = 0; i < times; i++) this.breaks.push({ status })
  }

  takeBreak(): { status: number } | undefined {
    return this.breaks.shift()
  }
}

export function jobCostRoutes(app: FastifyInstance, ctx: RouteContext, costs: JobCosts): void {
  const { store } = ctx

  app.patch('/rest/v1.0/projects/:project_id/configuration', (request) => {
    const scope = resolveScope(store, request, true)
    const config = obj(bodyOf(request).configuration) ?? {}
    const projectId = scope.projectId ?? paramsOf(request).project_id ?? ''
    if (config.erp_job_cost_transaction_syncing_enabled === true) costs.enabled.add(projectId)
    if (config.erp_job_cost_transaction_syncing_enabled === false) costs.enabled.delete(projectId)
    return { erp_job_cost_transaction_syncing_enabled: costs.enabled.has(projectId) }
  })

  app.patch('/rest/v1.0/erp_job_costs/sync', (request, reply) => {
    const scope = resolveScope(store, request, true)
    const projectId = scope.projectId!
    const updates = bodyOf(request).updates
    if (!Array.isArray(updates)) return reply.code(400).send({ errors: 'updates must be an array' })
    if (updates.length > MAX_ITEMS)
      return reply.code(400).send({ errors: `A maximum of ${MAX_ITEMS} updates can be processed at a time` })
    const entities: JobCostRow[] = []
    const errors: Array<Record<string, unknown>> = []
    const table = costs.rows.get(projectId) ?? new Map<string, JobCostRow>()
    costs.rows.set(projectId, table)
    for (const raw of updates) {
      const item = obj(raw) ?? {}
      const fieldErrors = check(ctx, scope.companyId, projectId, costs, item)
      if (Object.keys(fieldErrors).length > 0) {
        errors.push({ ...item, errors: fieldErrors })
        continue
      }
      const originId = str(item.origin_id)!
      const row: JobCostRow = {
        id: table.get(originId)?.id ?? store.nextId(),
        project_id: projectId,
        origin_id: originId,
        cost_code_id: str(item.cost_code_id)!,
        line_item_type_id: str(item.line_item_type_id)!,
        job_to_date_cost: item.job_to_date_cost as string,
        committed_cost: item.committed_cost as string,
        budget: item.budget as string,
        updated_at: store.now(),
      }
      table.set(originId, row)
      costs.applied++
      entities.push({ ...row })
    }
    const broken = costs.takeBreak()
    if (broken) return reply.code(broken.status).send({ errors: 'Something went wrong' })
    return { entities, errors }
  })
}

function check(
  ctx: RouteContext,
  companyId: string,
  projectId: string,
  costs: JobCosts,
  item: Record<string, unknown>,
): FieldErrors {
  const errors: FieldErrors = {}
  if (!costs.enabled.has(projectId)) errors.project_id = ['does not have ERP job cost syncing enabled']
  if (str(item.origin_id) === undefined) errors.origin_id = ["can't be blank"]
  const code = ctx.store.get('cost_codes', str(item.cost_code_id) ?? '')
  if (!code || String(code.project_id) !== projectId) errors.cost_code_id = ['is invalid']
  const type = ctx.store.get('line_item_types', str(item.line_item_type_id) ?? '')
  if (!type || type.company_id !== companyId) errors.line_item_type_id = ['is invalid']
  for (const field of ['job_to_date_cost', 'committed_cost', 'budget']) {
    const v = item[field]
    // Amounts travel as decimal strings; a JSON number is refused, so a float never gets through unnoticed.
    if (typeof v !== 'string' || !MONEY.test(v)) errors[field] = ['must be a decimal string with two decimals']
  }
  return errors
}
