import { createHash } from 'node:crypto'
import { sql, type Selectable } from 'kysely'
import { keyset, type Page, type PageRequest } from '../api/pagination.js'
import { transaction, type Db, type Tx } from '../db/database.js'
import type { TimeEntriesTable, TimeEntryStatus } from '../db/tables/timecards.js'
import { AppError, badRequest, notFound, type FieldError } from '../errors.js'
import { enqueue } from '../jobs/queue.js'
import type {
  Acceptance,
  BatchResult,
  Refusal,
  TimeEntry,
  TimeEntryBatch,
  TimeEntryInput,
} from '../schemas/time-entries.js'
import { pushTask } from './push.js'

type Row = Selectable<TimeEntriesTable>
type RefType = 'user' | 'project' | 'cost_code'

/** `erp:E1042` / `procore:123` → side and id (the schema has checked the shape). */
function parseRef(ref: string): { side: 'erp' | 'procore'; id: string } {
  const at = ref.indexOf(':')
  return { side: ref.slice(0, at) as 'erp' | 'procore', id: ref.slice(at + 1) }
}

const NOUN: Record<RefType, string> = { user: 'user', project: 'project', cost_code: 'cost code' }
const OTHER: Record<RefType, string> = {
  user: 'ERP employee ↔ Procore user',
  project: 'ERP job ↔ Procore project',
  cost_code: "job's cost code ↔ Procore project cost code",
}
const STEP: Record<RefType, string> = { user: 'users', project: 'projects', cost_code: 'cost codes' }

/** Shape rules a JSON schema cannot say plainly: one way to give the time, and time that runs forward. */
function shapeErrors(entries: readonly TimeEntryInput[]): FieldError[] {
  const errors: FieldError[] = []
  const seen = new Map<string, number>()
  entries.forEach((e, i) => {
    const at = (field: string) => `/body/entries/${i}/${field}`
    const clocked = e.timeIn !== undefined || e.timeOut !== undefined
    if (e.hours !== undefined && clocked)
      errors.push({ pointer: at('hours'), message: 'give either hours or timeIn and timeOut, not both' })
    else if (e.hours === undefined && !clocked)
      errors.push({ pointer: at('hours'), message: 'is required (or timeIn and timeOut)' })
    else if (clocked && (e.timeIn === undefined || e.timeOut === undefined))
      errors.push({ pointer: at(e.timeIn === undefined ? 'timeIn' : 'timeOut'), message: 'is required with the other' })
    else if (clocked && Date.parse(e.timeOut!) <= Date.parse(e.timeIn!))
      errors.push({ pointer: at('timeOut'), message: 'must be after timeIn' })
    const first = seen.get(e.externalId)
    if (first !== undefined)
      errors.push({ pointer: at('externalId'), message: `repeats entry ${first}; send each entry once per batch` })
    else seen.set(e.externalId, i)
  })
  return errors
}

interface Resolved {
  /** `type|procore:123` or `type|erp:E1` → the Procore id of the linked record. */
  links: Map<string, string>
  /** Procore cost code id → its Procore project id. */
  costCodeProject: Map<string, string | null>
}

