import { sql } from 'kysely'
import type { Static } from 'typebox'
import type { AppContext } from '../context.js'
import { transaction, type Db, type Tx } from '../db/database.js'
import type { Side } from '../db/tables/records.js'
import { erpRecords, procoreRecords } from './sides.js'
import { ErpRefusedError } from '../erp/errors.js'
import { isRefusal, isRetryable, unprocessable } from '../errors.js'
import { collectUpstreamIds } from '../http/upstream-ids.js'
import { enqueue } from '../jobs/queue.js'
import { createRun, RunPayload, runJob, type JobRun, type RunParams, type RunResult } from '../jobs/runs.js'
import { defineTask } from '../jobs/task.js'
import { heldRecords } from './hold.js'
import { audit, type Actor } from './audit.js'
import { companyErpKind, failureMessage, mapRecord, type LiveRecord } from './connectors.js'
import { evaluateLinks } from './discrepancies.js'
import { insertLinks, meetPrerequisitesBeforeCreate, processOrigins, refreshLinkFacts } from './links.js'
import {
  comparedFields,
  entity,
  erpBody,
  erpDerived,
  erpFormat,
  erpProblems,
  otherSide,
  procoreBody,
  procoreProblems,
  Registry,
  type AgentLimits,
  type Fields,
  type RecordType,
} from './registry.js'
import { RunKinds, toRun, type CreateItem, type Run } from './runs.js'
import { upsertSnapshots, upsertSnapshotsInTx } from './snapshots.js'
import { clearFailed, flagFailed } from './status.js'
import { scorePairs } from './suggestions.js'

/**
 * Create-on-the-other-side-and-link, as a run. Every create is first written to sync_creates
 * with the exact body and key it will be sent with; a rerun (retry, crash) sends the identical
 * request again: Procore matches it by origin_id (the ERP id), the ERP replays it by its
 * Idempotency-Key, derived from (company, type, Procore id). No record is ever made twice.
 */

export const CreateRunKinds = { procore: RunKinds.create_in_procore, erp: RunKinds.create_in_erp } as const
export const MAX_CREATE_IDS = 10_000

export type CreateItemResult = Static<typeof CreateItem>
type CreateKind = (typeof CreateRunKinds)[Side]
/** What the run was asked; requestId: the API request that asked for it (for the audit). */
type Params = RunParams<CreateKind>
type CreateRun = JobRun<CreateKind>

/** One create or bulk-link run per company and type at a time: two runs never race for one record. */
export const createLane = (companyId: string, type: RecordType) => `create:${companyId}:${type}`

/** Performs a create run. */
export const createTask = defineTask({
  name: 'sync:create',
  payload: RunPayload,
  maxAttempts: 6,
  run: (ctx, { runId }, job) =>
    runJob(ctx, [CreateRunKinds.procore, CreateRunKinds.erp], runId, job, (run) => performCreate(ctx, run), {
      // A refusal of the whole run (not connected, access denied) is final; anything else — the
      // network, Procore or the ERP busy, our own database gone mid-run — is retried, and the
      // rerun resends exactly the frozen requests.
      transient: (error) => !isRefusal(error),
    }),
})

/** Creates the run and, in the same transaction, the job that performs it. */
export async function requestCreate(
  db: Db,
  companyId: string,
  type: RecordType,
  target: Side,
  ids: readonly string[],
  force: boolean,
  actor: Actor,
  codes?: Record<string, string>,
): Promise<Run> {
  if (target === 'procore') await refuseMissingProcoreFields(db, companyId, type, ids)
  return transaction(db, (tx) => requestCreateInTx(tx, companyId, type, target, ids, force, actor, codes))
}

/**
 * A request to create records in Procore whose ERP records lack what Procore needs (a project's
 * address) is refused whole, with each missing field of each record, before any run starts.
 */
