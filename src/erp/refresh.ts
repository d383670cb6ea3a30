// ERP refresh: pages through the agent's lists into ERP-side snapshots and marks records that
// are no longer listed as deleted. Requested through the API (a run to poll) and run as a job,
// one at a time per company.
import type { Task } from 'graphile-worker'
import type { AppContext } from '../context.js'
import { transaction, type Db } from '../db/database.js'
import { UpstreamError } from '../http/errors.js'
import { enqueue } from '../jobs/queue.js'
import { RecordTypes, entity, type RecordType } from '../sync/registry.js'
import { createRun, finishRun, getRun, startRun, updateRunResult, type Run } from '../sync/runs.js'
import { dbNow, markUnseenDeleted, upsertSnapshots, type SnapshotChange } from '../sync/snapshots.js'
import type { ErpClient } from './client.js'
import { hasConnection } from './connections.js'
import { ErpNotConnectedError } from './errors.js'
import type { ErpRecordJson } from './protocol.js'
import { connectedClient } from './records.js'

export const REFRESH_TASK = 'erp-refresh'
export const REFRESH_RUN_KIND = 'erp_refresh'
const MAX_ATTEMPTS = 5
/** Job cost-code lists fetched at once (the HTTP layer also caps requests per company). */
const JOB_PARALLELISM = 4

interface RefreshPayload {
  companyId: string
  runId: string
  types: RecordType[]
}

export interface TypeTally {
  listed: number
  created: number
  changed: number
  unchanged: number
  stale: number
  deleted: number
  pages: number
  /** cost_code only: jobs whose cost codes were listed. */
  jobs?: number
  /** Set when the agent does not serve the resource (capabilities.resources): nothing was read or marked. */
  skipped?: string
}

/**
 * Creates a run and, in the same transaction, the job that performs it; the caller polls the
 * run. `type` limits the refresh to one record type.
 */
export async function requestRefresh(db: Db, companyId: string, type: RecordType | undefined, requestedBy: string): Promise<Run> {
  if (!(await hasConnection(db, companyId))) throw new ErpNotConnectedError(companyId)
  const types = type === undefined ? [...RecordTypes] : [type]
  return transaction(db, async (tx) => {
    const run = await createRun(tx, companyId, REFRESH_RUN_KIND, { types }, requestedBy)
    const payload: RefreshPayload = { companyId, runId: run.id, types }
    // One queue per company: refreshes of a company run one after another, never side by side.
    await enqueue(tx, REFRESH_TASK, { ...payload }, { queueName: `erp-refresh:${companyId}`, maxAttempts: MAX_ATTEMPTS })
    return run
  })
}

export function refreshTasks(ctx: AppContext): Record<string, Task> {
  return {
    [REFRESH_TASK]: async (payload, helpers) => {
      const { companyId, runId, types } = payload as RefreshPayload
      const run = await getRun(ctx.db, companyId, runId)
      if (run.status === 'succeeded' || run.status === 'failed') return
      const log = ctx.log.child({ component: 'erp-refresh', companyId, runId })
      await startRun(ctx.db, runId)
      const tallies: Partial<Record<RecordType, TypeTally>> = {}
      try {
        const { client, connection } = await connectedClient(ctx, companyId)
        const served = new Set(connection.info.capabilities.resources)
        const jobIds = new Set<string>()
        for (const type of RecordTypes.filter((t) => types.includes(t))) {
          tallies[type] = await refreshType(ctx, client, served, companyId, type, jobIds, async () => updateRunResult(ctx.db, runId, { types: tallies }))
          await updateRunResult(ctx.db, runId, { types: tallies })
        }
        await finishRun(ctx.db, runId, { status: 'succeeded', result: { types: tallies } })
        log.info({ types: tallies }, 'ERP refresh done')
      } catch (error) {
        const message = describe(error)
        // Final: the agent refused us (401, 404, a response that breaks the protocol) or the company has no connection.
        const final = error instanceof UpstreamError ? !error.retryable : error instanceof ErpNotConnectedError
        if (!final && helpers.job.attempts < helpers.job.max_attempts) {
          // The job runs again with backoff; the run stays `running` and says why it waits.
          await updateRunResult(ctx.db, runId, { types: tallies, lastError: message, attempt: helpers.job.attempts })
          log.warn({ err: { message }, attempt: helpers.job.attempts }, 'ERP refresh interrupted; it will be retried')
          throw error
        }
        await finishRun(ctx.db, runId, { status: 'failed', result: { types: tallies }, error: message })
        log.warn({ err: { message } }, 'ERP refresh failed')
        if (!final) throw error
      }
    },
  }
}

