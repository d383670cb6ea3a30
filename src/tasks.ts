import { Type } from 'typebox'
import { purgeExpiredKeys } from './api/idempotency.js'
import { digestTask, exportTask } from './exports/requests.js'
import { drainInboxTask, processRecordTask } from './inbox/tasks.js'
import { jobCostsTask } from './financials/job-costs.js'
import { paymentsTask } from './financials/payments.js'
import { defineTask, type TaskDefinition } from './jobs/task.js'
import { bulkLinkTask } from './sync/bulk.js'
import { createTask } from './sync/create.js'
import { propagateTask } from './sync/discrepancies.js'
import { evaluateTask } from './sync/evaluate.js'
import { ingestTasks } from './sync/ingest.js'
import { deliverTask } from './notify/webhooks.js'
import { originsTask } from './sync/links.js'
import { scheduleTickTask } from './schedules/schedule.js'
import { onboardingStepTask } from './onboarding/onboarding.js'
import { pushTask as timeEntriesPushTask } from './timecards/push.js'

/** Hourly: a key past its retention is never replayed again, so the table keeps only live ones. */
export const purgeIdempotencyKeysTask = defineTask({
  name: 'purge-idempotency-keys',
  payload: Type.Object({}),
  schedule: { cron: '23 * * * *', maxAttempts: 1 },
  async run(ctx) {
    const purged = await purgeExpiredKeys(ctx.db, ctx.config.idempotencyTtlHours)
    if (purged > 0) ctx.log.info({ component: 'idempotency', purged }, 'purged expired idempotency keys')
  },
})

/**
 * Every background task of the service, each declared once beside what it does (the idempotency
 * purge here: the API's key table has no domain module); the job runner takes this list, and the
 * recurring ones carry their schedule.
 */
export const tasks: readonly TaskDefinition[] = [
  drainInboxTask,
  processRecordTask,
  ingestTasks.procore,
  ingestTasks.erp,
  scheduleTickTask,
  evaluateTask,
  propagateTask,
  originsTask,
  createTask,
  bulkLinkTask,
  purgeIdempotencyKeysTask,
  exportTask,
  digestTask,
  deliverTask,
  jobCostsTask,
  paymentsTask,
  onboardingStepTask,
  timeEntriesPushTask,
]