async function refuseMissingProcoreFields(db: Db, companyId: string, type: RecordType, ids: readonly string[]) {
  const rows = await db
    .selectFrom('record_snapshots')
    .select(['external_id', 'fields'])
    .where('company_id', '=', companyId)
    .where('type', '=', type)
    .where('side', '=', 'erp')
    .where('deleted_at', 'is', null)
    .where('external_id', 'in', [...ids])
    .execute()
  const fieldsOf = new Map(rows.map((r) => [r.external_id, r.fields as Fields]))
  const errors = ids.flatMap((id, i) => {
    const fields = fieldsOf.get(id)
    return fields
      ? procoreProblems(type, fields).map((p) => ({
          pointer: `/body/erpIds/${i}`,
          message: `ERP ${Registry[type].noun} ${id}: ${p.message}`,
          field: p.field,
        }))
      : []
  })
  if (errors.length > 0) {
    throw unprocessable(
      'procore_required_fields_missing',
      `Procore needs these fields to create the ${Registry[type].label}: ` +
        `${errors.map((e) => e.message).join('; ')}. Fill them in the ERP, refresh it, and retry.`,
      errors.map(({ pointer, message }) => ({ pointer, message })),
    )
  }
}

/** `requestCreate` in the caller's transaction. */
export async function requestCreateInTx(
  tx: Tx,
  companyId: string,
  type: RecordType,
  target: Side,
  ids: readonly string[],
  force: boolean,
  actor: Actor,
  codes?: Record<string, string>,
  more: { edits?: Record<string, Fields>; leastPrivilege?: boolean } = {},
): Promise<Run> {
  const unique = [...new Set(ids)]
  const params: Params = {
    type,
    target,
    ids: unique,
    force,
    ...(codes !== undefined && target === 'erp' && Object.keys(codes).length > 0 && { codes }),
    ...(actor.requestId ? { requestId: actor.requestId } : {}),
    ...(more.edits && Object.keys(more.edits).length > 0 ? { edits: more.edits } : {}),
    ...(more.leastPrivilege && target === 'procore' ? { leastPrivilege: true } : {}),
  }
  const run = await createRun(tx, CreateRunKinds[target], companyId, params, actor.id)
  await enqueue(tx, createTask, { companyId, runId: run.id }, { queueName: createLane(companyId, type) })
  return toRun(run)
}

/**
 * The job's work. Throws on transient failures (network, 429, 5xx) so that it is retried; the last
 * attempt reports them per record.
 */
export async function performCreate(ctx: AppContext, run: CreateRun): Promise<RunResult<CreateKind>> {
  const { companyId, params } = run
  const results = new Map<string, CreateItemResult>()
  // Records never attempted say why the run stopped, once it has stopped for good.
  run.onFailure((message, final) => summary(params, results, final ? message : undefined))
  // Entries are written in the name of whoever asked for the run: an API key (with its request id), or auto-import.
  const actor: Actor = { id: run.requestedBy, requestId: params.requestId }
  await createAll(ctx, run, results, actor)
  // Every live, unlinked record this run could not create shows as failed, with the reason, until an action on it
  // succeeds.
  const source = otherSide(params.target)
  const notCreated = [...results.values()].filter((r) => r.status !== 'created')
  if (notCreated.length > 0) {
    const col = source === 'procore' ? 'procore_id' : 'erp_id'
    const open = new Set(
      (
        await ctx.db
          .selectFrom('record_snapshots as s')
          .select('s.external_id')
          .where('s.company_id', '=', companyId)
          .where('s.type', '=', params.type)
          .where('s.side', '=', source)
          .where('s.deleted_at', 'is', null)
          .where(
            's.external_id',
            'in',
            notCreated.map((r) => r.sourceId),
          )
          .where((eb) =>
            eb.not(
              eb.exists(
                eb
                  .selectFrom('record_links as l')
                  .select('l.id')
                  .where('l.company_id', '=', companyId)
                  .where('l.type', '=', params.type)
                  .where('l.unlinked_at', 'is', null)
                  .whereRef(`l.${col}`, '=', 's.external_id'),
              ),
            ),
          )
          .execute()
      ).map((r) => r.external_id),
    )
    await flagFailed(
      ctx.db,
      companyId,
      params.type,
      notCreated
        .filter((r) => open.has(r.sourceId))
        .map((r) => ({ side: source, externalId: r.sourceId, action: 'create', reason: r.reason ?? r.status })),
    )
  }
  return summary(params, results)
}

/** `failure`: why records not attempted were not, once the run failed. */
function summary(params: Params, results: Map<string, CreateItemResult>, failure?: string) {
  const missing = (id: string) => ({ sourceId: id, status: 'failed' as const, reason: failure ?? 'not attempted yet' })
  const items = params.ids.map((id) => results.get(id) ?? missing(id))
  const counts = { created: 0, refused: 0, failed: 0 }
  for (const i of items) counts[i.status] += 1
  return { type: params.type, target: params.target, counts, items }
}

