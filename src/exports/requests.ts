import { sql, type Selectable } from 'kysely'
import { Type } from 'typebox'
import type { AppContext } from '../context.js'
import { transaction, type Db, type Tx } from '../db/database.js'
import type { ExportRequestsTable, ExportStatus } from '../db/tables/exports.js'
import { OpenExportStatuses } from '../db/tables/exports.js'
import { etagOf } from '../api/etag.js'
import { keyset, type Page, type PageRequest } from '../api/pagination.js'
import { conflict, isRefusal, notFound, preconditionFailed, unprocessable, type FieldError } from '../errors.js'
import { enqueue } from '../jobs/queue.js'
import { createRun, runJob } from '../jobs/runs.js'
import { defineTask } from '../jobs/task.js'
import type { Eligibility, ExportRequest, ExportRequestDetail, ExportSummary } from '../schemas/exports.js'
import { emit } from '../notify/webhooks.js'
import { audit, system, type Actor } from '../sync/audit.js'
import { companyErpKind } from '../sync/connectors.js'
import { createLane, CreateRunKinds, performCreate } from '../sync/create.js'
import { processOrigins } from '../sync/links.js'
import {
  entity,
  erpBody,
  erpProblems,
  ErpKindLabels,
  normalizeFields,
  Registry,
  sameValue,
  type Fields,
  type RecordType,
} from '../sync/registry.js'
import { exportSummary } from '../sync/hold.js'
import { recordTransition } from '../sync/export-transitions.js'

/**
 * Send to ERP with accounting acceptance, for every record type the registry marks exportable:
 * a Procore record is sent (checked against every requirement at once, frozen as sent, held), an
 * approver accepts it (the create-in-ERP run makes it, links it and writes Procore's origin
 * fields) or rejects it; the sender may retrieve it before a decision and send it again after.
 * Every transition is one transaction with its history row, audit entry and events.
 */

export type Person = { name: string; email?: string; procoreUserId?: string }
type Row = Selectable<ExportRequestsTable>

const toRequest = (r: Row): ExportRequest => ({
  id: r.id,
  type: r.type,
  procoreId: r.procore_id,
  status: r.status,
  note: r.note,
  sentBy: r.sent_by,
  sentAt: r.created_at.toISOString(),
  sentFields: r.sent_fields,
  previousId: r.previous_id,
  erpCode: r.erp_code,
  companyType: r.company_type,
  overrides: r.overrides,
  attempt: r.attempt,
  runId: r.run_id,
  erpId: r.erp_id,
  linkId: r.link_id,
  messages: r.messages,
  reason: r.reason,
  updatedAt: r.updated_at.toISOString(),
})

function exportable(type: RecordType) {
  const spec = Registry[type].export
  if (!spec) {
    throw unprocessable(
      'type_not_exportable',
      `${Registry[type].label} cannot be sent to the ERP; ` +
        `exportable types: ${Object.values(Registry)
          .filter((d) => d.export)
          .map((d) => d.type)
          .join(', ')}.`,
      [{ pointer: '/type', message: 'not an exportable record type' }],
    )
  }
  return spec
}

type Reason = Eligibility['reasons'][number]

