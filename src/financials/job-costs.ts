// Project job costs: for each linked project, the ERP job's cost totals (budget, actual, committed per cost
// code and cost type) go to Procore's job-to-date costs. Totals replace, never add: each is keyed in Procore
// by its ERP job, cost code and cost type, so a re-run or a resend after a crash never counts twice. A total
// is sent only when it changed since Procore last accepted it (a hash per row, job_cost_rows); one whose cost
// code is not linked, or whose cost type has no Procore line item type of the same code, is refused in the
// run with the fix. Amounts stay decimal strings from the ERP's JSON to Procore's.
import { createHash } from 'node:crypto'
import { sql } from 'kysely'
import { Type, type Static } from 'typebox'
import type { AppContext } from '../context.js'
import { transaction, type Db, type Tx } from '../db/database.js'
import type { JobCostAmounts } from '../db/tables/job-costs.js'
import type { CostTotal } from '../erp/cost-totals.js'
import { connectedClient } from '../erp/records.js'
import { AppError, isRetryable } from '../errors.js'
import { enqueue } from '../jobs/queue.js'
import { createRun, defineRunKinds, RunPayload, runJob, type JobRun, type RunResult } from '../jobs/runs.js'
import { defineTask } from '../jobs/task.js'
import { emit } from '../notify/webhooks.js'
import { JOB_COST_BATCH, procoreJobCosts, type JobCostUpdate, type ProcoreJobCosts } from '../procore/job-costs.js'
import { failureMessage } from '../sync/connectors.js'
import { Normalizers } from '../sync/registry.js'
import { toRun, type Run } from '../sync/runs.js'
import { financialSyncAvailable } from './available.js'

const Count = Type.Integer({ minimum: 0 })
/** Refused rows listed in a run's result; the counts cover every row. */
export const MAX_LISTED = 100

const JobCostParams = Type.Object({
  /** Procore project ids; absent: every linked project. */
  projects: Type.Optional(Type.Array(Type.String())),
  /** Send every total, changed or not. */
  full: Type.Boolean(),
  /** Asked by a new project link: waits (with retries) while the job's cost codes are still following it. */
  afterLink: Type.Optional(Type.Boolean()),
})
export type JobCostParams = Static<typeof JobCostParams>

const RefusedRow = Type.Object({
  status: Type.Literal('refused'),
  /** `<job number> <cost code> <cost type>`: the row as people name it. */
  sourceId: Type.String(),
  procoreProjectId: Type.String(),
  erpJobId: Type.String(),
  costCode: Type.Union([Type.String(), Type.Null()]),
  costType: Type.Union([Type.String(), Type.Null()]),
  reason: Type.String(),
  fix: Type.String(),
})
export type RefusedRow = Static<typeof RefusedRow>

const ProjectTally = Type.Object({
  procoreProjectId: Type.String(),
  erpJobId: Type.String(),
  jobNumber: Type.Union([Type.String(), Type.Null()]),
  sent: Count,
  unchanged: Count,
  refused: Count,
})

const JobCostResult = Type.Object({
  /** For the runs summary: the refused rows are job cost totals. */
  type: Type.Literal('job_cost'),
  counts: Type.Object({ sent: Count, unchanged: Count, refused: Count }),
  progress: Type.Object({ done: Count, total: Count }),
  /** Requests spent per side: Procore line item type pages, project settings and sync batches; ERP cost totals. */
  apiCalls: Type.Object({ procore: Count, erp: Count }),
  projects: Type.Array(ProjectTally),
  /** At most MAX_LISTED refused rows. */
  items: Type.Array(RefusedRow),
  truncated: Type.Boolean(),
})
export type JobCostResult = Static<typeof JobCostResult>

export const JobCostKinds = defineRunKinds(
  { job_costs: { params: JobCostParams, result: JobCostResult } },
  {
    describe: failureMessage,
    failed: (tx, run, error) =>
      emit(tx, run.company_id, 'run.failed', { runId: run.id, kind: run.kind, syncType: run.sync_type, error }),
  },
)
type JobCostKind = typeof JobCostKinds.job_costs

/** The sync type of the schedule whose work this is. */
export const JOB_COSTS_SYNC_TYPE = 'project_job_costs'
const TASK = 'job-costs'
const LANES = 2n
const MAX_ATTEMPTS = 5

// ---- requesting a run ----------------------------------------------------------------------

/**
 * A job-cost run in the caller's transaction. For the schedule (origin.syncType) one unfinished run per
 * company: while one is queued or running it is returned with `created: false`. Other runs (after a
 * project link) merge into a queued one of their kind, adding their projects.
 */
