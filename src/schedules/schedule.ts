// The sync schedule: per company and sync type, how often the work of that type runs, and the
// scheduler that fires due entries exactly once across every instance on one database.
import { createHash } from 'node:crypto'
import { sql, type Selectable } from 'kysely'
import { Type } from 'typebox'
import { etagOf } from '../api/etag.js'
import type { AppContext } from '../context.js'
import { transaction, type Db, type Tx } from '../db/database.js'
import type { Side } from '../db/tables/records.js'
import { Intervals, type Interval, type SyncSchedulesTable } from '../db/tables/schedules.js'
import { badRequest, conflict, notFound, preconditionFailed, type FieldError } from '../errors.js'
import { defineTask } from '../jobs/task.js'
import type { ScheduleEntry, ScheduleEntryInput, SyncSchedule } from '../schemas/sync-schedule.js'
import { audit, type Actor } from '../sync/audit.js'
import { requestPaymentsRunInTx } from '../financials/payments.js'
import { requestIngestInTx } from '../sync/ingest.js'
import { requestJobCostsInTx } from '../financials/job-costs.js'
import { entity, type RecordType } from '../sync/registry.js'
import type { IngestScope, Run } from '../sync/runs.js'

/** A listing of record types (Procore reconcile, ERP refresh). */
interface ListingWork {
  side: Side
  types: RecordType[]
  scope?: IngestScope
}

/** Work of its own kind, started by its domain; it needs Procore connected and these agent resources. */
interface OwnWork {
  /** The side it spends requests of (Procore: the scheduler defers it while headroom is low). */
  side: Side
  erpResources: readonly string[]
  start(
    tx: Tx,
    companyId: string,
    origin: { syncType: string; trigger: string; full: boolean },
  ): Promise<{ run: Run; created: boolean }>
}

interface SyncTypeDef {
  description: string
  level: 'company' | 'project'
  defaultInterval: Interval
  /** What it runs; null while the work of this type is not built. */
  work: ListingWork | OwnWork | null
  /** Why it cannot run anywhere yet, when work is null. */
  notBuilt?: string
}

const isOwn = (work: ListingWork | OwnWork): work is OwnWork => 'start' in work

/**
 * Every sync type, as data: a new one is an entry here. The first four are the ones Procore's
 * ERP Integrations tool lets an admin schedule; the others are what it runs on fixed intervals
 * (hourly company-level, every two hours project-level), here defaults an admin may change.
 */
export const SyncTypes = {
  erp_vendor_list: {
    description: 'Refresh the ERP companies (vendor) list',
    level: 'company',
    defaultInterval: 'hourly',
    work: { side: 'erp', types: ['vendor'] },
  },
  erp_job_list: {
    description: 'Refresh the ERP job list',
    level: 'company',
    defaultInterval: 'hourly',
    work: { side: 'erp', types: ['project'] },
  },
  project_job_costs: {
    description: "Sync project job costs (the ERP's cost totals per linked job to the Procore project)",
    level: 'project',
    defaultInterval: 'every_2_hours',
    work: {
      side: 'procore',
      erpResources: ['jobs', 'cost-totals'],
      start: (tx, companyId, { syncType, trigger, full }) =>
        requestJobCostsInTx(tx, companyId, { full }, trigger, { syncType, trigger }),
    },
  },
  payments_for_synced_invoices: {
    description: "Sync payments for synced invoices (the ERP's payments, issued on Procore commitments)",
    level: 'project',
    defaultInterval: 'daily',
    work: {
      side: 'procore',
      erpResources: ['payments', 'ap-invoices'],
      start: (tx, companyId, { syncType, trigger, full }) =>
        requestPaymentsRunInTx(tx, companyId, { full }, trigger, { syncType, trigger }),
    },
  },
  procore_company_reconcile: {
    description: 'Reconcile company-level Procore records (departments, users, projects, vendors, standard cost codes)',
    level: 'company',
    defaultInterval: 'hourly',
    work: { side: 'procore', types: ['department', 'user', 'project', 'cost_code', 'vendor'], scope: 'company' },
  },
  procore_project_reconcile: {
    description:
      'Reconcile project-level Procore records (the cost codes and subcontractor invoices of each ERP-integrated ' +
      'project)',
    level: 'project',
    defaultInterval: 'every_2_hours',
    work: { side: 'procore', types: ['cost_code', 'invoice'], scope: 'project' },
  },
  erp_company_refresh: {
    description: 'Refresh company-level ERP records (departments, employees, standard cost codes, AP invoices)',
    level: 'company',
    defaultInterval: 'hourly',
    work: { side: 'erp', types: ['department', 'user', 'cost_code', 'invoice'], scope: 'company' },
  },
  erp_project_refresh: {
    description: 'Refresh project-level ERP records (the cost codes of each job)',
    level: 'project',
    defaultInterval: 'every_2_hours',
    work: { side: 'erp', types: ['cost_code'], scope: 'project' },
  },
} as const satisfies Record<string, SyncTypeDef>