/** Every unmet requirement at once: why "Send to ERP" is greyed out. */
export async function eligibility(
  db: Db | Tx,
  companyId: string,
  type: RecordType,
  procoreId: string,
): Promise<Eligibility & { fields: Fields | null; previous: { id: string; status: ExportStatus } | null }> {
  const spec = exportable(type)
  const def = entity(type)
  const reasons: Reason[] = []
  const snap = await db
    .selectFrom('record_snapshots')
    .select(['fields', 'parent_id', 'deleted_at'])
    .where('company_id', '=', companyId)
    .where('type', '=', type)
    .where('side', '=', 'procore')
    .where('external_id', '=', procoreId)
    .executeTakeFirst()
  const last = await db
    .selectFrom('export_requests')
    .select(['id', 'status'])
    .where('company_id', '=', companyId)
    .where('type', '=', type)
    .where('procore_id', '=', procoreId)
    .orderBy('created_at', 'desc')
    .limit(1)
    .executeTakeFirst()
  const previous = last ? { id: last.id, status: last.status } : null
  if (!snap || snap.deleted_at !== null) {
    reasons.push({
      code: 'record_not_found',
      detail: `No live Procore ${def.noun} ${procoreId} is known.`,
      fix: 'Check the id, or reconcile Procore (POST …/procore/reconcile) and try again.',
    })
    return { eligible: false, reasons, fields: null, previous }
  }
  const fields = snap.fields as Fields
  if (fields.active === false) {
    reasons.push({
      code: 'record_inactive',
      field: 'active',
      detail: `The ${def.noun} is inactive in Procore; only active records are exported.`,
      fix: 'Make it active in Procore, then send it.',
    })
  }
  const link = await db
    .selectFrom('record_links')
    .select(['id', 'erp_id'])
    .where('company_id', '=', companyId)
    .where('type', '=', type)
    .where('procore_id', '=', procoreId)
    .where('unlinked_at', 'is', null)
    .executeTakeFirst()
  if (link) {
    reasons.push({
      code: 'already_linked',
      detail:
        `It is already linked to ERP ${def.noun} ${link.erp_id} (link ${link.id}); ` +
        'a synced record is not exported again.',
      fix: 'Nothing to send. Unlink it first if the pairing is wrong.',
    })
  }
  if (last && (OpenExportStatuses as readonly string[]).includes(last.status) && last.status !== 'failed_to_export') {
    reasons.push({
      code: 'already_pending',
      detail: `Export request ${last.id} is ${last.status}.`,
      fix: 'Wait for the approver, or retrieve it (POST …/exports/{id}/retrieve) to edit and send again.',
    })
  }
  for (const r of spec.requires?.(fields) ?? []) reasons.push(r)
  const kind = await companyErpKind(db, companyId)
  const erp = ErpKindLabels[kind]
  // The approver enters the ERP id on accept: it is not required of the sender.
  const checked = Object.fromEntries(Object.entries(fields).filter(([k]) => k !== spec.erpIdField))
  const full: Fields = { ...checked, ...(def.create.erp.derive?.(checked, kind) ?? {}) }
  for (const name of def.create.erp.required.filter((n) => n !== spec.erpIdField)) {
    const v = full[name]
    if (v === null || v === undefined || (typeof v === 'string' && v.trim() === '')) {
      reasons.push({
        code: 'field_missing',
        field: name,
        detail: `${def.fields[name]?.label ?? name} is required to create a ${def.noun} in ${erp}.`,
        fix: `Fill in ${def.fields[name]?.label ?? name} in Procore, then send it.`,
      })
    }
  }
  for (const p of erpProblems(type, kind, full, 'update')) {
    reasons.push({
      code: p.message.includes('at most') ? `${p.field}_too_long` : 'field_invalid',
      field: p.field,
      detail: p.message.replace(/; (shorten|correct) it and retry$/, '') + '.',
      fix: `Correct ${def.fields[p.field]?.label ?? p.field} in Procore, then send it.`,
    })
  }
  // The agent's own limits (`max_lengths` of /v1/info), in its field names.
  const conn = await db
    .selectFrom('erp_connections')
    .select('info')
    .where('company_id', '=', companyId)
    .executeTakeFirst()
  const limits =
    (conn?.info as { limits?: { max_lengths?: Record<string, Record<string, number>> } } | undefined)?.limits
      ?.max_lengths?.[def.erp.resource] ?? {}
  const body = erpBody(type, full, 'create')
  for (const [field, max] of Object.entries(limits)) {
    const v = body[field]
    const canonical = Object.keys(def.fields).find((f) => field in def.erp.to({ [f]: 'x' }))
    if (typeof v !== 'string' || [...v].length <= max) continue
    if (reasons.some((r) => r.field === canonical && r.code.endsWith('_too_long'))) continue
    reasons.push({
      code: `${canonical ?? field}_too_long`,
      field: canonical ?? field,
      detail: `The ERP agent accepts at most ${max} characters in ${field} (it has ${[...v].length}).`,
      fix: `Shorten it in Procore, then send it.`,
    })
  }
  if (def.parent && snap.parent_id !== null) {
    const parentLink = await db
      .selectFrom('record_links')
      .select('id')
      .where('company_id', '=', companyId)
      .where('type', '=', def.parent.type)
      .where('procore_id', '=', snap.parent_id)
      .where('unlinked_at', 'is', null)
      .executeTakeFirst()
    if (!parentLink) {
      reasons.push({
        code: 'parent_not_synced',
        detail: `Its ${Registry[def.parent.type].noun} ${snap.parent_id} is not synced with the ERP yet.`,
        fix: `Link or export the ${Registry[def.parent.type].noun} first.`,
      })
    }
  }
  return { eligible: reasons.length === 0, reasons, fields, previous }
}