/** Every referenced record's live link, in three queries for the whole batch. */
async function resolve(db: Db | Tx, companyId: string, entries: readonly TimeEntryInput[]): Promise<Resolved> {
  const refs: Record<RefType, string[]> = {
    user: entries.map((e) => e.user),
    project: entries.map((e) => e.project),
    cost_code: entries.map((e) => e.costCode),
  }
  const links = new Map<string, string>()
  for (const type of ['user', 'project', 'cost_code'] as const) {
    const parsed = [...new Set(refs[type])].map(parseRef)
    const procoreIds = parsed.filter((r) => r.side === 'procore').map((r) => r.id)
    const erpIds = parsed.filter((r) => r.side === 'erp').map((r) => r.id)
    if (procoreIds.length + erpIds.length === 0) continue
    const rows = await db
      .selectFrom('record_links')
      .select(['procore_id', 'erp_id'])
      .where('company_id', '=', companyId)
      .where('type', '=', type)
      .where('unlinked_at', 'is', null)
      .where((eb) =>
        eb.or([
          ...(procoreIds.length > 0 ? [eb('procore_id', 'in', procoreIds)] : []),
          ...(erpIds.length > 0 ? [eb('erp_id', 'in', erpIds)] : []),
        ]),
      )
      .execute()
    for (const r of rows) {
      links.set(`${type}|procore:${r.procore_id}`, r.procore_id)
      links.set(`${type}|erp:${r.erp_id}`, r.procore_id)
    }
  }
  const codes = [...new Set([...links].filter(([k]) => k.startsWith('cost_code|')).map(([, v]) => v))]
  const costCodeProject = new Map<string, string | null>()
  if (codes.length > 0) {
    const rows = await db
      .selectFrom('record_snapshots')
      .select(['external_id', 'parent_id'])
      .where('company_id', '=', companyId)
      .where('side', '=', 'procore')
      .where('type', '=', 'cost_code')
      .where('deleted_at', 'is', null)
      .where('external_id', 'in', codes)
      .execute()
    for (const r of rows) costCodeProject.set(r.external_id, r.parent_id)
  }
  return { links, costCodeProject }
}

function refusal(
  companyId: string,
  index: number,
  e: TimeEntryInput,
  type: RefType,
  ref: string,
): Omit<Refusal, 'index' | 'externalId'> & { index: number; externalId: string } {
  const { side, id } = parseRef(ref)
  return {
    index,
    externalId: e.externalId,
    code: `${type}_not_linked`,
    detail: `${NOUN[type]} ${id} is not linked — link it or run onboarding step ${STEP[type]}`,
    fix:
      `Link the ${side === 'erp' ? 'ERP' : 'Procore'} ${NOUN[type]} ${id} to its twin (${OTHER[type]}: POST ` +
      `/v1/companies/${companyId}/links with type ${type}), then resubmit the entry.`,
  }
}

/** What Procore's timecard entry holds for an accepted entry (origin_id is added when it is sent). */
function procoreBody(e: TimeEntryInput, ids: { party: string; project: string; costCode: string }) {
  return {
    date: e.date,
    ...(e.hours !== undefined ? { hours: String(e.hours) } : { time_in: e.timeIn, time_out: e.timeOut }),
    ...(e.lunchMinutes !== undefined ? { lunch_time: e.lunchMinutes } : {}),
    party_id: ids.party,
    project_id: ids.project,
    cost_code_id: ids.costCode,
    description: e.description ?? '',
  }
}

const hashOf = (value: unknown) => createHash('sha256').update(JSON.stringify(value)).digest('hex')

/**
 * Accepts a batch of approved entries: each is refused on its own when its user, project or cost code is not
 * linked; accepted ones are stored (a resubmission updates its entry, an unchanged one is left alone) and a job
 * per company writes them to Procore. A batch with nothing accepted is a 422 listing every refusal.
 */