async function createAll(
  ctx: AppContext,
  run: CreateRun,
  results: Map<string, CreateItemResult>,
  actor: Actor,
): Promise<void> {
  const { companyId, params } = run
  const runId = run.id
  const lastAttempt = run.job.lastAttempt
  const { type, target, force } = params
  const source = otherSide(target)
  const def = Registry[type]
  const targetName = target === 'procore' ? 'Procore' : 'the ERP'
  const kind = await companyErpKind(ctx.db, companyId)
  // Connect first: a company without a connection fails the run with the reason, before anything is written.
  const connector =
    target === 'procore' ? { procore: await procoreRecords(ctx, companyId) } : { erp: await erpRecords(ctx, companyId) }

  const snaps = await ctx.db
    .selectFrom('record_snapshots')
    .select(['external_id', 'parent_id', 'fields', 'raw'])
    .where('company_id', '=', companyId)
    .where('type', '=', type)
    .where('side', '=', source)
    .where('deleted_at', 'is', null)
    .where('external_id', 'in', params.ids)
    .execute()
  const snapById = new Map(snaps.map((s) => [s.external_id, s]))
  const sourceCol = source === 'procore' ? 'procore_id' : 'erp_id'
  const links = await ctx.db
    .selectFrom('record_links')
    .select(['id', 'procore_id', 'erp_id'])
    .where('company_id', '=', companyId)
    .where('type', '=', type)
    .where('unlinked_at', 'is', null)
    .where(sourceCol, 'in', params.ids)
    .execute()
  const linkBySource = new Map(links.map((l) => [source === 'procore' ? l.procore_id : l.erp_id, l]))
  const outbox = await ctx.db
    .selectFrom('sync_creates')
    .selectAll()
    .where('company_id', '=', companyId)
    .where('type', '=', type)
    .where('target', '=', target)
    .where('source_id', 'in', params.ids)
    .execute()
  const outboxBySource = new Map(outbox.map((o) => [o.source_id, o]))

  // A record sent to the ERP for acceptance is held: only the run of its accepted request creates it.
  const held =
    source === 'procore' ? await heldRecords(ctx.db, companyId, type, params.ids, params.export?.requestId) : new Map()
  let candidates: string[] = []
  const retired: string[] = []
  for (const id of params.ids) {
    const snap = snapById.get(id)
    const link = linkBySource.get(id)
    const row = outboxBySource.get(id)
    if (held.has(id)) {
      results.set(id, {
        sourceId: id,
        status: 'refused',
        reason:
          `It waits for an accounting approver (export request ${held.get(id)}); ` +
          'it is created when the request is accepted, or retrieve the request first.',
      })
    } else if (!snap) {
      results.set(id, {
        sourceId: id,
        status: 'refused',
        reason:
          `No live ${source === 'procore' ? 'Procore' : 'ERP'} ${def.noun} ${id} is known; ` +
          'check the id or refresh the records and retry.',
      })
    } else if (link) {
      const partner = target === 'procore' ? link.procore_id : link.erp_id
      results.set(
        id,
        row?.status === 'created' && row.target_id === partner
          ? { sourceId: id, status: 'created', targetId: partner, linkId: link.id }
          : {
              sourceId: id,
              status: 'refused',
              reason: `Already linked to ${targetName} ${def.noun} ${partner} (link ${link.id}); nothing to create.`,
            },
      )
    } else {
      // An earlier create whose link has since ended: this is a new create, with a new key.
      if (row?.status === 'created') retired.push(id)
      candidates.push(id)
    }
  }

  // Project cost codes are created in the linked project (or job) of their own.
  const parentOf = new Map<string, string | null>()
  if (def.parent) {
    const parents = [
      ...new Set(candidates.map((id) => snapById.get(id)!.parent_id).filter((p): p is string => p !== null)),
    ]
    const parentLinks =
      parents.length === 0
        ? []
        : await ctx.db
            .selectFrom('record_links')
            .select(['procore_id', 'erp_id'])
            .where('company_id', '=', companyId)
            .where('type', '=', def.parent.type)
            .where('unlinked_at', 'is', null)
            .where(sourceCol, 'in', parents)
            .execute()
    const mapped = new Map(
      parentLinks.map((l) => (source === 'procore' ? [l.procore_id, l.erp_id] : [l.erp_id, l.procore_id])),
    )
    candidates = candidates.filter((id) => {
      const p = snapById.get(id)!.parent_id
      if (p === null) {
        parentOf.set(id, null)
        return true
      }
      const t = mapped.get(p)
      if (t === undefined) {
        results.set(id, {
          sourceId: id,
          status: 'refused',
          reason:
            `Its ${Registry[def.parent!.type].noun} ${p} is not linked yet; ` +
            `link or create it in ${targetName} first.`,
        })
        return false
      }
      parentOf.set(id, t)
      return true
    })
  }

  // The duplicate guard: a strong match on the target side means the record is probably there already.
  const guarded = candidates.filter((id) => outboxBySource.get(id)?.status !== 'pending' || retired.includes(id))
  if (!force && guarded.length > 0) {
    const strong = (
      await scorePairs(ctx.db, companyId, type, {
        sourceSide: source,
        sourceIds: guarded,
        candidates: 'all',
        fuzzy: null,
        perSource: 1,
      })
    ).filter((c) => c.strong)
    const names = await displayNames(
      ctx.db,
      companyId,
      type,
      target,
      strong.map((s) => s.candidateId),
    )
    for (const s of strong) {
      results.set(s.sourceId, {
        sourceId: s.sourceId,
        status: 'refused',
        match: { id: s.candidateId, score: s.score, reasons: s.reasons },
        reason:
          `${targetName === 'Procore' ? 'Procore' : 'The ERP'} already has ${def.noun} ${s.candidateId}` +
          `${names.get(s.candidateId) ? ` "${names.get(s.candidateId)}"` : ''} ` +
          `(${s.reasons.join(', ')}; score ${s.score}). ` +
          `Link it instead (POST /v1/companies/${companyId}/links), or pass force: true to create another.`,
      })
    }
    candidates = candidates.filter((id) => !results.has(id))
  }

  // Settings every record created in Procore gets (a project: ERP-integrated on the company's ERP list).
  const settings = {
    ...(target === 'procore' && def.create.procore.settings
      ? def.create.procore.settings(await refreshLinkFacts(ctx, companyId))
      : {}),
    ...(target === 'procore' && params.leastPrivilege ? (def.create.procore.leastPrivilege ?? {}) : {}),
  }
  // The target's rules, before anything is sent: codes the caller gave, or derived to fit the agent's formats.
  const agent = connector.erp?.limits()
  const taken = target === 'erp' && candidates.length > 0 ? await erpCodesInUse(ctx.db, companyId, type, agent) : null
  const bodies = new Map<string, { body: Record<string, unknown>; fields: Fields }>()
  for (const id of candidates) {
    const fields = {
      ...(snapById.get(id)!.fields as Fields),
      ...(params.export?.fields ?? {}),
      ...(params.edits?.[id] ?? {}),
    }
    const given = params.codes?.[id]
    const codeField = def.codeFields[0]
    const full: Fields =
      target === 'erp'
        ? {
            ...fields,
            ...erpDerived(
              type,
              kind,
              fields,
              agent,
              (field, code) => taken?.has(`${field}:${code.toUpperCase()}`) === true,
            ),
            ...(given !== undefined && codeField !== undefined && { [codeField]: given }),
          }
        : fields
    if (target === 'erp')
      for (const f of def.codeFields) if (typeof full[f] === 'string') taken?.add(`${f}:${full[f].toUpperCase()}`)
    const problems = target === 'erp' ? erpProblems(type, kind, full, 'create', agent) : procoreProblems(type, full)
    if (problems.length > 0) {
      results.set(id, {
        sourceId: id,
        status: 'refused',
        reason: `Not sent to ${targetName}: ${problems.map((p) => p.message).join('; ')}.`,
        messages: problems.map((p) => ({ field: p.field, message: p.message })),
      })
      continue
    }
    bodies.set(id, {
      body: target === 'erp' ? erpBody(type, full, 'create') : { ...procoreBody(type, full, 'create'), ...settings },
      fields: full,
    })
  }
  // Records created in the ERP are then linked to their source: its link prerequisites first.
  if (target === 'erp') {
    const twins = new Map([...bodies].map(([id, b]) => [id, b.fields]))
    for (const [id, why] of await meetPrerequisitesBeforeCreate(ctx, companyId, type, twins)) {
      bodies.delete(id)
      results.set(id, { sourceId: id, status: 'refused', reason: `Not sent to ${targetName}: ${why}` })
    }
  }
  candidates = candidates.filter((id) => bodies.has(id))
  if (candidates.length === 0) return

  // Freeze body and key before the first call (a retried or rerun job reuses them as they are).
  await transaction(ctx.db, async (tx) => {
    if (retired.length > 0) {
      await tx
        .deleteFrom('sync_creates')
        .where('company_id', '=', companyId)
        .where('type', '=', type)
        .where('target', '=', target)
        .where('source_id', 'in', retired)
        .where('status', '=', 'created')
        .execute()
    }
    const generation = (id: string) =>
      retired.includes(id) ? Number(/:(\d+)$/.exec(outboxBySource.get(id)?.idempotency_key ?? '')?.[1] ?? '1') + 1 : 1
    for (let i = 0; i < candidates.length; i += 2000) {
      await tx
        .insertInto('sync_creates')
        .values(
          candidates.slice(i, i + 2000).map((id) => ({
            company_id: companyId,
            type,
            target,
            source_id: id,
            idempotency_key: params.export
              ? `erp-sync:export:${params.export.requestId}:${params.export.attempt}`
              : `erp-sync:create:${companyId}:${type}:${id}:${generation(id)}`,
            body: JSON.stringify(bodies.get(id)!.body),
            parent_id: parentOf.get(id) ?? null,
            status: 'pending' as const,
            target_id: null,
            run_id: runId,
          })),
        )
        .onConflict((oc) => oc.columns(['company_id', 'type', 'target', 'source_id']).doNothing())
        .execute()
    }
  })
  const frozen = await ctx.db
    .selectFrom('sync_creates')
    .selectAll()
    .where('company_id', '=', companyId)
    .where('type', '=', type)
    .where('target', '=', target)
    .where('status', '=', 'pending')
    .where('source_id', 'in', candidates)
    .execute()

  if (connector.procore)
    await createInProcore(ctx, companyId, type, frozen, snapById, results, connector.procore, actor)
  else if (connector.erp) await createInErp(ctx, companyId, type, frozen, results, connector.erp, lastAttempt, actor)
  await run.progress(summary(params, results))
}