async function requireApproval(db: Db | Tx, companyId: string, type: RecordType): Promise<boolean> {
  const row = await db
    .selectFrom('export_settings')
    .select('require_approval')
    .where('company_id', '=', companyId)
    .where('type', '=', type)
    .executeTakeFirst()
  return row?.require_approval ?? true
}

export async function getExportSettings(db: Db, companyId: string) {
  const rows = await db.selectFrom('export_settings').selectAll().where('company_id', '=', companyId).execute()
  return Object.fromEntries(
    Object.values(Registry)
      .filter((d) => d.export)
      .map((d) => [d.type, { requireApproval: rows.find((r) => r.type === d.type)?.require_approval ?? true }]),
  ) as Record<string, { requireApproval: boolean }>
}

export async function putExportSettings(
  db: Db,
  companyId: string,
  settings: Record<string, { requireApproval: boolean }>,
  actor: Actor,
) {
  await transaction(db, async (tx) => {
    for (const [type, s] of Object.entries(settings)) {
      exportable(type as RecordType)
      await tx
        .insertInto('export_settings')
        .values({ company_id: companyId, type, require_approval: s.requireApproval })
        .onConflict((oc) =>
          oc
            .columns(['company_id', 'type'])
            .doUpdateSet({ require_approval: s.requireApproval, updated_at: new Date() }),
        )
        .execute()
    }
    await audit(tx, companyId, actor, [
      { action: 'settings', after: { exports: settings }, detail: 'export approval settings changed' },
    ])
  })
  return getExportSettings(db, companyId)
}

const isUniqueViolation = (e: unknown) => (e as { code?: string } | null)?.code === '23505'

/**
 * Sends a record: 422 with every reason when it is not eligible; otherwise a new request waiting
 * for an approver (or, with requireApproval off, accepted at once), linked to the record's last one.
 */
