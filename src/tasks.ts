import { processRecordTask } from './inbox/tasks.js'
import type { TaskDefinition } from './jobs/task.js'
import { bulkLinkTask } from './sync/bulk.js'
import { createTask } from './sync/create.js'
import { propagateTask } from './sync/discrepancies.js'
import { evaluateTask } from './sync/evaluate.js'
import { ingestTasks, processInboxRecord, reconcileAllTask } from './sync/ingest.js'
import { originsTask } from './sync/links.js'

/**
 * Every background task of the service, each declared once beside what it does; the job runner
 * takes this list, and the recurring ones carry their schedule.
 */
export const tasks: readonly TaskDefinition[] = [
  processRecordTask({ erp: processInboxRecord, procore: processInboxRecord }),
  ingestTasks.procore,
  ingestTasks.erp,
  reconcileAllTask,
  evaluateTask,
  propagateTask,
  originsTask,
  createTask,
  bulkLinkTask,
]
