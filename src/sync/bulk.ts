import type { AppContext } from '../context.js'
import { transaction, type Db } from '../db/database.js'
import { enqueue } from '../jobs/queue.js'
import { createRun, RunPayload, runJob, type JobRun, type RunResult } from '../jobs/runs.js'
import { defineTask } from '../jobs/task.js'
import type { Actor } from './audit.js'
import { createLane } from './create.js'
import { heldRecords } from './hold.js'
import { evaluateLinks } from './discrepancies.js'
import { insertLinks, refreshLinkFacts } from './links.js'
import { Registry, type RecordType } from './registry.js'
import { RunKinds, toRun, type Run } from './runs.js'
import { planBulkLink } from './suggestions.js'

/** Items listed one by one in a run's result; counts always cover everything. */
const MAX_LISTED = 10_000

type BulkKind = typeof RunKinds.bulk_link

/** Performs a bulk-link run. */
export const bulkLinkTask = defineTask({
  name: 'sync:bulk-link',
  payload: RunPayload,
  maxAttempts: 3,
  // Database work only: whatever fails (a statement timeout, a lost connection) may pass the next time.
  run: (ctx, { runId }, job) =>
    runJob(ctx, RunKinds.bulk_link, runId, job, (run) => bulkLink(ctx, run), { transient: () => true }),
})

export async function requestBulkLink(
  db: Db,
  companyId: string,
  type: RecordType,
  minScore: number,
  actor: Actor,
): Promise<Run> {
  return transaction(db, async (tx) => {
    const run = await createRun(tx, RunKinds.bulk_link, companyId, { type, minScore }, actor.id)
    await enqueue(tx, bulkLinkTask, { companyId, runId: run.id }, { queueName: createLane(companyId, type) })
    return toRun(run)
  })
}

/**
 * Links every unambiguous pair scoring at least minScore (set-based: one scoring pass over the
 * whole company, one insert), evaluates the new links, and reports each pair: linked, ambiguous
 * (with why), or skipped because a record got linked meanwhile.
 */
async function bulkLink(ctx: AppContext, run: JobRun<BulkKind>): Promise<RunResult<BulkKind>> {
  const {
    companyId,
    params: { type, minScore },
  } = run
  return linkUnambiguous(ctx, companyId, type, minScore, { id: run.requestedBy }, `bulk link (run ${run.id})`)
}

/**
 * Links every unambiguous pair scoring at least minScore (`strongOnly`: and sharing a strong key,
 * as onboarding's auto import does) and reports each pair. Safe to repeat: linked records are no
 * longer candidates. `why` starts the audit detail of each link.
 */
export async function linkUnambiguous(
  ctx: AppContext,
  companyId: string,
  type: RecordType,
  minScore: number,
  actor: Actor,
  why: string,
  options: { strongOnly?: boolean } = {},
): Promise<RunResult<BulkKind>> {
  if (Registry[type].linkPrerequisites) await refreshLinkFacts(ctx, companyId)
  const plan = await planBulkLink(ctx.db, companyId, type, minScore, {
    statementTimeoutMs: 600_000,
    ...(options.strongOnly ? { strongOnly: true } : {}),
  })
  // Records waiting for an accounting approver are held: their export request links them.
  const held = await heldRecords(
    ctx.db,
    companyId,
    type,
    plan.unambiguous.map((p) => p.sourceId),
  )
  const linked = await transaction(ctx.db, async (tx) => {
    const { inserted, skipped, refused } = await insertLinks(
      tx,
      companyId,
      type,
      plan.unambiguous
        .filter((p) => !held.has(p.sourceId))
        .map((p) => ({
          procoreId: p.sourceId,
          erpId: p.candidateId,
          detail: `${why}: score ${p.score} (${p.reasons.join(', ')})`,
        })),
      actor,
    )
    for (let i = 0; i < inserted.length; i += 1000) {
      await evaluateLinks(
        tx,
        companyId,
        type,
        inserted.slice(i, i + 1000).map((l) => l.id),
        actor,
      )
    }
    return { inserted, skipped, refused }
  })
  const linkOf = new Map(linked.inserted.map((l) => [l.procoreId, l.id]))
  const unmetOf = new Map(linked.refused.map((r) => [r.procoreId, r.unmet]))
  const items: RunResult<BulkKind>['items'] = [
    ...plan.unambiguous.map((p) => {
      const linkId = linkOf.get(p.sourceId)
      const pair = { procoreId: p.sourceId, erpId: p.candidateId, score: p.score, reasons: p.reasons }
      const unmet = unmetOf.get(p.sourceId)
      return linkId !== undefined
        ? { ...pair, status: 'linked' as const, linkId }
        : unmet
          ? {
              ...pair,
              status: 'skipped' as const,
              reason: `link prerequisites not met: ${unmet.map((u) => `${u.code} (${u.detail} ${u.fix})`).join('; ')}`,
              unmet: unmet.map((u) => ({ code: u.code, detail: u.detail, fix: u.fix, fixable: u.fixable })),
            }
          : {
              ...pair,
              status: 'skipped' as const,
              reason: held.has(p.sourceId)
                ? `the Procore record waits for an accounting approver (export request ${held.get(p.sourceId)})`
                : 'one of the two records got linked meanwhile',
            }
    }),
    ...plan.ambiguous.map((a) => ({
      procoreId: a.procoreId,
      erpId: a.erpId,
      score: a.score,
      reasons: a.reasons,
      status: 'ambiguous' as const,
      reason: a.why,
    })),
  ]
  const counts = {
    linked: linked.inserted.length,
    skipped: linked.skipped.length + linked.refused.length + held.size,
    ambiguous: plan.ambiguous.length,
  }
  const listed = { items: items.slice(0, MAX_LISTED), truncated: items.length > MAX_LISTED }
  return { type, minScore, counts, ...listed, nameMatchingSkipped: plan.nameMatchingSkipped }
}