export async function sendExport(
  ctx: AppContext,
  companyId: string,
  input: { type: RecordType; procoreId: string; note?: string | undefined; sentBy: Person; erpId?: string | undefined },
  actor: Actor,
): Promise<{ request: ExportRequestDetail; etag: string }> {
  const { type, procoreId } = input
  const id = await transaction(ctx.db, async (tx) => {
    // Serialises sends of one record (and their eligibility reads) without a table lock.
    await sql`select pg_advisory_xact_lock(hashtextextended(${`export:${companyId}:${type}:${procoreId}`}, 0))`.execute(
      tx,
    )
    const check = await eligibility(tx, companyId, type, procoreId)
    if (!check.eligible) {
      throw unprocessable(
        'not_eligible',
        `This ${entity(type).noun} cannot be sent to the ERP: ${check.reasons.map((r) => r.detail).join(' ')}`,
        check.reasons.map((r): FieldError => ({
          pointer: r.field ? `/record/${r.field}` : '/procoreId',
          message: `${r.code}: ${r.fix}`,
        })),
      )
    }
    // A re-send after a failed export replaces that request.
    if (check.previous?.status === 'failed_to_export') {
      const prev = await tx
        .updateTable('export_requests')
        .set({ status: 'withdrawn', reason: 're-sent', version: sql<number>`version + 1`, updated_at: new Date() })
        .where('id', '=', check.previous.id)
        .where('status', '=', 'failed_to_export')
        .returningAll()
        .executeTakeFirst()
      if (prev)
        await recordTransition(tx, companyId, {
          request: prev,
          from: 'failed_to_export',
          to: 'withdrawn',
          actor,
          person: input.sentBy.name,
          detail: 'withdrawn: the record was sent again',
        })
    }
    let row: Row
    try {
      row = await tx
        .insertInto('export_requests')
        .values({
          company_id: companyId,
          type,
          procore_id: procoreId,
          status: 'pending_acceptance',
          note: input.note ?? null,
          sent_by: JSON.stringify(input.sentBy),
          sent_fields: JSON.stringify(check.fields),
          previous_id: check.previous?.id ?? null,
          erp_code: null,
          company_type: null,
          overrides: null,
          run_id: null,
          erp_id: null,
          link_id: null,
          messages: null,
          reason: null,
          sent_by_key: actor.id,
        })
        .returningAll()
        .executeTakeFirstOrThrow()
    } catch (error) {
      if (isUniqueViolation(error))
        throw conflict('already_pending', 'This record already has an open export request; retrieve it first.')
      throw error
    }
    await recordTransition(tx, companyId, {
      request: row,
      from: null,
      to: 'pending_acceptance',
      actor,
      person: input.sentBy.name,
      detail: check.previous ? `re-sent (after ${check.previous.status} request ${check.previous.id})` : 'sent',
      data: input.note ? { note: input.note } : {},
    })
    if (!(await requireApproval(tx, companyId, type))) {
      const spec = exportable(type)
      const code =
        input.erpId ?? (typeof check.fields?.[spec.erpIdField] === 'string' ? check.fields[spec.erpIdField] : null)
      if (!code) {
        throw unprocessable(
          'erp_id_required',
          'Direct export is on for this type (requireApproval false): send erpId, the ERP id to create it with.',
          [{ pointer: '/body/erpId', message: 'required when the type exports without approval' }],
        )
      }
      await acceptInTx(ctx, tx, companyId, row, { erpId: String(code) }, system('direct-export'))
    }
    return row.id
  })
  const { request, etag } = await getExport(ctx.db, companyId, id)
  return { request, etag }
}

const exportsKeyset = keyset('exports', 'desc', [
  { column: 'created_at', type: 'timestamp' },
  { column: 'id', type: 'uuid' },
])

/** The approver's queue: newest first, filtered by status, type and a search over the record as sent. */
export async function listExports(
  db: Db,
  companyId: string,
  filter: { status?: ExportStatus[] | undefined; type?: RecordType | undefined; q?: string | undefined },
  page: PageRequest,
): Promise<Page<ExportRequest>> {
  let query = db.selectFrom('export_requests').selectAll().where('company_id', '=', companyId)
  if (filter.status && filter.status.length > 0) query = query.where('status', 'in', filter.status)
  if (filter.type) query = query.where('type', '=', filter.type)
  if (filter.q) {
    const like = `%${filter.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`
    query = query.where(
      sql<boolean>`(exists (select 1 from jsonb_each_text(sent_fields) f where f.value ilike ${like})
        or procore_id = ${filter.q} or coalesce(erp_code, '') ilike ${like})`,
    )
  }
  return exportsKeyset.page(query, page, toRequest)
}

async function rowOf(db: Db | Tx, companyId: string, id: string): Promise<Row> {
  const row = await db
    .selectFrom('export_requests')
    .selectAll()
    .where('company_id', '=', companyId)
    .where('id', '=', id)
    .executeTakeFirst()
  if (!row) throw notFound('export request', id)
  return row
}