/**
 * Lists every record of one type and upserts the snapshots page by page; once the listing is
 * complete, what was not seen since it began is marked deleted. Cost codes are the standard list
 * plus the list of every ERP job (parentId = job id).
 */
async function refreshType(
  ctx: AppContext, client: ErpClient, served: ReadonlySet<string>, companyId: string, type: RecordType, jobIds: Set<string>, progress: () => Promise<void>,
): Promise<TypeTally> {
  const tally: TypeTally = { listed: 0, created: 0, changed: 0, unchanged: 0, stale: 0, deleted: 0, pages: 0 }
  const resource = entity(type).erp.resource
  // An agent that does not serve a list answers 404 for it; not reading it must not mark its records deleted.
  if (!served.has(resource)) return { ...tally, skipped: `the agent does not serve ${resource}` }
  // The database's clock, as `seen_at` is set by it: no skew between this process and PostgreSQL.
  const startedAt = await dbNow(ctx.db)
  const store = async (records: ErpRecordJson[]) => {
    for (const change of await storePage(ctx.db, companyId, type, records)) tally[change.change]++
    tally.listed += records.length
    tally.pages++
  }

  for await (const page of client.list(resource)) {
    await store(page)
    if (type === 'project') for (const job of page) jobIds.add(job.id)
    await progress()
  }
  if (type === 'cost_code' && served.has('job-cost-codes') && served.has('jobs')) {
    if (jobIds.size === 0) {
      for await (const page of client.list('jobs')) for (const job of page) jobIds.add(job.id)
    }
    const queue = [...jobIds]
    tally.jobs = 0
    const worker = async () => {
      for (let jobId = queue.shift(); jobId !== undefined; jobId = queue.shift()) {
        for await (const page of client.list('cost-codes', { jobId })) await store(page)
        tally.jobs = (tally.jobs ?? 0) + 1
        if (tally.jobs % 25 === 0) await progress()
      }
    }
    await Promise.all(Array.from({ length: Math.min(JOB_PARALLELISM, queue.length) }, worker))
  }
  // Without job cost codes only the standard list was read: only its records can be judged gone.
  const scope = type === 'cost_code' && tally.jobs === undefined ? null : undefined
  tally.deleted = (await markUnseenDeleted(ctx.db, companyId, 'erp', type, startedAt, scope)).length
  return tally
}

/** One page into snapshots. A record listed twice in a page (it changed mid-walk) keeps its newest state. */
async function storePage(db: Db, companyId: string, type: RecordType, records: ErpRecordJson[]): Promise<SnapshotChange[]> {
  const newest = new Map<string, ErpRecordJson>()
  for (const record of records) {
    const known = newest.get(record.id)
    if (known === undefined || record.version >= known.version) newest.set(record.id, record)
  }
  const def = entity(type)
  return upsertSnapshots(db, companyId, 'erp', type, [...newest.values()].map((json) => ({ ...def.erp.from(json), raw: json })))
}

function describe(error: unknown): string {
  if (error instanceof UpstreamError) {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : ''
    return `${error.message}${cause}`.slice(0, 2000)
  }
  return error instanceof Error ? error.message : String(error)
}
