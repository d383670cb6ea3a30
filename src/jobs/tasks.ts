import type { TaskList } from 'graphile-worker'
import type { AppContext } from '../context.js'
import { inboxTasks, type RecordProcessor } from '../inbox/tasks.js'
import type { Side } from '../db/tables/records.js'
import { processErpRecord } from '../erp/notifications.js'
import { refreshTasks as erpRefreshTasks } from '../erp/refresh.js'
import { processProcoreRecord } from '../procore/processor.js'
import { RECONCILE_CRONTAB as procoreReconcileCrontab, reconcileTasks as procoreReconcileTasks } from '../procore/reconcile.js'
import { syncTasks } from '../sync/tasks.js'

/** Every background task of the service, by name. Each capability contributes its own. */
export function buildTaskList(ctx: AppContext): TaskList {
  const processors: Partial<Record<Side, RecordProcessor>> = { erp: processErpRecord, procore: processProcoreRecord }
  return {
    ...inboxTasks(ctx, processors),
    ...erpRefreshTasks(ctx),
    ...procoreReconcileTasks(ctx),
    ...syncTasks(ctx),
  }
}

/** Recurring jobs (graphile-worker crontab syntax; it fires once per tick across all instances). */
export const crontab = [
  procoreReconcileCrontab,
].join('\n')