/** One request with its history and what changed in Procore since it was sent. */
export async function getExport(
  db: Db,
  companyId: string,
  id: string,
): Promise<{ request: ExportRequestDetail; etag: string }> {
  if (!/^[0-9a-f-]{36}$/.test(id)) throw notFound('export request', id)
  const row = await rowOf(db, companyId, id)
  const history = await db
    .selectFrom('export_transitions')
    .selectAll()
    .where('request_id', '=', id)
    .orderBy('id')
    .execute()
  const snap = await db
    .selectFrom('record_snapshots')
    .select('fields')
    .where('company_id', '=', companyId)
    .where('type', '=', row.type)
    .where('side', '=', 'procore')
    .where('external_id', '=', row.procore_id)
    .executeTakeFirst()
  const type = row.type as RecordType
  const sent = normalizeFields(type, row.sent_fields)
  const now = snap ? normalizeFields(type, snap.fields as Fields) : {}
  const changed = snap
    ? [...new Set([...Object.keys(sent), ...Object.keys(now)])]
        .filter((f) => !sameValue(type, f, sent[f] ?? null, now[f] ?? null))
        .map((f) => ({ field: f, sent: row.sent_fields[f] ?? null, current: (snap.fields as Fields)[f] ?? null }))
    : []
  return {
    request: {
      ...toRequest(row),
      history: history.map((h) => ({
        at: h.at.toISOString(),
        from: h.from_status,
        to: h.to_status,
        actor: h.actor,
        person: h.person,
        detail: h.detail,
      })),
      changedSinceSent: changed,
    },
    etag: etagOf(row.version),
  }
}

/** Locks the request, checks the caller's version (412) and that `allowed` includes its status (409). */
async function lockFor(
  tx: Tx,
  companyId: string,
  id: string,
  version: number | undefined,
  allowed: readonly ExportStatus[],
  action: string,
): Promise<Row> {
  if (!/^[0-9a-f-]{36}$/.test(id)) throw notFound('export request', id)
  const row = await tx
    .selectFrom('export_requests')
    .selectAll()
    .where('company_id', '=', companyId)
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst()
  if (!row) throw notFound('export request', id)
  if (version !== undefined && version !== row.version) throw preconditionFailed(etagOf(row.version))
  if (!allowed.includes(row.status)) {
    throw conflict(
      'export_state',
      `The request is ${row.status}; it can be ${action} only while ${allowed.join(' or ')}.`,
      { status: row.status },
    )
  }
  return row
}

/**
 * Accepts a request: the ERP id must be unused (checked before any ERP call), the record with
 * the approver's corrections must meet the ERP's rules; then `exporting` and the job that creates.
 */
export async function acceptExport(
  ctx: AppContext,
  companyId: string,
  id: string,
  version: number,
  input: {
    erpId: string
    companyType?: string | undefined
    overrides?: Fields | undefined
    approver?: Person | undefined
  },
  actor: Actor,
): Promise<{ request: ExportRequestDetail; etag: string }> {
  await transaction(ctx.db, async (tx) => {
    const row = await lockFor(tx, companyId, id, version, ['pending_acceptance', 'failed_to_export'], 'accepted')
    await acceptInTx(ctx, tx, companyId, row, input, actor)
  })
  return getExport(ctx.db, companyId, id)
}