export async function requestJobCostsInTx(
  tx: Tx,
  companyId: string,
  params: JobCostParams,
  requestedBy: string,
  origin: { syncType?: string; trigger?: string } = {},
): Promise<{ run: Run; created: boolean }> {
  await sql`select pg_advisory_xact_lock(hashtext(${`job_costs:${companyId}`}))`.execute(tx)
  const base = tx
    .selectFrom('sync_runs')
    .selectAll()
    .where('company_id', '=', companyId)
    .where('kind', '=', JobCostKinds.job_costs.name)
  if (origin.syncType !== undefined) {
    const active = await base
      .where('sync_type', '=', origin.syncType)
      .where('status', 'in', ['queued', 'running'])
      .executeTakeFirst()
    if (active) return { run: toRun(active), created: false }
  } else {
    const queued = await base.where('sync_type', 'is', null).where('status', '=', 'queued').executeTakeFirst()
    if (queued) {
      const before = queued.params as JobCostParams
      const projects =
        before.projects === undefined || params.projects === undefined
          ? undefined
          : [...new Set([...before.projects, ...params.projects])]
      const merged: JobCostParams = {
        full: before.full || params.full,
        ...(projects === undefined ? {} : { projects }),
        ...(before.afterLink === true || params.afterLink === true ? { afterLink: true } : {}),
      }
      const row = await tx
        .updateTable('sync_runs')
        .set({ params: JSON.stringify(merged) })
        .where('id', '=', queued.id)
        .returningAll()
        .executeTakeFirstOrThrow()
      return { run: toRun(row), created: false }
    }
  }
  const row = await createRun(tx, JobCostKinds.job_costs, companyId, params, requestedBy, origin)
  await enqueue(tx, jobCostsTask, { companyId, runId: row.id })
  return { run: toRun(row), created: true }
}

/**
 * After project links are made (links.ts): a job-cost run for those projects, when the company's agent serves
 * cost totals and Procore is connected. It waits for the job's cost codes to follow the link first.
 */
export async function requestJobCostsAfterLink(
  tx: Tx,
  companyId: string,
  links: ReadonlyArray<{ procoreId: string }>,
): Promise<void> {
  if (links.length === 0 || !(await financialSyncAvailable(tx, companyId, ['cost-totals']))) return
  const projects = links.map((l) => l.procoreId)
  await requestJobCostsInTx(tx, companyId, { projects, full: false, afterLink: true }, 'link', { trigger: 'link' })
}

// ---- the work --------------------------------------------------------------------------------

/** Thrown while a newly linked job's cost codes are still following it: the run is tried again later. */
class CostCodesFollowing extends AppError {
  constructor(jobs: number) {
    super(
      503,
      'cost_codes_following',
      'Cost codes still following',
      `The cost codes of ${jobs} newly linked job(s) are still being linked; job costs are sent once they are.`,
    )
  }
}

interface LinkedProject {
  procoreProjectId: string
  erpJobId: string
  jobNumber: string | null
}

interface Pending {
  key: { costCode: string; costType: string }
  hash: string
  amounts: JobCostAmounts
  update: Omit<JobCostUpdate, 'lineItemTypeId'>
  typeCode: string
  sourceId: string
}

/** The key of a total in Procore (origin_id): the ERP job, cost code and cost type it is the total of. */
export const jobCostOrigin = (erpJobId: string, costCode: string, costType: string): string =>
  `${erpJobId}:${costCode}:${costType}`

const code = (v: string): string => Normalizers.code(v) ?? ''

function rowHash(projectId: string, costCodeId: string, typeCode: string, a: JobCostAmounts): string {
  return createHash('sha256')
    .update(JSON.stringify([projectId, costCodeId, typeCode, a.budget, a.actual, a.committed]))
    .digest('hex')
}

async function linkedProjects(db: Db, companyId: string, only: readonly string[] | undefined) {
  let query = db
    .selectFrom('record_links as l')
    .leftJoin('record_snapshots as s', (j) =>
      j
        .onRef('s.company_id', '=', 'l.company_id')
        .on('s.side', '=', 'erp')
        .on('s.type', '=', 'project')
        .onRef('s.external_id', '=', 'l.erp_id'),
    )
    .select(['l.procore_id', 'l.erp_id', sql<string | null>`s.fields->>'number'`.as('number')])
    .where('l.company_id', '=', companyId)
    .where('l.type', '=', 'project')
    .where('l.unlinked_at', 'is', null)
  if (only !== undefined) query = query.where('l.procore_id', 'in', only.length > 0 ? [...only] : ['-'])
  const rows = await query.orderBy('l.procore_id').execute()
  return rows.map((r): LinkedProject => ({ procoreProjectId: r.procore_id, erpJobId: r.erp_id, jobNumber: r.number }))
}

