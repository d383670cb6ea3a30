// Procore's side of job costs: the company's line item types (cost types), the project setting that lets
// ERP job costs in, and the ERP job-cost sync endpoint. The last two are ERP integration endpoints, gated to
// Procore partners (PROCORE.md §2.3, §2.9): their paths and bodies are [UNCONFIRMED] and live here, in this
// one file, so that confirming or correcting them is an edit of this file (and of the stand-in that serves
// the same: test/standins/procore/job-costs.ts).
import { Type, type Static } from 'typebox'
import type { AppContext } from '../context.js'
import { ProcoreClient } from './client.js'
import { usableConnection } from './connection.js'
import * as T from './types.js'

const v1 = '/rest/v1.0'

/** Procore's sync endpoints take at most 1,000 items per call (§2.8). */
export const JOB_COST_BATCH = 1000

const Id = Type.String({ pattern: '^\\d{1,19}$' })
const Text = Type.Optional(Type.Union([Type.String(), Type.Null()]))

/** A company cost type (line item type): `GET /rest/v1.0/line_item_types?company_id=` (§2.4). */
export const LineItemType = Type.Object({ id: Id, name: Text, code: Text, base_type: Text })
export type LineItemType = Static<typeof LineItemType>

/** One job cost total as Procore takes it. Amounts are decimal strings, never numbers. */
export interface JobCostUpdate {
  /** Our key of the total (ERP job, cost code, cost type): Procore upserts by it, so a resend replaces. */
  originId: string
  costCodeId: string
  lineItemTypeId: string
  /** Actual cost posted to date in the ERP: Procore's "Job to Date Cost". */
  jobToDateCost: string
  committedCost: string
  budget: string
}

/** What Procore said of one item of a batch: accepted, or refused with its messages. */
export type JobCostOutcome = { ok: true } | { ok: false; error: string }

/**
 * [UNCONFIRMED] The ERP job-cost sync endpoint (`PATCH /rest/v1.0/erp_job_costs/sync`, PROCORE.md §2.9, from
 * Procore's older ERP technical guide). Its body is assumed to follow every other sync endpoint (§2.8): the
 * project, then `updates` keyed by `origin_id`, at most 1,000, answered 200 with `entities` and per-item `errors`.
 */
export const JOB_COST_SYNC = {
  method: 'PATCH',
  path: `${v1}/erp_job_costs/sync`,
  body: (companyId: string, projectId: string, updates: readonly JobCostUpdate[]) => ({
    company_id: companyId,
    project_id: projectId,
    updates: updates.map((u) => ({
      origin_id: u.originId,
      cost_code_id: u.costCodeId,
      line_item_type_id: u.lineItemTypeId,
      job_to_date_cost: u.jobToDateCost,
      committed_cost: u.committedCost,
      budget: u.budget,
    })),
  }),
} as const

/**
 * [UNCONFIRMED path, OFFICIAL body in the older guide] The project setting that lets ERP job costs in
 * (PROCORE.md §2.3): `PATCH /rest/v1.0/projects/{id}/configuration`.
 */
export const JOB_COST_SETTING = {
  method: 'PATCH',
  path: (projectId: string) => `${v1}/projects/${projectId}/configuration`,
  body: { configuration: { erp_job_cost_transaction_syncing_enabled: true } },
} as const

const Configuration = Type.Record(Type.String(), Type.Unknown())

/** The company's job-cost calls; throws (409 problem) when it is not connected to Procore or must reconnect. */
export async function procoreJobCosts(ctx: AppContext, companyId: string): Promise<ProcoreJobCosts> {
  await usableConnection(ctx.db, companyId)
  return new ProcoreJobCosts(ctx, companyId)
}

/** One company's job-cost calls to Procore. Each method is one request (retries aside): callers count them. */
export class ProcoreJobCosts {
  readonly #client: ProcoreClient

  constructor(ctx: AppContext, companyId: string) {
    this.#client = new ProcoreClient(ctx, companyId)
  }

  /** Every line item type of the company, with the number of requests (pages) it took. */
  async lineItemTypes(): Promise<{ types: LineItemType[]; calls: number }> {
    const types: LineItemType[] = []
    let calls = 0
    for await (const page of this.#client.pages(`${v1}/line_item_types`, {
      query: { company_id: this.#client.companyId },
      schema: LineItemType,
    })) {
      calls++
      types.push(...page)
    }
    return { types, calls: Math.max(calls, 1) }
  }

  /** Turns on the project's ERP job-cost syncing setting (idempotent). */
  async enableSyncing(projectId: string): Promise<void> {
    await this.#client.call(JOB_COST_SETTING.method, JOB_COST_SETTING.path(projectId), {
      body: JOB_COST_SETTING.body,
      schema: Configuration,
      idempotent: true,
    })
  }

  /**
   * Sends up to 1,000 totals of one project; each replaces the total Procore holds for its origin_id, so a
   * retry or a resend never adds. Outcomes are in input order.
   */
  async sync(projectId: string, updates: readonly JobCostUpdate[]): Promise<JobCostOutcome[]> {
    if (updates.length > JOB_COST_BATCH) throw new RangeError(`at most ${JOB_COST_BATCH} job costs per call`)
    const result = await this.#client.call(JOB_COST_SYNC.method, JOB_COST_SYNC.path, {
      body: JOB_COST_SYNC.body(this.#client.companyId, projectId, updates),
      schema: T.SyncResult,
      idempotent: true,
    })
    const refused = new Map<string, string>()
    for (const e of result.errors) {
      const origin = typeof e.origin_id === 'string' ? e.origin_id : String(e.origin_id)
      refused.set(origin, messages(e.errors))
    }
    return updates.map((u) => {
      const error = refused.get(u.originId)
      return error === undefined ? { ok: true } : { ok: false, error }
    })
  }
}

/** Procore's per-item errors `{field: [message]}` as one sentence. */
function messages(errors: unknown): string {
  if (typeof errors !== 'object' || errors === null) return 'refused by Procore'
  const parts = Object.entries(errors as Record<string, unknown>).map(
    ([field, list]) => `${field} ${Array.isArray(list) ? list.join(', ') : String(list)}`,
  )
  return parts.length > 0 ? parts.join('; ') : 'refused by Procore'
}