export type SyncTypeName = keyof typeof SyncTypes
export const SyncTypeNames = Object.keys(SyncTypes) as SyncTypeName[]
const def = (name: string): SyncTypeDef => (SyncTypes as Record<string, SyncTypeDef>)[name]!

/** A listing that was not full for this long is full: it finds what vanished on the other side. */
export const FULL_SWEEP_MS = 24 * 3600_000
/** A Procore listing is put off while the company's last observed budget is below this many requests. */
export const MIN_PROCORE_HEADROOM = 100
/** Daily entries without a time of day run at 02:00 in the company's time zone, spread over two hours. */
const DEFAULT_DAILY = { minutes: 2 * 60, spread: 120 }
const PERIOD_MS: Record<Exclude<Interval, 'daily' | 'never'>, number> = {
  hourly: 3600_000,
  every_2_hours: 2 * 3600_000,
  every_4_hours: 4 * 3600_000,
}
const CLAIM_BATCH = 200

// ---- due times -------------------------------------------------------------------------------

/** Whole minutes in [0, spread) from the company and sync type: a thousand companies do not start on the hour. */
export function jitterMinutes(companyId: string, syncType: string, spread: number): number {
  const hash = createHash('sha256').update(`${companyId}:${syncType}`).digest().readUInt32BE(0)
  return hash % spread
}

function zoneOffsetMs(at: number, timeZone: string): number {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  }).formatToParts(new Date(at))
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value)
  const local = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'))
  return local - Math.floor(at / 1000) * 1000
}

/**
 * The instant of a wall-clock time in a time zone: the first of the two when a DST change repeats it, and
 * the same time under the old offset (an hour later on the wall) when the change skips it.
 */
function zonedInstant(y: number, m: number, d: number, minutes: number, timeZone: string): number {
  const wall = Date.UTC(y, m, d, 0, minutes)
  const first = wall - zoneOffsetMs(wall, timeZone)
  const second = wall - zoneOffsetMs(first, timeZone)
  return second + zoneOffsetMs(second, timeZone) === wall ? second : first
}

export interface DueRule {
  companyId: string
  syncType: string
  interval: Interval
  timeOfDay: string | null
  timeZone: string
}

/**
 * The first due time strictly after `after`. Periodic intervals fall on fixed slots (UTC, shifted by the
 * company's jitter), so whichever instance computes them gets the same times; a scheduler that was down
 * for hours computes from now, so it makes up for missed slots with one run, not one per slot.
 */
export function nextDue(rule: DueRule, after: Date): Date | null {
  if (rule.interval === 'never') return null
  const t = after.getTime()
  if (rule.interval !== 'daily') {
    const period = PERIOD_MS[rule.interval]
    const offset = jitterMinutes(rule.companyId, rule.syncType, period / 60_000) * 60_000
    return new Date((Math.floor((t - offset) / period) + 1) * period + offset)
  }
  const minutes =
    rule.timeOfDay !== null
      ? Number(rule.timeOfDay.slice(0, 2)) * 60 + Number(rule.timeOfDay.slice(3, 5))
      : DEFAULT_DAILY.minutes + jitterMinutes(rule.companyId, rule.syncType, DEFAULT_DAILY.spread)
  const local = new Date(t + zoneOffsetMs(t, rule.timeZone))
  for (let day = -1; day <= 2; day++) {
    const at = zonedInstant(
      local.getUTCFullYear(),
      local.getUTCMonth(),
      local.getUTCDate() + day,
      minutes,
      rule.timeZone,
    )
    if (at > t) return new Date(at)
  }
  throw new Error('no daily due time within two days')
}

export function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name })
    return true
  } catch {
    return false
  }
}

// ---- availability ----------------------------------------------------------------------------

interface Connections {
  procore: boolean
  /** The protocol resources the agent serves, from its capabilities at the last connection test; null: none. */
  erp: readonly string[] | null
}

