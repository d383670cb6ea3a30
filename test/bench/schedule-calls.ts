// API calls a day for one company on the default sync schedule, computed with the schedule's own rules
// (sync types, intervals, next due times, the daily full sweep) and the listing's own call counting (one
// request per page, one per record re-read alone; see apiCalls in src/sync/ingest.ts). A calculation, not
// a measurement: `npx tsx test/bench/schedule-calls.ts`.
import { ProcoreApi } from '../../src/procore/resources.js'
import { procoreResource, type RecordType } from '../../src/sync/registry.js'
import { FULL_SWEEP_MS, nextDue, SyncTypes, SyncTypeNames } from '../../src/schedules/schedule.js'

const COMPANY = '562949953421312'
const PAGE = { procore: 1000, erp: 500 } // PER_PAGE in src/procore/client.ts; the ERP client's pageSize
const JOBS = 200
/** Company-level record counts; cost codes are 20,000 job (project) cost codes, 100 per job. */
const COMPANY_LEVEL: Record<RecordType, number> = {
  vendor: 2_000,
  project: JOBS,
  cost_code: 0,
  department: 0,
  user: 0,
  invoice: 0,
}
const PER_JOB_COST_CODES = 20_000 / JOBS
/** Procore lists some types in two lists (active and inactive vendors and users). */
const PROCORE_LISTS: Partial<Record<RecordType, number>> = { vendor: 2, user: 2 }

const pages = (n: number, size: number) => Math.max(1, Math.ceil(n / size))

/** Calls of one run of a sync type: changed = the share of records changed since its previous run. */
function callsOfRun(name: (typeof SyncTypeNames)[number], full: boolean, changed: number) {
  const def = SyncTypes[name]
  // Job costs and payments (work of their own, not listings): test/bench/job-costs.ts and payments.ts.
  if (def.work === null || !('types' in def.work)) return 0
  const { side, types } = def.work
  const scope = 'scope' in def.work ? def.work.scope : undefined
  let calls = 0
  for (const type of types) {
    if (scope !== 'project') {
      const incremental = !full && (side === 'erp' || ProcoreApi.supportsUpdatedSince(procoreResource(type, null)))
      const n = incremental ? Math.ceil(COMPANY_LEVEL[type] * changed) : COMPANY_LEVEL[type]
      calls += (side === 'procore' ? (PROCORE_LISTS[type] ?? 1) : 1) * pages(n, PAGE[side])
    }
    if (scope !== 'company' && type === 'cost_code') {
      const incremental = !full && (side === 'erp' || ProcoreApi.supportsUpdatedSince(procoreResource(type, 'job')))
      const n = incremental ? Math.ceil(PER_JOB_COST_CODES * changed) : PER_JOB_COST_CODES
      calls += JOBS * pages(n, PAGE[side])
    }
  }
  return calls
}

function day(changePerHour: number) {
  const start = new Date('2026-12-07T00:00:00Z')
  const end = start.getTime() + 24 * 3600_000
  const total = { procore: 0, erp: 0 }
  const rows: string[] = []
  for (const name of SyncTypeNames) {
    const def = SyncTypes[name]
    if (def.work === null || 'run' in def.work) continue
    const rule = { companyId: COMPANY, syncType: name, interval: def.defaultInterval, timeOfDay: null, timeZone: 'UTC' }
    let lastFull = -Infinity
    let previous = start.getTime() - 3600_000
    let runs = 0
    let calls = 0
    for (let due = nextDue(rule, start); due && due.getTime() < end; due = nextDue(rule, due)) {
      const full = due.getTime() - lastFull >= FULL_SWEEP_MS
      if (full) lastFull = due.getTime()
      const hours = (due.getTime() - previous) / 3600_000
      calls += callsOfRun(name, full, Math.min(1, changePerHour * hours))
      previous = due.getTime()
      runs++
    }
    total[def.work.side] += calls
    const counts = `${String(runs).padStart(3)} runs ${String(calls).padStart(6)} ${def.work.side} calls`
    rows.push(`  ${name.padEnd(28)} ${def.defaultInterval.padEnd(14)} ${counts}`)
  }
  // Every notified change is re-read once (webhook or ERP notification): 1 request per change on its side.
  const records = Object.values(COMPANY_LEVEL).reduce((a, b) => a + b, 0) + 20_000
  const events = Math.round(records * changePerHour * 24)
  return { total, rows, events }
}

for (const [label, rate] of [
  ['no changes', 0],
  ['1 % of records changing per hour', 0.01],
] as const) {
  const { total, rows, events } = day(rate)
  console.log(`${label}: 2,000 vendors, 200 jobs, 20,000 cost codes, default schedule`)
  for (const row of rows) console.log(row)
  console.log(`  schedule total: Procore ${total.procore}/day, ERP ${total.erp}/day`)
  if (events > 0) console.log(`  plus re-reads of notified changes: ${events}/day on the side that changed`)
}