async function acceptInTx(
  _ctx: AppContext,
  tx: Tx,
  companyId: string,
  row: Row,
  input: {
    erpId: string
    companyType?: string | undefined
    overrides?: Fields | undefined
    approver?: Person | undefined
  },
  actor: Actor,
): Promise<void> {
  const type = row.type as RecordType
  const spec = exportable(type)
  const def = entity(type)
  const erpId = input.erpId.trim()
  const errors: FieldError[] = []
  if (spec.companyTypes && input.companyType !== undefined && !spec.companyTypes.includes(input.companyType))
    errors.push({ pointer: '/body/companyType', message: `one of ${spec.companyTypes.join(', ')}` })
  for (const f of Object.keys(input.overrides ?? {})) {
    if (!def.fields[f]?.sides.includes('erp') || f === spec.erpIdField)
      errors.push({
        pointer: `/body/overrides/${f}`,
        message: `not a field the ERP ${def.noun} takes from the request`,
      })
  }
  if (errors.length > 0)
    throw unprocessable('invalid_accept', 'Some fields of the accept cannot be used; see errors.', errors)
  // The ERP id must be unused: by an ERP record, or by another request being exported.
  const taken = await tx
    .selectFrom('record_snapshots')
    .select('external_id')
    .where('company_id', '=', companyId)
    .where('type', '=', type)
    .where('side', '=', 'erp')
    .where('deleted_at', 'is', null)
    .where(sql<boolean>`upper(trim(fields->>${spec.erpIdField})) = upper(${erpId})`)
    .executeTakeFirst()
  const claimed = await tx
    .selectFrom('export_requests')
    .select('id')
    .where('company_id', '=', companyId)
    .where('type', '=', type)
    .where('id', '<>', row.id)
    .where('status', 'in', ['exporting'])
    .where(sql<boolean>`upper(erp_code) = upper(${erpId})`)
    .executeTakeFirst()
  if (taken || claimed) {
    throw unprocessable(
      'erp_id_in_use',
      `${def.fields[spec.erpIdField]?.label ?? spec.erpIdField} ${erpId} is already used by ` +
        (taken ? `ERP ${def.noun} ${taken.external_id}` : `export request ${claimed!.id}`) +
        '; choose an unused one.',
      [{ pointer: '/body/erpId', message: 'already used in the ERP' }],
    )
  }
  const fields: Fields = { ...(input.overrides ?? {}), [spec.erpIdField]: erpId }
  const snap = await tx
    .selectFrom('record_snapshots')
    .select('fields')
    .where('company_id', '=', companyId)
    .where('type', '=', type)
    .where('side', '=', 'procore')
    .where('external_id', '=', row.procore_id)
    .where('deleted_at', 'is', null)
    .executeTakeFirst()
  if (!snap)
    throw conflict('record_gone', `Procore ${def.noun} ${row.procore_id} no longer exists; reject the request.`)
  const kind = await companyErpKind(tx, companyId)
  const problems = erpProblems(type, kind, { ...(snap.fields as Fields), ...fields }, 'create')
  if (problems.length > 0) {
    throw unprocessable(
      'erp_rules',
      `The ${def.noun} would be refused by ${ErpKindLabels[kind]}: ${problems.map((p) => p.message).join('; ')}.`,
      problems.map((p) => ({
        pointer: p.field === spec.erpIdField ? '/body/erpId' : `/body/overrides/${p.field}`,
        message: p.message,
      })),
    )
  }
  const attempt = row.attempt + 1
  const run = await createRun(
    tx,
    CreateRunKinds.erp,
    companyId,
    {
      type,
      target: 'erp',
      ids: [row.procore_id],
      force: false,
      ...(actor.requestId ? { requestId: actor.requestId } : {}),
      export: { requestId: row.id, attempt, fields },
    },
    actor.id,
  )
  const updated = await tx
    .updateTable('export_requests')
    .set({
      status: 'exporting',
      attempt,
      erp_code: erpId,
      company_type: input.companyType ?? null,
      overrides: input.overrides ? JSON.stringify(input.overrides) : null,
      run_id: run.id,
      messages: null,
      version: sql<number>`version + 1`,
      updated_at: new Date(),
    })
    .where('id', '=', row.id)
    .returningAll()
    .executeTakeFirstOrThrow()
  await enqueue(
    tx,
    exportTask,
    { companyId, exportId: row.id, runId: run.id, attempt },
    { queueName: createLane(companyId, type) },
  )
  await recordTransition(tx, companyId, {
    request: updated,
    from: row.status,
    to: 'exporting',
    actor,
    person: input.approver?.name,
    detail: `accepted as ${erpId}${input.companyType ? ` (${input.companyType})` : ''}, attempt ${attempt}`,
    data: { erpCode: erpId, attempt, runId: run.id },
  })
}