async function connections(db: Db, companyId: string): Promise<Connections> {
  const [procore, erp] = await Promise.all([
    db.selectFrom('procore_connections').select('status').where('company_id', '=', companyId).executeTakeFirst(),
    db
      .selectFrom('erp_connections')
      .select(sql<string[] | null>`info->'capabilities'->'resources'`.as('resources'))
      .where('company_id', '=', companyId)
      .executeTakeFirst(),
  ])
  return { procore: procore?.status === 'connected', erp: erp ? (erp.resources ?? []) : null }
}

/** Whether the work of a sync type can run for this company, and why not. */
export function availability(name: string, c: Connections): { available: boolean; reason: string | null } {
  const d = def(name)
  if (d.work === null) return { available: false, reason: d.notBuilt ?? 'not built' }
  if (isOwn(d.work)) {
    if (!c.procore) return { available: false, reason: 'the company has no working Procore connection' }
    if (c.erp === null) return { available: false, reason: 'the company has no ERP connection' }
    const missing = d.work.erpResources.filter((r) => !c.erp!.includes(r))
    return missing.length === 0
      ? { available: true, reason: null }
      : { available: false, reason: `the ERP agent does not serve ${missing.join(', ')} (its capabilities)` }
  }
  if (d.work.side === 'procore') {
    return c.procore
      ? { available: true, reason: null }
      : { available: false, reason: 'the company has no working Procore connection' }
  }
  if (c.erp === null) return { available: false, reason: 'the company has no ERP connection' }
  const needed: string[] = [...new Set(d.work.types.map((t) => entity(t).erp.resource))]
  if (d.work.scope === 'project') needed.push('jobs', 'job-cost-codes')
  const missing = needed.filter((r) => !c.erp!.includes(r))
  // Served partly: what is served runs, and the run says which types were skipped.
  if (missing.length === needed.length) {
    return { available: false, reason: `the ERP agent does not serve ${missing.join(', ')} (its capabilities)` }
  }
  return { available: true, reason: null }
}

// ---- the resource ----------------------------------------------------------------------------

type Row = Selectable<SyncSchedulesTable>

async function timeZoneOf(db: Db, companyId: string): Promise<{ timeZone: string; version: number }> {
  const row = await db
    .selectFrom('sync_schedule_settings')
    .select(['time_zone', 'version'])
    .where('company_id', '=', companyId)
    .executeTakeFirst()
  return { timeZone: row?.time_zone ?? 'UTC', version: row?.version ?? 0 }
}

/** Adds the default entries a company lacks (a new company, or a sync type added since), due from `now`. */
async function ensureEntries(db: Db, companyId: string, now: Date): Promise<void> {
  const { timeZone } = await timeZoneOf(db, companyId)
  await db
    .insertInto('sync_schedules')
    .values(
      SyncTypeNames.map((syncType) => {
        const interval = def(syncType).defaultInterval
        return {
          company_id: companyId,
          sync_type: syncType,
          interval,
          time_of_day: null,
          next_due_at: nextDue({ companyId, syncType, interval, timeOfDay: null, timeZone }, now),
          last_due_at: null,
          last_run_id: null,
          deferred_reason: null,
        }
      }),
    )
    .onConflict((oc) => oc.columns(['company_id', 'sync_type']).doNothing())
    .execute()
}

async function companyExists(db: Db, companyId: string): Promise<void> {
  const row = await db.selectFrom('companies').select('id').where('id', '=', companyId).executeTakeFirst()
  if (!row) throw notFound('company', companyId)
}

export async function getSchedule(
  db: Db,
  companyId: string,
  now = new Date(),
): Promise<{ schedule: SyncSchedule; etag: string }> {
  await companyExists(db, companyId)
  await ensureEntries(db, companyId, now)
  const [{ timeZone, version }, rows, conn] = await Promise.all([
    timeZoneOf(db, companyId),
    db.selectFrom('sync_schedules').selectAll().where('company_id', '=', companyId).execute(),
    connections(db, companyId),
  ])
  const lastRuns = await lastRunsOf(db, companyId, rows)
  const byType = new Map(rows.map((r) => [r.sync_type, r]))
  const entries = SyncTypeNames.map((name) => toEntry(name, byType.get(name)!, conn, lastRuns))
  return { schedule: { timeZone, entries }, etag: etagOf(version) }
}