/**
 * Codes the ERP already holds for a type (`field:CODE`, upper case), so a code derived to fit the
 * agent's format is a free one; read only when the agent declares a format for the type.
 */
async function erpCodesInUse(
  db: Db,
  companyId: string,
  type: RecordType,
  agent: AgentLimits | undefined,
): Promise<Set<string> | null> {
  const fields = Registry[type].codeFields.filter((f) => erpFormat(type, f, agent) !== undefined)
  if (fields.length === 0) return null
  const rows = await db
    .selectFrom('record_snapshots')
    .select('fields')
    .where('company_id', '=', companyId)
    .where('type', '=', type)
    .where('side', '=', 'erp')
    .execute()
  const inUse = new Set<string>()
  for (const row of rows) {
    const values = row.fields as Fields
    for (const f of fields) {
      const v = values[f]
      if (typeof v === 'string') inUse.add(`${f}:${v.trim().toUpperCase()}`)
    }
  }
  return inUse
}

type Frozen = { source_id: string; idempotency_key: string; body: Record<string, unknown>; parent_id: string | null }
/** A record made on the target side, with the request id the target answered its create with. */
type Created = { sourceId: string; record: LiveRecord; upstreamId?: string | undefined }
type ProcoreSide = Awaited<ReturnType<typeof procoreRecords>>
type ErpSide = Awaited<ReturnType<typeof erpRecords>>

