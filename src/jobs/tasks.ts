import type { TaskList } from 'graphile-worker'
import type { AppContext } from '../context.js'
import { inboxTasks, type RecordProcessor } from '../inbox/tasks.js'
import type { Side } from '../db/tables/records.js'
import { ingestTasks, processInboxRecord, RECONCILE_CRONTAB } from '../sync/ingest.js'
import { syncTasks } from '../sync/tasks.js'

/** Every background task of the service, by name. Each capability contributes its own. */
export function buildTaskList(ctx: AppContext): TaskList {
  const processors: Partial<Record<Side, RecordProcessor>> = { erp: processInboxRecord, procore: processInboxRecord }
  return {
    ...inboxTasks(ctx, processors),
    ...ingestTasks(ctx),
    ...syncTasks(ctx),
  }
}

/** Recurring jobs (graphile-worker crontab syntax; it fires once per tick across all instances). */
export const crontab = [
  RECONCILE_CRONTAB,
].join('\n')