/** The job's cost codes by normalised code, each with the Procore cost code it is linked to (null: none). */
async function jobCostCodes(db: Db, companyId: string, erpJobId: string): Promise<Map<string, string | null>> {
  const rows = await db
    .selectFrom('record_snapshots as s')
    .leftJoin('record_links as l', (j) =>
      j
        .onRef('l.company_id', '=', 's.company_id')
        .on('l.type', '=', 'cost_code')
        .onRef('l.erp_id', '=', 's.external_id')
        .on('l.unlinked_at', 'is', null),
    )
    .select([sql<string | null>`s.fields->>'code'`.as('code'), 'l.procore_id'])
    .where('s.company_id', '=', companyId)
    .where('s.side', '=', 'erp')
    .where('s.type', '=', 'cost_code')
    .where('s.parent_id', '=', erpJobId)
    .where('s.deleted_at', 'is', null)
    .execute()
  const out = new Map<string, string | null>()
  for (const r of rows) if (r.code !== null) out.set(code(r.code), r.procore_id ?? out.get(code(r.code)) ?? null)
  return out
}

/**
 * Whether cost codes are still following newly linked jobs: a link's follow-up has not run yet, some wait for
 * evaluation (sync_dirty), or a create of cost codes in Procore is queued or running (evaluation hands the missing
 * ones to it).
 */
async function costCodesFollowing(db: Db, companyId: string, erpJobIds: readonly string[]): Promise<boolean> {
  if (erpJobIds.length === 0) return false
  const creating = await db
    .selectFrom('sync_runs')
    .select('id')
    .where('company_id', '=', companyId)
    .where('kind', '=', 'create_in_procore')
    .where('status', 'in', ['queued', 'running'])
    .where(sql<boolean>`params->>'type' = 'cost_code'`)
    .executeTakeFirst()
  if (creating) return true
  // A project link answers before its follow-up job has written Procore's origin and compared the pair, which is
  // what sends the job's cost codes after it.
  const settling = await db
    .selectFrom('record_links')
    .select('id')
    .where('company_id', '=', companyId)
    .where('type', '=', 'project')
    .where('erp_id', 'in', [...erpJobIds])
    .where('origin_state', '=', 'pending')
    .executeTakeFirst()
  if (settling) return true
  const row = await db
    .selectFrom('sync_dirty as d')
    .innerJoin('record_snapshots as s', (j) =>
      j
        .onRef('s.company_id', '=', 'd.company_id')
        .onRef('s.side', '=', 'd.side')
        .onRef('s.type', '=', 'd.type')
        .onRef('s.external_id', '=', 'd.external_id'),
    )
    .select(sql<string>`count(distinct s.parent_id)`.as('n'))
    .where('d.company_id', '=', companyId)
    .where('d.type', '=', 'cost_code')
    .where('d.side', '=', 'erp')
    .where('s.parent_id', 'in', [...erpJobIds])
    .executeTakeFirst()
  return Number(row?.n ?? 0) > 0
}

/**
 * Performs a job-cost run: one ERP request per linked project (its cost totals), and Procore requests only
 * for what changed: the line item types once (when a row is to be sent), the project's job-cost setting once
 * per project ever, and one sync call per 1,000 changed rows. Hashes are stored after Procore accepted a batch.
 */