async function lastRunsOf(db: Db, companyId: string, rows: Row[]) {
  const ids = rows.flatMap((r) => (r.last_run_id ? [r.last_run_id] : []))
  if (ids.length === 0) return new Map<string, { status: string; at: Date }>()
  const runs = await db
    .selectFrom('sync_runs')
    .select(['id', 'status', 'created_at'])
    .where('company_id', '=', companyId)
    .where('id', 'in', ids)
    .execute()
  return new Map(runs.map((r) => [r.id, { status: r.status, at: r.created_at }]))
}

function toEntry(
  name: SyncTypeName,
  row: Row,
  conn: Connections,
  lastRuns: Map<string, { status: string; at: Date }>,
): ScheduleEntry {
  const d = def(name)
  const { available, reason } = availability(name, conn)
  const last = row.last_run_id ? lastRuns.get(row.last_run_id) : undefined
  return {
    syncType: name,
    description: d.description,
    level: d.level,
    interval: row.interval,
    timeOfDay: row.time_of_day,
    available,
    unavailableReason: reason,
    nextDueAt: available ? (row.next_due_at?.toISOString() ?? null) : null,
    deferredReason: row.deferred_reason,
    lastRun:
      row.last_run_id && last ? { id: row.last_run_id, status: last.status, createdAt: last.at.toISOString() } : null,
  }
}

const TIME_OF_DAY = /^([01]\d|2[0-3]):[0-5]\d$/

function validate(input: { timeZone?: string | undefined; entries: ScheduleEntryInput[] }): FieldError[] {
  const errors: FieldError[] = []
  if (input.timeZone !== undefined && !isTimeZone(input.timeZone)) {
    errors.push({
      pointer: '/body/timeZone',
      message: `${input.timeZone} is not an IANA time zone; use a name such as America/Chicago or UTC`,
    })
  }
  const seen = new Set<string>()
  input.entries.forEach((e, i) => {
    const at = `/body/entries/${i}`
    if (!(SyncTypeNames as string[]).includes(e.syncType)) {
      errors.push({ pointer: `${at}/syncType`, message: `syncType must be one of ${SyncTypeNames.join(', ')}` })
    } else if (seen.has(e.syncType)) {
      errors.push({ pointer: `${at}/syncType`, message: `${e.syncType} is given twice; give each sync type once` })
    }
    seen.add(e.syncType)
    if (!(Intervals as readonly string[]).includes(e.interval)) {
      errors.push({ pointer: `${at}/interval`, message: `interval must be one of ${Intervals.join(', ')}` })
    }
    if (e.timeOfDay !== undefined && e.timeOfDay !== null) {
      if (e.interval !== 'daily') {
        errors.push({ pointer: `${at}/timeOfDay`, message: 'timeOfDay applies to interval daily only; leave it out' })
      } else if (!TIME_OF_DAY.test(e.timeOfDay)) {
        errors.push({ pointer: `${at}/timeOfDay`, message: 'timeOfDay must be HH:MM, 24-hour, e.g. 02:30' })
      }
    }
  })
  return errors
}

/**
 * Changes the intervals of the entries given (others keep theirs) and the time zone, if the caller saw
 * the current version. A changed entry is due again at once from its new rule.
 */
export async function putSchedule(
  db: Db,
  companyId: string,
  expectedVersion: number,
  input: { timeZone?: string | undefined; entries: ScheduleEntryInput[] },
  actor: Actor,
  now = new Date(),
): Promise<{ schedule: SyncSchedule; etag: string }> {
  const errors = validate(input)
  if (errors.length > 0) {
    throw badRequest(
      'invalid_sync_schedule',
      `The schedule cannot be saved: ${errors.map((e) => `${e.pointer}: ${e.message}`).join('; ')}.`,
      errors,
    )
  }
  await companyExists(db, companyId)
  await ensureEntries(db, companyId, now)
  await transaction(db, async (tx) => {
    await tx.selectFrom('companies').select('id').where('id', '=', companyId).forUpdate().executeTakeFirstOrThrow()
    const current = await timeZoneOf(tx, companyId)
    if (current.version !== expectedVersion) throw preconditionFailed(etagOf(current.version))
    const timeZone = input.timeZone ?? current.timeZone
    await tx
      .insertInto('sync_schedule_settings')
      .values({ company_id: companyId, time_zone: timeZone, version: 1, updated_by: actor.id })
      .onConflict((oc) =>
        oc.column('company_id').doUpdateSet({
          time_zone: timeZone,
          updated_by: actor.id,
          updated_at: new Date(),
          version: sql<number>`sync_schedule_settings.version + 1`,
        }),
      )
      .execute()
    const rows = await tx
      .selectFrom('sync_schedules')
      .selectAll()
      .where('company_id', '=', companyId)
      .forUpdate()
      .execute()
    const given = new Map(input.entries.map((e) => [e.syncType, e]))
    const changes = []
    for (const row of rows) {
      const e = given.get(row.sync_type)
      const interval = (e?.interval ?? row.interval) as Interval
      const timeOfDay = e ? (e.interval === 'daily' ? (e.timeOfDay ?? null) : null) : row.time_of_day
      if (interval === row.interval && timeOfDay === row.time_of_day && timeZone === current.timeZone) continue
      const rule = { companyId, syncType: row.sync_type, interval, timeOfDay, timeZone }
      await tx
        .updateTable('sync_schedules')
        .set({ interval, time_of_day: timeOfDay, next_due_at: nextDue(rule, now), deferred_reason: null })
        .where('company_id', '=', companyId)
        .where('sync_type', '=', row.sync_type)
        .execute()
      changes.push({
        action: 'settings' as const,
        type: `schedule:${row.sync_type}`,
        before: { interval: row.interval, timeOfDay: row.time_of_day, timeZone: current.timeZone },
        after: { interval, timeOfDay, timeZone },
      })
    }
    await audit(tx, companyId, actor, changes)
  })
  return getSchedule(db, companyId, now)
}