/** Through Procore's batch sync endpoint, keyed by origin_id = the ERP id: ≤ 1,000 records per call. */
async function createInProcore(
  ctx: AppContext,
  companyId: string,
  type: RecordType,
  frozen: Frozen[],
  snaps: Map<string, { fields: unknown; raw: unknown }>,
  results: Map<string, CreateItemResult>,
  procore: ProcoreSide,
  actor: Actor,
) {
  const def = entity(type)
  const groups = new Map<string | null, Frozen[]>()
  for (const f of frozen) {
    const list = groups.get(f.parent_id)
    if (list) list.push(f)
    else groups.set(f.parent_id, [f])
  }
  for (const [parentId, rows] of groups) {
    for (let i = 0; i < rows.length; i += 1000) {
      const chunk = rows.slice(i, i + 1000)
      const items = chunk.map((f) => {
        const code =
          def.procore.hasOriginCode && def.procore.originCodeField
            ? ((snaps.get(f.source_id)?.fields as Fields | undefined)?.[def.procore.originCodeField] ?? null)
            : undefined
        return {
          originId: f.source_id,
          ...(code === undefined ? {} : { originCode: code as string | null }),
          body: f.body,
        }
      })
      const { result: answers, ids } = await collectUpstreamIds(() => procore.upsertByOrigin(type, items, parentId))
      const created: Created[] = []
      const refused: Array<{ sourceId: string; reason: string }> = []
      answers.forEach((a, j) => {
        const sourceId = chunk[j]!.source_id
        if (a.ok) created.push({ sourceId, record: mapRecord(type, 'procore', a.record), upstreamId: ids.procore })
        else refused.push({ sourceId, reason: `Procore refused it: ${a.error}` })
      })
      await settle(ctx, companyId, type, 'procore', created, refused, results, actor)
    }
  }
}

