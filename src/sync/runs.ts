import type { Selectable } from 'kysely'
import { Type, type Static } from 'typebox'
import type { Database, Db } from '../db/database.js'
import { FinishedRunStatuses, Sides, type RunStatus } from '../db/tables/records.js'
import { notFound } from '../errors.js'
import { keyset, type Page, type PageRequest } from '../api/pagination.js'
import { defineRunKinds } from '../jobs/runs.js'
import type { Run } from '../schemas/runs.js'
import { emit } from '../notify/webhooks.js'
import { failureMessage } from './connectors.js'
import { RecordTypes } from './registry.js'

const RecordType = Type.Enum([...RecordTypes])
const Count = Type.Integer({ minimum: 0 })

/** What a listing (Procore reconcile, ERP refresh) did with one record type. */
export const TypeTally = Type.Object({
  status: Type.Enum(['succeeded', 'failed', 'skipped']),
  mode: Type.Enum(['full', 'incremental']),
  listed: Count,
  pages: Count,
  created: Count,
  changed: Count,
  unchanged: Count,
  /** Listed at an older version than the snapshot already has (a notification was quicker). */
  stale: Count,
  deleted: Count,
  /** Records the listing did not show, re-read one by one: only a 404 proves a deletion. */
  checked: Count,
  /** Types with a parent: how many parents' lists were read (project cost codes, job cost codes). */
  parents: Type.Optional(Count),
  /** Why nothing was read (the side does not serve the list), or why it failed. */
  reason: Type.Optional(Type.String()),
})
export type TypeTally = Static<typeof TypeTally>

export const IngestScopes = ['company', 'project'] as const
export type IngestScope = (typeof IngestScopes)[number]

const IngestParams = Type.Object({
  /** Re-list everything (and find deletions) instead of what changed since the last successful run. */
  full: Type.Boolean(),
  types: Type.Array(RecordType),
  /** company: only the company-level lists; project: only the lists under each parent; absent: both. */
  scope: Type.Optional(Type.Enum([...IngestScopes])),
})

const Sided = Type.Object({ procore: Count, erp: Count })

const IngestResult = Type.Object({
  types: Type.Record(Type.String(), TypeTally),
  /** Record types done of those asked. */
  progress: Type.Optional(Type.Object({ done: Count, total: Count })),
  /** Requests made per side: one per page listed and one per record re-read alone (retries not counted). */
  apiCalls: Type.Optional(Sided),
  /** Where an incremental listing started; null for a full one. */
  since: Type.Optional(Type.Union([Type.String(), Type.Null()])),
})

export const CreateParams = Type.Object({
  type: RecordType,
  target: Type.Enum([...Sides]),
  ids: Type.Array(Type.String()),
  force: Type.Boolean(),
  /** ERP codes to use by source id (a department code, job number…), instead of deriving them. */
  codes: Type.Optional(Type.Record(Type.String(), Type.String())),
  /** The API request that asked for the run (for the audit). */
  requestId: Type.Optional(Type.String()),
  /** Canonical field values to use instead of the source record's, by source id (onboarding's manual import). */
  edits: Type.Optional(
    Type.Record(Type.String(), Type.Record(Type.String(), Type.Union([Type.String(), Type.Boolean(), Type.Null()]))),
  ),
  /** Records made in Procore get the type's least access (registry: create.procore.leastPrivilege). */
  leastPrivilege: Type.Optional(Type.Boolean()),
  /**
   * An accepted export request (…/exports): the fields the approver set (the ERP id, corrections)
   * on top of the Procore record, and the attempt that keys the ERP create.
   */
  export: Type.Optional(
    Type.Object({
      requestId: Type.String(),
      attempt: Type.Integer({ minimum: 1 }),
      fields: Type.Record(Type.String(), Type.Union([Type.String(), Type.Boolean(), Type.Null()])),
    }),
  ),
})