export async function acceptTimeEntries(db: Db, companyId: string, batch: TimeEntryBatch): Promise<BatchResult> {
  const errors = shapeErrors(batch.entries)
  if (errors.length > 0) {
    throw badRequest(
      'validation_failed',
      `Fix these fields and retry: ${errors
        .slice(0, 5)
        .map((e) => `${e.pointer} ${e.message}`)
        .join('; ')}.`,
      errors.slice(0, 50),
    )
  }
  return transaction(db, async (tx) => {
    await knownCompany(tx, companyId)
    const { links, costCodeProject } = await resolve(tx, companyId, batch.entries)
    const refused: Refusal[] = []
    const toWrite: Array<{ index: number; entry: TimeEntryInput; body: Record<string, unknown>; party: string }> = []
    batch.entries.forEach((e, index) => {
      const party = links.get(`user|${e.user}`)
      const project = links.get(`project|${e.project}`)
      const costCode = links.get(`cost_code|${e.costCode}`)
      if (party === undefined) return refused.push(refusal(companyId, index, e, 'user', e.user))
      if (project === undefined) return refused.push(refusal(companyId, index, e, 'project', e.project))
      if (costCode === undefined) return refused.push(refusal(companyId, index, e, 'cost_code', e.costCode))
      if (costCodeProject.get(costCode) !== project) {
        return refused.push({
          index,
          externalId: e.externalId,
          code: 'cost_code_not_in_project',
          detail:
            `cost code ${parseRef(e.costCode).id} is not a cost code of project ${parseRef(e.project).id} ` +
            'in Procore',
          fix:
            "Use a cost code of the entry's project (its job's cost codes follow into the linked project), " +
            'then resubmit.',
        })
      }
      toWrite.push({ index, entry: e, body: procoreBody(e, { party, project, costCode }), party })
    })
    const accepted = await store(tx, companyId, toWrite)
    if (accepted.length === 0) {
      throw new AppError(
        422,
        'time_entries_refused',
        'Every time entry was refused',
        `None of the ${refused.length} entries was accepted: ${refused[0]?.detail ?? ''}` +
          `${refused.length > 1 ? ` (and ${refused.length - 1} more, listed in refused)` : ''}. Nothing was stored.`,
        { refused },
      )
    }
    if (accepted.some((a) => a.status === 'pending')) await enqueuePush(tx, companyId)
    return { counts: { accepted: accepted.length, refused: refused.length }, accepted, refused }
  })
}

const enqueuePush = (tx: Tx, companyId: string) => enqueue(tx, pushTask, { companyId })

/** 404 for a company that is not registered (an admin key reaches every id). */
async function knownCompany(db: Db | Tx, companyId: string): Promise<void> {
  const row = await db.selectFrom('companies').select('id').where('id', '=', companyId).executeTakeFirst()
  if (!row) throw notFound('company', companyId)
}

/**
 * Upserts the accepted entries in one statement. An entry whose content and wish are what was last accepted is
 * unchanged (a failed one is tried again); any other is pending until the job has written it to Procore.
 */
async function store(
  tx: Tx,
  companyId: string,
  items: ReadonlyArray<{ index: number; entry: TimeEntryInput; body: Record<string, unknown>; party: string }>,
): Promise<Acceptance[]> {
  if (items.length === 0) return []
  const values = items.map(({ entry, body, party }) => {
    const { voided, ...kept } = entry
    const wanted: 'present' | 'absent' = voided === true ? 'absent' : 'present'
    return {
      company_id: companyId,
      external_id: entry.externalId,
      entry: JSON.stringify(kept),
      procore_body: JSON.stringify(body),
      content_hash: hashOf([wanted, body]),
      entry_date: entry.date,
      party_id: party,
      approved_at: new Date(entry.approvedAt),
      wanted,
      status: 'pending' as const,
    }
  })
  const before = await tx
    .selectFrom('time_entries')
    .select(['external_id', 'content_hash', 'status'])
    .where('company_id', '=', companyId)
    .where(
      'external_id',
      'in',
      values.map((v) => v.external_id),
    )
    .forUpdate()
    .execute()
  const prior = new Map(before.map((r) => [r.external_id, r]))
  const rows = await tx
    .insertInto('time_entries')
    .values(values)
    .onConflict((oc) =>
      oc.columns(['company_id', 'external_id']).doUpdateSet((eb) => ({
        entry: eb.ref('excluded.entry'),
        procore_body: eb.ref('excluded.procore_body'),
        content_hash: eb.ref('excluded.content_hash'),
        entry_date: eb.ref('excluded.entry_date'),
        party_id: eb.ref('excluded.party_id'),
        approved_at: eb.ref('excluded.approved_at'),
        wanted: eb.ref('excluded.wanted'),
        status: sql<TimeEntryStatus>`case when time_entries.content_hash = excluded.content_hash
          and time_entries.status <> 'failed' then time_entries.status else 'pending' end`,
        error: sql<string | null>`case when time_entries.content_hash = excluded.content_hash
          and time_entries.status <> 'failed' then time_entries.error else null end`,
        attempts: sql<number>`case when time_entries.content_hash = excluded.content_hash
          and time_entries.status <> 'failed' then time_entries.attempts else 0 end`,
        version: sql<number>`time_entries.version + case when time_entries.content_hash = excluded.content_hash
          and time_entries.status <> 'failed' then 0 else 1 end`,
        updated_at: sql<Date>`case when time_entries.content_hash = excluded.content_hash
          and time_entries.status <> 'failed' then time_entries.updated_at else now() end`,
      })),
    )
    .returning(['external_id', 'origin_id', 'status', 'wanted'])
    .execute()
  const byId = new Map(rows.map((r) => [r.external_id, r]))
  const hashes = new Map(values.map((v) => [v.external_id, v.content_hash]))
  return items.map(({ index, entry }) => {
    const row = byId.get(entry.externalId)!
    const was = prior.get(entry.externalId)
    const same = was !== undefined && was.content_hash === hashes.get(entry.externalId)
    const change: Acceptance['change'] =
      was === undefined
        ? row.wanted === 'absent'
          ? 'voided'
          : 'created'
        : same && was.status !== 'failed'
          ? 'unchanged'
          : row.wanted === 'absent'
            ? 'voided'
            : 'updated'
    return { index, externalId: entry.externalId, originId: String(row.origin_id), change, status: row.status }
  })
}