// ---- runs --------------------------------------------------------------------------------------

async function startRun(
  tx: Tx,
  companyId: string,
  syncType: SyncTypeName,
  trigger: string,
  now: Date,
  full?: boolean,
): Promise<{ run: Run; created: boolean }> {
  const work = def(syncType).work!
  if (isOwn(work)) return work.start(tx, companyId, { syncType, trigger, full: full ?? false })
  // The last full sweep that succeeded: a failed or interrupted one does not count, so the next run sweeps.
  const swept = await tx
    .selectFrom('sync_runs')
    .select((eb) => eb.fn.max('started_at').as('at'))
    .where('company_id', '=', companyId)
    .where('sync_type', '=', syncType)
    .where('status', '=', 'succeeded')
    .where(sql<boolean>`(params->>'full')::boolean`)
    .executeTakeFirst()
  const lastFull = swept?.at ?? null
  const isFull = full ?? (lastFull === null || now.getTime() - lastFull.getTime() >= FULL_SWEEP_MS)
  const params = { full: isFull, types: [...work.types], ...(work.scope ? { scope: work.scope } : {}) }
  const { run, created } = await requestIngestInTx(tx, work.side, companyId, params, trigger, { syncType, trigger })
  return { run, created }
}

/** `POST …/sync-schedule/{syncType}/run`: runs it now; 409 naming the run while one is queued or running. */
export async function runNow(
  db: Db,
  companyId: string,
  syncType: string,
  options: { full?: boolean | undefined },
  now = new Date(),
): Promise<Run> {
  await companyExists(db, companyId)
  if (!(SyncTypeNames as string[]).includes(syncType)) {
    throw notFound('sync type', `${syncType} (one of ${SyncTypeNames.join(', ')})`)
  }
  const name = syncType as SyncTypeName
  const { available, reason } = availability(name, await connections(db, companyId))
  if (!available) throw conflict('sync_type_unavailable', `${syncType} cannot run for this company: ${reason}.`)
  await ensureEntries(db, companyId, now)
  return transaction(db, async (tx) => {
    const { run, created } = await startRun(tx, companyId, name, 'manual', now, options.full)
    if (!created) {
      throw conflict(
        'run_in_progress',
        `A ${syncType} run is already ${run.status}: ${run.id}. Wait for it or cancel it.`,
        {
          runId: run.id,
        },
      )
    }
    await tx
      .updateTable('sync_schedules')
      .set({ last_run_id: run.id })
      .where('company_id', '=', companyId)
      .where('sync_type', '=', name)
      .execute()
    return run
  })
}

export interface Fired {
  companyId: string
  syncType: string
  dueAt: Date
  /** What became of the due time: a new run, the run already under way, or nothing to run. */
  outcome: 'started' | 'already_running' | 'unavailable' | 'deferred'
  runId: string | null
}

/**
 * One scheduler tick at `now` (a parameter: tests drive it with a fake clock). Claims the due entries with
 * FOR UPDATE SKIP LOCKED, so concurrent instances split them and none fires one twice; each claimed entry
 * starts its run (or finds one under way) and moves to its next due time after `now`, all in one
 * transaction: the claim, the run and its job commit together or not at all.
 */