async function work(ctx: AppContext, run: JobRun<JobCostKind>): Promise<RunResult<JobCostKind>> {
  const { companyId, params } = run
  const projects = await linkedProjects(ctx.db, companyId, params.projects)
  if (params.afterLink === true && !run.job.lastAttempt) {
    const jobs = projects.map((p) => p.erpJobId)
    if (await costCodesFollowing(ctx.db, companyId, jobs)) throw new CostCodesFollowing(jobs.length)
  }
  const result: JobCostResult = {
    type: 'job_cost',
    counts: { sent: 0, unchanged: 0, refused: 0 },
    progress: { done: 0, total: projects.length },
    apiCalls: { procore: 0, erp: 0 },
    projects: [],
    items: [],
    truncated: false,
  }
  run.onFailure(() => result)
  if (projects.length === 0) return result
  const { client: erp, connection } = await connectedClient(ctx, companyId)
  if (!connection.info.capabilities.resources.includes('cost-totals')) {
    throw new AppError(
      409,
      'erp_cost_totals_not_served',
      'The ERP agent does not serve cost totals',
      'The ERP agent does not serve jobs/{jobId}/cost-totals (cost-totals in its capabilities); ' +
        'update or configure the agent, then test the connection again.',
    )
  }
  const procore = await procoreJobCosts(ctx, companyId)
  let lineItemTypes: Map<string, string> | undefined
  const typesByCode = async (): Promise<Map<string, string>> => {
    if (lineItemTypes) return lineItemTypes
    const { types, calls } = await procore.lineItemTypes()
    result.apiCalls.procore += calls
    lineItemTypes = new Map()
    for (const t of types) if (t.code) lineItemTypes.set(code(t.code), t.id)
    return lineItemTypes
  }
  const refuse = (row: RefusedRow) => {
    result.counts.refused++
    if (result.items.length < MAX_LISTED) result.items.push(row)
    else result.truncated = true
  }

  for (const project of projects) {
    await run.checkCancelled()
    const tally = { ...project, sent: 0, unchanged: 0, refused: 0 }
    const job = project.jobNumber ?? project.erpJobId
    const totals = await erp.costTotals(project.erpJobId)
    result.apiCalls.erp++
    if (totals === null) {
      refuse({
        status: 'refused',
        sourceId: job,
        procoreProjectId: project.procoreProjectId,
        erpJobId: project.erpJobId,
        costCode: null,
        costType: null,
        reason: `The ERP does not know job ${job} any more (404).`,
        fix:
          `Unlink Procore project ${project.procoreProjectId} from job ${job}, ` +
          'or link it to the job that replaced it.',
      })
      tally.refused++
    } else {
      const pending = await judge(ctx.db, companyId, project, totals, params.full, tally, refuse)
      await send(ctx.db, procore, companyId, run.id, project, pending, typesByCode, result, tally, refuse)
    }
    result.counts.sent += tally.sent
    result.counts.unchanged += tally.unchanged
    if (result.projects.length < MAX_LISTED) result.projects.push(tally)
    result.progress.done++
    await run.progress(result)
  }
  run.log.info({ counts: result.counts, apiCalls: result.apiCalls }, 'job costs done')
  return result
}

/** Splits a job's totals into unchanged, refused (cost code not linked) and pending (to send). */
async function judge(
  db: Db,
  companyId: string,
  project: LinkedProject,
  totals: readonly CostTotal[],
  full: boolean,
  tally: { unchanged: number; refused: number },
  refuse: (row: RefusedRow) => void,
): Promise<Pending[]> {
  const job = project.jobNumber ?? project.erpJobId
  const [codes, stored] = await Promise.all([
    jobCostCodes(db, companyId, project.erpJobId),
    db
      .selectFrom('job_cost_rows')
      .select(['cost_code', 'cost_type', 'hash'])
      .where('company_id', '=', companyId)
      .where('erp_job_id', '=', project.erpJobId)
      .execute(),
  ])
  const hashes = new Map(stored.map((r) => [`${r.cost_code}\u0000${r.cost_type}`, r.hash]))
  const pending: Pending[] = []
  for (const t of totals) {
    const sourceId = `${job} ${t.cost_code} ${t.cost_type}`
    const costCodeId = codes.get(code(t.cost_code))
    if (costCodeId === undefined || costCodeId === null) {
      refuse({
        status: 'refused',
        sourceId,
        procoreProjectId: project.procoreProjectId,
        erpJobId: project.erpJobId,
        costCode: t.cost_code,
        costType: t.cost_type,
        reason:
          costCodeId === undefined
            ? `Cost code ${t.cost_code} of job ${job} is not among the job's cost codes the service has read.`
            : `Cost code ${t.cost_code} of job ${job} is not linked to a Procore cost code.`,
        fix:
          costCodeId === undefined
            ? `Refresh the ERP (erp_project_refresh), then link cost code ${t.cost_code} first.`
            : `Link cost code ${t.cost_code} first (POST /v1/companies/${companyId}/links, type cost_code), ` +
              'then run project_job_costs again.',
      })
      tally.refused++
      continue
    }
    const amounts = { budget: t.budget, actual: t.actual, committed: t.committed }
    const typeCode = code(t.cost_type)
    const hash = rowHash(project.procoreProjectId, costCodeId, typeCode, amounts)
    if (!full && hashes.get(`${t.cost_code}\u0000${t.cost_type}`) === hash) {
      tally.unchanged++
      continue
    }
    pending.push({
      key: { costCode: t.cost_code, costType: t.cost_type },
      hash,
      amounts,
      typeCode,
      sourceId,
      update: {
        originId: jobCostOrigin(project.erpJobId, t.cost_code, t.cost_type),
        costCodeId,
        jobToDateCost: t.actual,
        committedCost: t.committed,
        budget: t.budget,
      },
    })
  }
  return pending
}