/** Voids one entry: its Procore twin is removed by the job (an entry never sent is simply voided). */
export async function voidTimeEntry(db: Db, companyId: string, externalId: string): Promise<TimeEntry> {
  return transaction(db, async (tx) => {
    const row = await tx
      .updateTable('time_entries')
      .set({
        wanted: 'absent',
        status: sql<TimeEntryStatus>`case when wanted = 'absent' and status = 'voided' then status else 'pending' end`,
        error: null,
        attempts: sql<number>`case when wanted = 'absent' and status = 'voided' then attempts else 0 end`,
        content_hash: sql<string>`content_hash || ':void'`,
        version: sql<number>`version + 1`,
        updated_at: new Date(),
      })
      .where('company_id', '=', companyId)
      .where('external_id', '=', externalId)
      .returningAll()
      .executeTakeFirst()
    if (!row) throw notFound('time entry', externalId)
    if (row.status === 'pending') await enqueuePush(tx, companyId)
    return toTimeEntry(row)
  })
}

export async function getTimeEntry(db: Db, companyId: string, externalId: string): Promise<TimeEntry> {
  const row = await db
    .selectFrom('time_entries')
    .selectAll()
    .where('company_id', '=', companyId)
    .where('external_id', '=', externalId)
    .executeTakeFirst()
  if (!row) throw notFound('time entry', externalId)
  return toTimeEntry(row)
}

const entriesKeyset = keyset('time-entries', 'asc', [{ column: 'origin_id', type: 'bigint' }])

/** The company's entries in the order they were first accepted, filtered by status and working day. */
export async function listTimeEntries(
  db: Db,
  companyId: string,
  filter: { status?: TimeEntryStatus | undefined; date?: string | undefined },
  page: PageRequest,
): Promise<Page<TimeEntry>> {
  await knownCompany(db, companyId)
  let query = db.selectFrom('time_entries').selectAll().where('company_id', '=', companyId)
  if (filter.status) query = query.where('status', '=', filter.status)
  if (filter.date) query = query.where('entry_date', '=', filter.date)
  return entriesKeyset.page(query, page, toTimeEntry)
}

function toTimeEntry(row: Row): TimeEntry {
  const body = row.procore_body
  return {
    externalId: row.external_id,
    originId: String(row.origin_id),
    status: row.status,
    error: row.error,
    procoreId: row.procore_id,
    entry: { externalId: row.external_id, ...row.entry, ...(row.wanted === 'absent' ? { voided: true } : {}) },
    procore: {
      partyId: String(body.party_id),
      projectId: String(body.project_id),
      costCodeId: String(body.cost_code_id),
    },
    attempts: row.attempts,
    acceptedAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    sentAt: row.sent_at?.toISOString() ?? null,
  }
}