/** One ERP create per record (the protocol has no batch), a few at a time, each with its frozen Idempotency-Key. */
async function createInErp(
  ctx: AppContext,
  companyId: string,
  type: RecordType,
  frozen: Frozen[],
  results: Map<string, CreateItemResult>,
  erp: ErpSide,
  lastAttempt: boolean,
  actor: Actor,
) {
  let transient: Error | undefined
  const queue = [...frozen]
  const created: Created[] = []
  const refused: Array<{
    sourceId: string
    reason: string
    free: boolean
    status: 'refused' | 'failed'
    messages?: Array<{ field: string; message: string }>
  }> = []
  const worker = async () => {
    for (let f = queue.shift(); f; f = queue.shift()) {
      try {
        const { result: record, ids } = await collectUpstreamIds(() =>
          erp.create(type, f.body, f.idempotency_key, f.parent_id),
        )
        created.push({ sourceId: f.source_id, record: mapRecord(type, 'erp', record), upstreamId: ids.erp })
      } catch (error) {
        if (error instanceof ErpRefusedError) {
          refused.push({
            sourceId: f.source_id,
            free: true,
            status: 'refused',
            messages: error.fieldErrors,
            reason: error.existingId
              ? `The ERP already has this ${entity(type).noun}: ${error.existingId} (${error.erpDetail}). ` +
                `Link it instead (POST /v1/companies/${companyId}/links).`
              : `The ERP refused it: ${error.erpDetail}` +
                `${error.fieldErrors.length > 0 ? ` (${error.fieldErrors.map((e) => e.message).join('; ')})` : ''}. ` +
                'Correct it in Procore and retry.',
          })
        } else if (isRetryable(error)) {
          transient ??= error instanceof Error ? error : new Error(failureMessage(error))
          if (lastAttempt)
            refused.push({ sourceId: f.source_id, free: false, status: 'failed', reason: failureMessage(error) })
        } else {
          refused.push({ sourceId: f.source_id, free: false, status: 'failed', reason: failureMessage(error) })
        }
      }
      // Settle as we go: a crash loses at most the records in flight, and those replay by key.
      if (created.length >= 50) await settle(ctx, companyId, type, 'erp', created.splice(0), [], results, actor)
    }
  }
  await Promise.all(Array.from({ length: 4 }, worker))
  // A refused create binds no key (protocol): forget the frozen body so a corrected record can be sent.
  const free = refused.filter((r) => r.free).map((r) => r.sourceId)
  if (free.length > 0)
    await ctx.db
      .deleteFrom('sync_creates')
      .where('company_id', '=', companyId)
      .where('type', '=', type)
      .where('target', '=', 'erp')
      .where('source_id', 'in', free)
      .where('status', '=', 'pending')
      .execute()
  await settle(ctx, companyId, type, 'erp', created, refused, results, actor)
  // The new ERP ids go into Procore's origin fields (the origins job retries what fails here).
  const linked = [...results.values()].filter((r) => r.status === 'created').map((r) => r.sourceId)
  if (linked.length > 0)
    await processOrigins(ctx, companyId, type, linked).catch((error: unknown) =>
      ctx.log.warn({ component: 'sync', err: { message: failureMessage(error) } }, 'origin writes deferred to the job'),
    )
  const sent = new Set(frozen.map((f) => f.source_id))
  await backfill(
    ctx,
    companyId,
    type,
    [...results.values()].filter((r) => r.status === 'created' && sent.has(r.sourceId)),
  )
  if (transient && !lastAttempt) throw transient
}