/** Rejects a request waiting for a decision (or failed to export), with the reason for the sender. */
export async function rejectExport(
  ctx: AppContext,
  companyId: string,
  id: string,
  version: number,
  input: { reason: string; approver?: Person | undefined },
  actor: Actor,
) {
  return decide(ctx, companyId, id, version, ['pending_acceptance', 'failed_to_export'], 'rejected', actor, {
    reason: input.reason,
    person: input.approver?.name,
    detail: `rejected: ${input.reason}`,
  })
}

/** The sender takes the request back before a decision: the record is editable and can be sent again. */
export async function retrieveExport(
  ctx: AppContext,
  companyId: string,
  id: string,
  version: number | undefined,
  input: { by?: Person | undefined },
  actor: Actor,
) {
  return decide(ctx, companyId, id, version, ['pending_acceptance'], 'retrieved', actor, {
    reason: null,
    person: input.by?.name,
    detail: 'retrieved by the sender',
  })
}

async function decide(
  ctx: AppContext,
  companyId: string,
  id: string,
  version: number | undefined,
  allowed: readonly ExportStatus[],
  to: 'rejected' | 'retrieved',
  actor: Actor,
  what: { reason: string | null; person?: string | undefined; detail: string },
) {
  await transaction(ctx.db, async (tx) => {
    const row = await lockFor(tx, companyId, id, version, allowed, to)
    const updated = await tx
      .updateTable('export_requests')
      .set({ status: to, reason: what.reason, version: sql<number>`version + 1`, updated_at: new Date() })
      .where('id', '=', row.id)
      .returningAll()
      .executeTakeFirstOrThrow()
    await recordTransition(tx, companyId, {
      request: updated,
      from: row.status,
      to,
      actor,
      person: what.person,
      detail: what.detail,
      data: what.reason ? { reason: what.reason, sentBy: row.sent_by } : { sentBy: row.sent_by },
    })
  })
  return getExport(ctx.db, companyId, id)
}

/**
 * The job of an accepted request: the create-in-ERP run (frozen body, Idempotency-Key of this
 * request and attempt, link, origin fields), then the request's outcome. A retry or a rerun after
 * a crash replays the same create and settles once.
 */
export const exportTask = defineTask({
  name: 'exports:export',
  payload: Type.Object({
    companyId: Type.String(),
    exportId: Type.String(),
    runId: Type.String(),
    attempt: Type.Integer(),
  }),
  maxAttempts: 6,
  run: async (ctx, { companyId, exportId, runId, attempt }, job) => {
    await runJob(ctx, CreateRunKinds.erp, runId, job, (run) => performCreate(ctx, run), {
      transient: (error) => !isRefusal(error),
    })
    await settle(ctx, companyId, exportId, runId, attempt, job.lastAttempt)
  },
})

async function settle(
  ctx: AppContext,
  companyId: string,
  exportId: string,
  runId: string,
  attempt: number,
  lastAttempt: boolean,
): Promise<void> {
  const run = await ctx.db.selectFrom('sync_runs').selectAll().where('id', '=', runId).executeTakeFirstOrThrow()
  const request = await rowOf(ctx.db, companyId, exportId)
  if (request.status !== 'exporting' || request.attempt !== attempt) return
  const result = run.result as {
    items?: Array<{ status: string; targetId?: string; linkId?: string; reason?: string; messages?: unknown[] }>
  } | null
  const item = result?.items?.[0]
  const type = request.type as RecordType
  if (run.status === 'succeeded' && item?.status === 'created') {
    // Procore's origin_id / origin_code: written by the run; a deferred write is done (or retried) here.
    const link = await ctx.db
      .selectFrom('record_links')
      .select(['id', 'origin_state', 'origin_error'])
      .where('id', '=', item.linkId!)
      .executeTakeFirstOrThrow()
    if (link.origin_state === 'pending') {
      try {
        await processOrigins(ctx, companyId, type, [request.procore_id])
      } catch (error) {
        if (!lastAttempt) throw error
      }
    }
    const after = await ctx.db
      .selectFrom('record_links')
      .select(['origin_state', 'origin_error'])
      .where('id', '=', link.id)
      .executeTakeFirstOrThrow()
    if (after.origin_state === 'pending' && !lastAttempt)
      throw new Error("Procore's origin fields are not written yet; retrying")
    await finish(ctx, companyId, request, 'exported', {
      erp_id: item.targetId ?? null,
      link_id: link.id,
      messages:
        after.origin_state === 'set'
          ? null
          : [
              {
                field: 'origin_id',
                message: `Procore did not store the ERP id yet: ${after.origin_error ?? 'pending'}`,
              },
            ],
      detail: `created in the ERP as ${item.targetId}, linked (link ${link.id})`,
    })
    return
  }
  const messages =
    item?.messages && item.messages.length > 0
      ? (item.messages as Array<{ field: string; message: string }>)
      : [{ field: null, message: item?.reason ?? run.error ?? 'the create did not complete' }]
  await finish(ctx, companyId, request, 'failed_to_export', {
    erp_id: null,
    link_id: null,
    messages,
    detail: `failed to export: ${item?.reason ?? run.error ?? 'the create did not complete'}`,
  })
}