/** Sends a project's pending rows in batches; each accepted batch's hashes are stored at once. */
async function send(
  db: Db,
  procore: ProcoreJobCosts,
  companyId: string,
  runId: string,
  project: LinkedProject,
  pending: readonly Pending[],
  typesByCode: () => Promise<Map<string, string>>,
  result: JobCostResult,
  tally: { sent: number; refused: number },
  refuse: (row: RefusedRow) => void,
): Promise<void> {
  if (pending.length === 0) return
  const types = await typesByCode()
  const ready: Array<Pending & { lineItemTypeId: string }> = []
  const base = { status: 'refused' as const, procoreProjectId: project.procoreProjectId, erpJobId: project.erpJobId }
  for (const p of pending) {
    const lineItemTypeId = types.get(p.typeCode)
    if (lineItemTypeId === undefined) {
      refuse({
        ...base,
        sourceId: p.sourceId,
        costCode: p.key.costCode,
        costType: p.key.costType,
        reason: `Cost type ${p.key.costType} has no Procore cost type (line item type) with code ${p.typeCode}.`,
        fix: `Create a cost type with code ${p.typeCode} in Procore (Company Admin, Cost Types) first, then run again.`,
      })
      tally.refused++
    } else ready.push({ ...p, lineItemTypeId })
  }
  if (ready.length === 0) return
  const enabled = await db
    .selectFrom('job_cost_projects')
    .select('procore_project_id')
    .where('company_id', '=', companyId)
    .where('procore_project_id', '=', project.procoreProjectId)
    .executeTakeFirst()
  if (!enabled) {
    await procore.enableSyncing(project.procoreProjectId)
    result.apiCalls.procore++
    await db
      .insertInto('job_cost_projects')
      .values({ company_id: companyId, procore_project_id: project.procoreProjectId })
      .onConflict((oc) => oc.doNothing())
      .execute()
  }
  for (let i = 0; i < ready.length; i += JOB_COST_BATCH) {
    const batch = ready.slice(i, i + JOB_COST_BATCH)
    const outcomes = await procore.sync(
      project.procoreProjectId,
      batch.map((p) => ({ ...p.update, lineItemTypeId: p.lineItemTypeId })),
    )
    result.apiCalls.procore++
    const accepted = batch.filter((_, k) => outcomes[k]?.ok === true)
    batch.forEach((p, k) => {
      const o = outcomes[k]
      if (o && !o.ok) {
        refuse({
          ...base,
          sourceId: p.sourceId,
          costCode: p.key.costCode,
          costType: p.key.costType,
          reason: `Procore refused the total: ${o.error}.`,
          fix: 'Correct what Procore names (in Procore or the ERP), then run project_job_costs again.',
        })
        tally.refused++
      }
    })
    await transaction(db, async (tx) => {
      for (let j = 0; j < accepted.length; j += 500) {
        await tx
          .insertInto('job_cost_rows')
          .values(
            accepted.slice(j, j + 500).map((p) => ({
              company_id: companyId,
              erp_job_id: project.erpJobId,
              cost_code: p.key.costCode,
              cost_type: p.key.costType,
              procore_project_id: project.procoreProjectId,
              hash: p.hash,
              amounts: JSON.stringify(p.amounts),
              run_id: runId,
            })),
          )
          .onConflict((oc) =>
            oc.columns(['company_id', 'erp_job_id', 'cost_code', 'cost_type']).doUpdateSet((eb) => ({
              procore_project_id: eb.ref('excluded.procore_project_id'),
              hash: eb.ref('excluded.hash'),
              amounts: eb.ref('excluded.amounts'),
              run_id: eb.ref('excluded.run_id'),
              sent_at: new Date(),
            })),
          )
          .execute()
      }
    })
    tally.sent += accepted.length
  }
}

/** Performs a job-cost run. One at a time per lane; a transient failure is retried with backoff. */
export const jobCostsTask = defineTask({
  name: TASK,
  payload: RunPayload,
  maxAttempts: MAX_ATTEMPTS,
  queueName: ({ companyId }) => `${TASK}-${BigInt(companyId) % LANES}`,
  run: (ctx, { runId }, job) =>
    runJob(ctx, JobCostKinds.job_costs, runId, job, (run) => work(ctx, run), {
      transient: (error) => error instanceof CostCodesFollowing || isRetryable(error),
    }),
})