/**
 * Values the ERP assigned on create (an employee number, a code) that the Procore record left
 * empty are written back to Procore, so the new pair starts in sync instead of as a discrepancy.
 * The origin_code field is left to the origin write. Failures leave a discrepancy, nothing worse.
 */
async function backfill(ctx: AppContext, companyId: string, type: RecordType, created: readonly CreateItemResult[]) {
  if (created.length === 0) return
  const snaps = await ctx.db
    .selectFrom('record_snapshots')
    .select(['side', 'external_id', 'fields', 'parent_id'])
    .where('company_id', '=', companyId)
    .where('type', '=', type)
    .where((eb) =>
      eb.or([
        eb.and([
          eb('side', '=', 'procore'),
          eb(
            'external_id',
            'in',
            created.map((c) => c.sourceId),
          ),
        ]),
        eb.and([
          eb('side', '=', 'erp'),
          eb(
            'external_id',
            'in',
            created.map((c) => c.targetId!),
          ),
        ]),
      ]),
    )
    .execute()
  const snap = new Map(snaps.map((s) => [`${s.side}:${s.external_id}`, s]))
  // Per Procore container, the partial updates to send: one batch call each, not one call per record.
  const fills = new Map<string | null, Array<{ id: string; originId: null; body: Record<string, unknown> }>>()
  for (const c of created) {
    const p = snap.get(`procore:${c.sourceId}`)
    const e = snap.get(`erp:${c.targetId!}`)
    if (!p || !e) continue
    const fill: Fields = {}
    for (const field of comparedFields(type)) {
      const pv = (p.fields as Fields)[field] ?? null
      const ev = (e.fields as Fields)[field] ?? null
      if ((pv === null || pv === '') && ev !== null && ev !== '') fill[field] = ev
    }
    if (Object.keys(fill).length === 0) continue
    const batch = fills.get(p.parent_id) ?? []
    batch.push({ id: c.sourceId, originId: null, body: procoreBody(type, fill, 'update') })
    fills.set(p.parent_id, batch)
  }
  if (fills.size === 0) return
  const procore = await procoreRecords(ctx, companyId)
  const written: LiveRecord[] = []
  const warn = (procoreId: string | undefined, message: string) =>
    ctx.log.warn(
      { component: 'sync', type, procoreId, err: { message } },
      'could not write ERP-assigned values back to Procore',
    )
  for (const [parentId, items] of fills) {
    try {
      const results = await procore.upsertByOrigin(type, items, parentId)
      results.forEach((r, i) =>
        r.ok ? written.push(mapRecord(type, 'procore', r.record)) : warn(items[i]?.id, r.error),
      )
    } catch (error) {
      warn(undefined, failureMessage(error))
    }
  }
  if (written.length > 0) await upsertSnapshots(ctx.db, companyId, 'procore', type, written)
}

/**
 * Stores what was created and links it, in one transaction per batch: snapshot, outbox row,
 * link, audit, flags. A record that got linked meanwhile (auto-link saw it first) counts as
 * created when the link pairs the same two records.
 */