export async function runDueSchedules(ctx: AppContext, now: Date): Promise<Fired[]> {
  await seedCompanies(ctx.db, now)
  const fired: Fired[] = []
  for (;;) {
    const batch = await transaction(ctx.db, async (tx) => {
      const due = await tx
        .selectFrom('sync_schedules as s')
        .leftJoin('sync_schedule_settings as z', 'z.company_id', 's.company_id')
        .leftJoin('procore_rate_observations as o', 'o.company_id', 's.company_id')
        .selectAll('s')
        .select(['z.time_zone', 'o.remaining', 'o.reset_at'])
        .where('s.next_due_at', '<=', now)
        .orderBy('s.next_due_at')
        .limit(CLAIM_BATCH)
        .forUpdate('s')
        .skipLocked()
        .execute()
      const out: Fired[] = []
      for (const row of due) out.push(await fire(tx, row, now))
      return out
    })
    fired.push(...batch)
    if (batch.length < CLAIM_BATCH) return fired
  }
}

type DueRow = Row & { time_zone: string | null; remaining: number | null; reset_at: Date | null }

async function fire(tx: Tx, row: DueRow, now: Date): Promise<Fired> {
  const name = row.sync_type as SyncTypeName
  const rule = {
    companyId: row.company_id,
    syncType: name,
    interval: row.interval,
    timeOfDay: row.time_of_day,
    timeZone: row.time_zone ?? 'UTC',
  }
  const dueAt = row.next_due_at!
  const base = { companyId: row.company_id, syncType: name, dueAt }
  const move = (set: Partial<Pick<Row, 'last_run_id' | 'next_due_at' | 'deferred_reason'>>) =>
    tx
      .updateTable('sync_schedules')
      .set({ next_due_at: nextDue(rule, now), last_due_at: dueAt, deferred_reason: null, ...set })
      .where('company_id', '=', row.company_id)
      .where('sync_type', '=', name)
      .execute()
  if (!(name in SyncTypes)) {
    await move({ next_due_at: null, deferred_reason: 'no longer a sync type' })
    return { ...base, outcome: 'unavailable', runId: null }
  }
  const { available } = availability(name, await connections(tx, row.company_id))
  if (!available) {
    await move({})
    return { ...base, outcome: 'unavailable', runId: null }
  }
  const work = def(name).work!
  // The last budget a Procore listing of this company saw (stored by the listing): too little left, and this
  // due time waits for the window to reset rather than spend the requests webhooks and writes need.
  if (
    'side' in work &&
    work.side === 'procore' &&
    row.remaining !== null &&
    row.reset_at !== null &&
    row.remaining < MIN_PROCORE_HEADROOM &&
    row.reset_at > now
  ) {
    const until = row.reset_at.toISOString()
    const reason = `Procore rate-limit headroom low (${row.remaining} requests left until ${until})`
    await tx
      .updateTable('sync_schedules')
      .set({ next_due_at: row.reset_at, deferred_reason: reason })
      .where('company_id', '=', row.company_id)
      .where('sync_type', '=', name)
      .execute()
    return { ...base, outcome: 'deferred', runId: null }
  }
  const { run, created } = await startRun(tx, row.company_id, name, 'schedule', now)
  if (!created) {
    // One run per company and sync type: the one under way serves this due time.
    await move({})
    return { ...base, outcome: 'already_running', runId: run.id }
  }
  await move({ last_run_id: run.id })
  return { ...base, outcome: 'started', runId: run.id }
}

/** Default entries for companies that have none yet (or lack a sync type added since), a few per tick. */
async function seedCompanies(db: Db, now: Date): Promise<void> {
  const missing = await db
    .selectFrom('companies as c')
    .select('c.id')
    .where(sql<boolean>`(select count(*) from sync_schedules s where s.company_id = c.id) < ${SyncTypeNames.length}`)
    .limit(100)
    .execute()
  for (const { id } of missing) await ensureEntries(db, id, now)
}

/** Every minute, on one instance per tick: fires the due entries of every company's schedule. */
export const scheduleTickTask = defineTask({
  name: 'sync-schedule-tick',
  payload: Type.Object({}),
  schedule: { cron: '* * * * *', maxAttempts: 1 },
  async run(ctx) {
    const fired = await runDueSchedules(ctx, new Date())
    const started = fired.filter((f) => f.outcome === 'started').length
    if (fired.length > 0) ctx.log.debug({ component: 'schedule', due: fired.length, started }, 'schedule tick')
  },
})
