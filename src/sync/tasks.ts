import type { Task } from 'graphile-worker'
import type { AppContext } from '../context.js'
import { runBulkLink } from './bulk.js'
import { failureMessage } from './connectors.js'
import { runCreate } from './create.js'
import { runEvaluation } from './evaluate.js'
import { runOrigins } from './links.js'
import { propagateLink } from './propagate.js'
import { SyncTasks } from './queue.js'
import type { RecordType } from './registry.js'
import { finishRun } from './runs.js'

/** The sync domain's background tasks; src/jobs/tasks.ts composes them into the runner's list. */
export function syncTasks(ctx: AppContext): Record<string, Task> {
  const log = ctx.log.child({ component: 'sync' })
  return {
    [SyncTasks.evaluate]: async (payload) => {
      const p = payload as { companyId: string; type: RecordType }
      const started = process.hrtime.bigint()
      const { evaluated } = await runEvaluation(ctx, p.companyId, p.type)
      if (evaluated > 0) log.debug({ companyId: p.companyId, type: p.type, evaluated, ms: Number(process.hrtime.bigint() - started) / 1e6 }, 'evaluated changed records')
    },
    [SyncTasks.propagate]: async (payload, helpers) => {
      const p = payload as { companyId: string; type: RecordType; linkId: string }
      const outcome = await propagateLink(ctx, p.companyId, p.type, p.linkId, helpers.job.attempts >= helpers.job.max_attempts)
      log.debug({ companyId: p.companyId, type: p.type, linkId: p.linkId, outcome }, 'propagation')
    },
    [SyncTasks.origins]: async (payload) => {
      const p = payload as { companyId: string; type: RecordType }
      await runOrigins(ctx, p.companyId, p.type)
    },
    [SyncTasks.create]: async (payload, helpers) => {
      await runCreate(ctx, payload as { companyId: string; runId: string }, helpers.job.attempts >= helpers.job.max_attempts)
    },
    [SyncTasks.bulkLink]: async (payload, helpers) => {
      const p = payload as { companyId: string; runId: string }
      try {
        await runBulkLink(ctx, p)
      } catch (error) {
        if (helpers.job.attempts >= helpers.job.max_attempts) await finishRun(ctx.db, p.runId, { status: 'failed', error: failureMessage(error) })
        throw error
      }
    },
  }
}
