import type { AppContext } from '../context.js'
import { transaction, type Db } from '../db/database.js'
import { enqueue } from '../jobs/queue.js'
import type { Actor } from './audit.js'
import { evaluateLinks } from './discrepancies.js'
import { insertLinks } from './links.js'
import { SyncTasks } from './queue.js'
import type { RecordType } from './registry.js'
import { createRun, finishRun, getRun, startRun, type Run } from './runs.js'
import { planBulkLink } from './suggestions.js'

export const BULK_LINK_KIND = 'bulk_link'
/** Items listed one by one in a run's result; counts always cover everything. */
const MAX_LISTED = 10_000

interface BulkPayload { companyId: string; runId: string }

export async function requestBulkLink(db: Db, companyId: string, type: RecordType, minScore: number, actor: Actor): Promise<Run> {
  return transaction(db, async (tx) => {
    const run = await createRun(tx, companyId, BULK_LINK_KIND, { type, minScore }, actor.id)
    const payload: BulkPayload = { companyId, runId: run.id }
    await enqueue(tx, SyncTasks.bulkLink, { ...payload }, { queueName: `create:${companyId}:${type}`, maxAttempts: 3 })
    return run
  })
}

/**
 * Links every unambiguous pair scoring at least minScore (set-based: one scoring pass over the
 * whole company, one insert), evaluates the new links, and reports each pair: linked, ambiguous
 * (with why), or skipped because a record got linked meanwhile.
 */
export async function runBulkLink(ctx: AppContext, payload: BulkPayload): Promise<void> {
  const run = await getRun(ctx.db, payload.companyId, payload.runId)
  if (run.status === 'succeeded' || run.status === 'failed') return
  const { type, minScore } = run.params as { type: RecordType; minScore: number }
  const actor = { id: run.requestedBy }
  await startRun(ctx.db, run.id)
  const plan = await planBulkLink(ctx.db, payload.companyId, type, minScore, { statementTimeoutMs: 600_000 })
  const linked = await transaction(ctx.db, async (tx) => {
    const { inserted, skipped } = await insertLinks(tx, payload.companyId, type, plan.unambiguous.map((p) => ({
      procoreId: p.sourceId, erpId: p.candidateId, detail: `bulk link (run ${run.id}): score ${p.score} (${p.reasons.join(', ')})`,
    })), actor)
    for (let i = 0; i < inserted.length; i += 1000) await evaluateLinks(tx, payload.companyId, type, inserted.slice(i, i + 1000).map((l) => l.id), actor)
    return { inserted, skipped }
  })
  const linkOf = new Map(linked.inserted.map((l) => [l.procoreId, l.id]))
  const items = [
    ...plan.unambiguous.map((p) => (linkOf.has(p.sourceId)
      ? { procoreId: p.sourceId, erpId: p.candidateId, score: p.score, reasons: p.reasons, status: 'linked', linkId: linkOf.get(p.sourceId) }
      : { procoreId: p.sourceId, erpId: p.candidateId, score: p.score, reasons: p.reasons, status: 'skipped', reason: 'one of the two records got linked meanwhile' })),
    ...plan.ambiguous.map((a) => ({ procoreId: a.procoreId, erpId: a.erpId, score: a.score, reasons: a.reasons, status: 'ambiguous', reason: a.why })),
  ]
  const counts = { linked: linked.inserted.length, skipped: linked.skipped.length, ambiguous: plan.ambiguous.length }
  await finishRun(ctx.db, run.id, { status: 'succeeded', result: { type, minScore, counts, items: items.slice(0, MAX_LISTED), truncated: items.length > MAX_LISTED, nameMatchingSkipped: plan.nameMatchingSkipped } })
}