async function settle(
  ctx: AppContext,
  companyId: string,
  type: RecordType,
  target: Side,
  created: readonly Created[],
  refused: ReadonlyArray<{
    sourceId: string
    reason: string
    status?: 'refused' | 'failed'
    messages?: Array<{ field: string; message: string }>
  }>,
  results: Map<string, CreateItemResult>,
  actor: Actor,
) {
  const source = otherSide(target)
  await transaction(ctx.db, async (tx) => {
    if (created.length > 0) {
      await upsertSnapshotsInTx(
        tx,
        companyId,
        target,
        type,
        created.map((c) => c.record),
      )
      const pairs = created.map((c) =>
        target === 'procore'
          ? { procoreId: c.record.externalId, erpId: c.sourceId, detail: 'created in Procore', originSet: true }
          : { procoreId: c.sourceId, erpId: c.record.externalId, detail: 'created in the ERP' },
      )
      const { inserted, refused: unlinkable } = await insertLinks(tx, companyId, type, pairs, actor)
      const unmetOf = new Map(unlinkable.map((r) => [target === 'procore' ? r.erpId : r.procoreId, r.unmet]))
      const existing = await tx
        .selectFrom('record_links')
        .select(['id', 'procore_id', 'erp_id'])
        .where('company_id', '=', companyId)
        .where('type', '=', type)
        .where('unlinked_at', 'is', null)
        .where(
          'procore_id',
          'in',
          pairs.map((p) => p.procoreId),
        )
        .execute()
      const linkOf = new Map(existing.map((l) => [`${l.procore_id}|${l.erp_id}`, l.id]))
      for (const c of created) {
        const key =
          target === 'procore' ? `${c.record.externalId}|${c.sourceId}` : `${c.sourceId}|${c.record.externalId}`
        const linkId = linkOf.get(key)
        const unmet = unmetOf.get(c.sourceId)
        results.set(
          c.sourceId,
          linkId
            ? { sourceId: c.sourceId, status: 'created', targetId: c.record.externalId, linkId }
            : unmet
              ? {
                  sourceId: c.sourceId,
                  status: 'failed',
                  targetId: c.record.externalId,
                  reason:
                    `Created as ${c.record.externalId}, but not linked: ${unmet.map((u) => u.detail).join(' ')} ` +
                    'Meet these and link them (POST …/links, fix: true meets the fixable ones).',
                }
              : {
                  sourceId: c.sourceId,
                  status: 'failed',
                  targetId: c.record.externalId,
                  reason:
                    `Created as ${c.record.externalId}, but one of the two records got linked elsewhere meanwhile; ` +
                    'link them by hand.',
                },
        )
      }
      await sql`update sync_creates s set status = 'created', target_id = v.target_id, updated_at = now()
        from (values ${sql.join(created.map((c) => sql`(${c.sourceId}::text, ${c.record.externalId}::text)`))})
          as v(source_id, target_id)
        where s.company_id = ${companyId} and s.type = ${type} and s.target = ${target}
          and s.source_id = v.source_id`.execute(tx)
      await audit(
        tx,
        companyId,
        actor,
        created.map((c) => ({
          action: 'create' as const,
          type,
          [target === 'procore' ? 'procoreId' : 'erpId']: c.record.externalId,
          [source === 'procore' ? 'procoreId' : 'erpId']: c.sourceId,
          linkId:
            linkOf.get(
              target === 'procore' ? `${c.record.externalId}|${c.sourceId}` : `${c.sourceId}|${c.record.externalId}`,
            ) ?? null,
          before: null,
          after: { side: target, id: c.record.externalId, fields: c.record.fields },
          detail: `created from ${source === 'procore' ? 'Procore' : 'ERP'} ${c.sourceId}`,
          upstream: { [target]: c.upstreamId },
        })),
      )
      await clearFailed(
        tx,
        companyId,
        type,
        created.map((c) => ({ side: source, externalId: c.sourceId })),
        'create',
      )
      await evaluateLinks(
        tx,
        companyId,
        type,
        inserted.map((l) => l.id),
        actor,
      )
    }
    for (const r of refused)
      results.set(r.sourceId, {
        sourceId: r.sourceId,
        status: r.status ?? 'refused',
        reason: r.reason,
        ...(r.messages && r.messages.length > 0 ? { messages: r.messages } : {}),
      })
    await flagFailed(
      tx,
      companyId,
      type,
      refused.map((r) => ({ side: source, externalId: r.sourceId, action: 'create', reason: r.reason })),
    )
  })
}

async function displayNames(
  db: Db,
  companyId: string,
  type: RecordType,
  side: Side,
  ids: string[],
): Promise<Map<string, string>> {
  if (ids.length === 0) return new Map()
  const field = Registry[type].displayField
  const rows = await db
    .selectFrom('record_snapshots')
    .select(['external_id', 'fields'])
    .where('company_id', '=', companyId)
    .where('type', '=', type)
    .where('side', '=', side)
    .where('external_id', 'in', ids)
    .execute()
  return new Map(rows.map((r) => [r.external_id, String((r.fields as Fields)[field] ?? '')]))
}