export const CreateItem = Type.Object({
  sourceId: Type.String(),
  status: Type.Enum(['created', 'refused', 'failed']),
  targetId: Type.Optional(Type.String()),
  linkId: Type.Optional(Type.String()),
  reason: Type.Optional(Type.String()),
  /** With a refusal by the ERP: its messages, field by field. */
  messages: Type.Optional(Type.Array(Type.Object({ field: Type.String(), message: Type.String() }))),
  /** With a refusal for a strong match: the record on the target side that already matches. */
  match: Type.Optional(Type.Object({ id: Type.String(), score: Type.Number(), reasons: Type.Array(Type.String()) })),
})

const CreateResult = Type.Object({
  type: RecordType,
  target: Type.Enum([...Sides]),
  counts: Type.Object({ created: Count, refused: Count, failed: Count }),
  items: Type.Array(CreateItem),
})

/** A link prerequisite a pair does not meet (registry: linkPrerequisites). */
export const UnmetPrerequisite = Type.Object(
  {
    code: Type.String({ description: 'Stable code, e.g. procore_project_not_erp_integrated.' }),
    detail: Type.String(),
    fix: Type.String({ description: 'What to do to meet it.' }),
    fixable: Type.Boolean({ description: "Procore's API can meet it: POST …/links with fix: true does." }),
  },
  {
    examples: [
      {
        code: 'procore_project_not_erp_integrated',
        detail: 'Procore project 562949953421312 does not have the ERP-integrated setting on.',
        fix: 'Turn on the ERP-integrated setting of the project, or send fix: true to let the service do it.',
        fixable: true,
      },
    ],
  },
)

const BulkLinkItem = Type.Object({
  procoreId: Type.String(),
  erpId: Type.String(),
  score: Type.Number(),
  reasons: Type.Array(Type.String()),
  status: Type.Enum(['linked', 'skipped', 'ambiguous']),
  linkId: Type.Optional(Type.String()),
  reason: Type.Optional(Type.String()),
  unmet: Type.Optional(Type.Array(UnmetPrerequisite, { description: 'Skipped: the link prerequisites not met.' })),
})

/**
 * Every kind of run, with what it is asked (params) and what it reports (result). A new kind is
 * an entry here; its job hands the work to runJob (src/jobs/runs.ts).
 */
export const RunKinds = defineRunKinds(
  {
    procore_reconcile: { params: IngestParams, result: IngestResult },
    erp_refresh: { params: IngestParams, result: IngestResult },
    create_in_procore: { params: CreateParams, result: CreateResult },
    create_in_erp: { params: CreateParams, result: CreateResult },
    bulk_link: {
      params: Type.Object({ type: RecordType, minScore: Type.Number() }),
      result: Type.Object({
        type: RecordType,
        minScore: Type.Number(),
        counts: Type.Object({ linked: Count, skipped: Count, ambiguous: Count }),
        /** At most MAX_LISTED items; counts cover everything. */
        items: Type.Array(BulkLinkItem),
        truncated: Type.Boolean(),
        /** Why name similarity was left out, when it was. */
        nameMatchingSkipped: Type.Union([Type.String(), Type.Null()]),
      }),
    },
  },
  {
    describe: failureMessage,
    failed: (tx, run, error) =>
      emit(tx, run.company_id, 'run.failed', { runId: run.id, kind: run.kind, syncType: run.sync_type, error }),
  },
)

type RunRow = Selectable<Database['sync_runs']>

type Tallies = Record<string, Partial<Record<keyof TypeTally, unknown>>>
const num = (v: unknown): number => (typeof v === 'number' ? v : 0)

/**
 * The summary every run reports, whatever its kind, read from its result: listings add up their
 * per-type tallies; creates and bulk links carry their own counts and per-record items.
 */