async function finish(
  ctx: AppContext,
  companyId: string,
  request: Row,
  to: 'exported' | 'failed_to_export',
  out: {
    erp_id: string | null
    link_id: string | null
    messages: Array<{ field: string | null; message: string }> | null
    detail: string
  },
) {
  await transaction(ctx.db, async (tx) => {
    const updated = await tx
      .updateTable('export_requests')
      .set({
        status: to,
        erp_id: out.erp_id,
        link_id: out.link_id,
        messages: out.messages ? JSON.stringify(out.messages) : null,
        version: sql<number>`version + 1`,
        updated_at: new Date(),
      })
      .where('id', '=', request.id)
      .where('status', '=', 'exporting')
      .where('attempt', '=', request.attempt)
      .returningAll()
      .executeTakeFirst()
    if (!updated) return
    await recordTransition(tx, companyId, {
      request: updated,
      from: 'exporting',
      to,
      actor: system('exports'),
      detail: out.detail,
      erpId: out.erp_id,
      linkId: out.link_id,
      data: {
        ...(out.erp_id ? { erpId: out.erp_id, erpCode: request.erp_code } : {}),
        ...(out.messages ? { messages: out.messages } : {}),
        sentBy: request.sent_by,
      },
    })
  })
}

/** The open or last export request of each record, for record views. */
export async function exportSummaries(
  db: Db,
  companyId: string,
  type: string,
  procoreIds: readonly string[],
): Promise<Map<string, ExportSummary>> {
  if (procoreIds.length === 0) return new Map()
  const rows = await db
    .selectFrom('export_requests')
    .distinctOn('procore_id')
    .select(['id', 'procore_id', 'status', 'updated_at', 'reason'])
    .where('company_id', '=', companyId)
    .where('type', '=', type)
    .where('procore_id', 'in', [...procoreIds])
    .orderBy('procore_id')
    .orderBy('created_at', 'desc')
    .execute()
  return new Map(
    rows.map((r) => [
      r.procore_id,
      exportSummary({ id: r.id, status: r.status, updatedAt: r.updated_at, reason: r.reason }),
    ]),
  )
}

/** Daily: per company with subscribers, how many requests wait and since when. */
export const digestTask = defineTask({
  name: 'exports:digest',
  payload: Type.Object({}),
  schedule: { cron: '0 7 * * *', maxAttempts: 3 },
  run: async (ctx) => {
    const rows = await ctx.db
      .selectFrom('export_requests')
      .select(['company_id', sql<string>`count(*)`.as('pending'), sql<Date>`min(created_at)`.as('oldest')])
      .where('status', '=', 'pending_acceptance')
      .groupBy('company_id')
      .execute()
    for (const r of rows) {
      await transaction(ctx.db, (tx) =>
        emit(tx, r.company_id, 'exports.digest', {
          pending: Number(r.pending),
          oldestSentAt: new Date(r.oldest).toISOString(),
        }),
      )
    }
  },
})
