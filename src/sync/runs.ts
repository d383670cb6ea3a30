import type { Selectable } from 'kysely'
import { Type, type Static } from 'typebox'
import type { Database, Db } from '../db/database.js'
import { Sides } from '../db/tables/records.js'
import { notFound } from '../errors.js'
import { keyset, type Page, type PageRequest } from '../api/pagination.js'
import { defineRunKinds } from '../jobs/runs.js'
import type { Run } from '../schemas/runs.js'
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

const IngestParams = Type.Object({
  /** Re-list everything (and find deletions) instead of what changed since the last successful run. */
  full: Type.Boolean(),
  types: Type.Array(RecordType),
})

const IngestResult = Type.Object({
  types: Type.Record(Type.String(), TypeTally),
  /** Where an incremental listing started; null for a full one. */
  since: Type.Optional(Type.Union([Type.String(), Type.Null()])),
})

export const CreateParams = Type.Object({
  type: RecordType,
  target: Type.Enum([...Sides]),
  ids: Type.Array(Type.String()),
  force: Type.Boolean(),
  /** The API request that asked for the run (for the audit). */
  requestId: Type.Optional(Type.String()),
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

const BulkLinkItem = Type.Object({
  procoreId: Type.String(),
  erpId: Type.String(),
  score: Type.Number(),
  reasons: Type.Array(Type.String()),
  status: Type.Enum(['linked', 'skipped', 'ambiguous']),
  linkId: Type.Optional(Type.String()),
  reason: Type.Optional(Type.String()),
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
  { describe: failureMessage },
)

type RunRow = Selectable<Database['sync_runs']>

export function toRun(row: RunRow): Run {
  return {
    id: row.id,
    companyId: row.company_id,
    kind: row.kind,
    status: row.status,
    params: row.params,
    result: row.result,
    error: row.error,
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
  filter: { kind?: string | undefined },
  page: PageRequest,
): Promise<Page<Run>> {
  let query = db.selectFrom('sync_runs').selectAll().where('company_id', '=', companyId)
  if (filter.kind) query = query.where('kind', '=', filter.kind)
  return runsKeyset.page(query, page, toRun)
}