function summary(row: RunRow): Pick<Run, 'progress' | 'counts' | 'errors' | 'apiCalls'> {
  const result = row.result ?? {}
  const counts = { listed: 0, changed: 0, created: 0, linked: 0, failed: 0 }
  const errors: Run['errors'] = []
  const types = (result['types'] ?? {}) as Tallies
  for (const [type, t] of Object.entries(types)) {
    counts.listed += num(t.listed)
    counts.changed += num(t.changed) + num(t.deleted)
    counts.created += num(t.created)
    if (t.status === 'failed') {
      counts.failed++
      errors.push({ type, recordId: null, message: typeof t.reason === 'string' ? t.reason : 'failed' })
    }
  }
  const own = (result['counts'] ?? {}) as Record<string, unknown>
  counts.created += num(own['created'])
  counts.linked += num(own['linked'])
  counts.failed += num(own['failed'])
  // Runs that send rows to Procore (job costs, payments): the rows read, and those sent.
  const rows = num(own['sent']) + num(own['unchanged']) + num(own['refused'])
  counts.listed += own['listed'] === undefined ? rows : num(own['listed'])
  counts.changed += num(own['sent'])
  const items = Array.isArray(result['items']) ? (result['items'] as Array<Record<string, unknown>>) : []
  for (const item of items) {
    if (item['status'] !== 'failed' && item['status'] !== 'refused') continue
    const recordId = item['sourceId'] ?? item['procoreId']
    errors.push({
      type: typeof result['type'] === 'string' ? result['type'] : null,
      recordId: typeof recordId === 'string' ? recordId : null,
      message: typeof item['reason'] === 'string' ? item['reason'] : String(item['status']),
    })
  }
  const declared = result['progress'] as { done?: unknown; total?: unknown } | undefined
  const finished = (FinishedRunStatuses as readonly string[]).includes(row.status)
  const progress = declared
    ? { done: num(declared.done), total: num(declared.total) }
    : { done: finished ? 1 : 0, total: 1 }
  const calls = (result['apiCalls'] ?? {}) as Record<string, unknown>
  return { progress, counts, errors, apiCalls: { procore: num(calls['procore']), erp: num(calls['erp']) } }
}

export function toRun(row: RunRow, now = new Date()): Run {
  const end = row.finished_at ?? (row.started_at ? now : null)
  return {
    id: row.id,
    companyId: row.company_id,
    kind: row.kind,
    syncType: row.sync_type,
    trigger: row.trigger,
    status: row.status,
    params: row.params,
    result: row.result,
    error: row.error,
    ...summary(row),
    durationMs: row.started_at && end ? Math.max(0, end.getTime() - row.started_at.getTime()) : null,
    cancelRequestedAt: row.cancel_requested_at?.toISOString() ?? null,
    requestedBy: row.requested_by,
    createdAt: row.created_at.toISOString(),
    startedAt: row.started_at?.toISOString() ?? null,
    finishedAt: row.finished_at?.toISOString() ?? null,
  }
}
export type { Run }

export async function getRun(db: Db, companyId: string, runId: string): Promise<Run> {
  const row = await db
    .selectFrom('sync_runs')
    .selectAll()
    .where('company_id', '=', companyId)
    .where('id', '=', runId)
    .executeTakeFirst()
  if (!row) throw notFound('run', runId)
  return toRun(row)
}

const runsKeyset = keyset('runs', 'desc', [
  { column: 'created_at', type: 'timestamp' },
  { column: 'id', type: 'uuid' },
])

export async function listRuns(
  db: Db,
  companyId: string,
  filter: {
    kind?: string | undefined
    syncType?: string | undefined
    status?: string | undefined
    trigger?: string | undefined
  },
  page: PageRequest,
): Promise<Page<Run>> {
  let query = db.selectFrom('sync_runs').selectAll().where('company_id', '=', companyId)
  if (filter.kind) query = query.where('kind', '=', filter.kind)
  if (filter.syncType) query = query.where('sync_type', '=', filter.syncType)
  if (filter.status) query = query.where('status', '=', filter.status as RunStatus)
  if (filter.trigger) query = query.where('trigger', '=', filter.trigger)
  return runsKeyset.page(query, page, (row) => toRun(row))
}
