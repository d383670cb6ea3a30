import { sql } from 'kysely'
import { Type } from 'typebox'
import type { AppContext } from '../context.js'
import { transaction, type Db, type Tx } from '../db/database.js'
import type { Side } from '../db/tables/records.js'
import { OnboardingSteps, type OnboardingStep } from '../db/tables/onboarding.js'
import { AppError, badRequest, conflict, unprocessable, type FieldError } from '../errors.js'
import { enqueue } from '../jobs/queue.js'
import { createRun, defineRunKinds, RunPayload, runJob, type JobRun, type RunResult } from '../jobs/runs.js'
import { defineTask } from '../jobs/task.js'
import { emit } from '../notify/webhooks.js'
import type { Actor } from '../sync/audit.js'
import { linkUnambiguous } from '../sync/bulk.js'
import { createLane, CreateRunKinds, performCreate } from '../sync/create.js'
import { failureMessage } from '../sync/connectors.js'
import { createLink } from '../sync/links.js'
import { otherSide, procoreProblems, Registry, type Fields, type RecordType } from '../sync/registry.js'
import { toRun, type Run } from '../sync/runs.js'
import { getSettings, putSettings, type Direction } from '../sync/settings.js'
import { chooseProcoreCompany, procoreAccount } from '../sync/sides.js'
import { scorePairs } from '../sync/suggestions.js'

/**
 * The five-step set-up of a company, built on the sync mechanisms: (1) the Procore company and its
 * standard cost code list, (2) users, (3) projects, (4) cost codes — each linked where a twin exists
 * and created on the target side where not (auto: strong matches link, the rest is created;
 * manual: the caller's decision per record) — and (5) the sync direction per type. Import steps
 * run as runs; a step asked again does again what is left (links are never made twice, creates
 * replay their frozen requests), so a step cut short by a crash or a closed browser resumes by
 * being asked again.
 */

export { OnboardingSteps, type OnboardingStep }
export const StepStatuses = ['todo', 'in_progress', 'done', 'skipped'] as const
export type StepStatus = (typeof StepStatuses)[number]
export const ImportModes = ['auto', 'manual'] as const

/** The record type each import step brings in. */
export const ImportSteps = { users: 'user', projects: 'project', cost_codes: 'cost_code' } as const
type ImportStep = keyof typeof ImportSteps
const isImportStep = (step: OnboardingStep): step is ImportStep => step in ImportSteps
/** The types whose direction the settings step sets. */
export const SettingsTypes = ['user', 'project', 'cost_code'] as const

/** Auto import links only pairs this sure and sharing a strong key (an e-mail, a number, a code). */
const AUTO_MIN_SCORE = 0.9

const Decision = Type.Object({
  id: Type.String(),
  action: Type.Enum(['link', 'create', 'skip']),
  to: Type.Optional(Type.String()),
  fields: Type.Optional(Type.Record(Type.String(), Type.Union([Type.String(), Type.Boolean(), Type.Null()]))),
})
export type Decision = {
  id: string
  action: 'link' | 'create' | 'skip'
  to?: string | undefined
  fields?: Fields | undefined
}

const StepItem = Type.Object({
  id: Type.String({ description: 'The source record (on the side records are imported from).' }),
  status: Type.Enum(['linked', 'created', 'skipped', 'refused', 'failed', 'ambiguous']),
  targetId: Type.Optional(Type.String()),
  linkId: Type.Optional(Type.String()),
  reason: Type.Optional(Type.String()),
})
type StepItem = {
  id: string
  status: 'linked' | 'created' | 'skipped' | 'refused' | 'failed' | 'ambiguous'
  targetId?: string
  linkId?: string
  reason?: string
}
const Count = Type.Integer({ minimum: 0 })

export const OnboardingRunKinds = defineRunKinds(
  {
    onboarding_step: {
      params: Type.Object({
        step: Type.Enum(['users', 'projects', 'cost_codes']),
        type: Type.Enum(['user', 'project', 'cost_code']),
        target: Type.Enum(['procore', 'erp']),
        mode: Type.Enum([...ImportModes]),
        decisions: Type.Optional(Type.Array(Decision)),
        requestId: Type.Optional(Type.String()),
      }),
      result: Type.Object({
        step: Type.String(),
        mode: Type.String(),
        /** Phases done: linking, then creating. */
        progress: Type.Object({ done: Count, total: Count }),
        counts: Type.Object({
          linked: Count,
          created: Count,
          skipped: Count,
          refused: Count,
          failed: Count,
          ambiguous: Count,
        }),
        items: Type.Array(StepItem),
      }),
    },
  },
  {
    describe: failureMessage,
    failed: (tx, run, error) =>
      emit(tx, run.company_id, 'run.failed', { runId: run.id, kind: run.kind, syncType: run.sync_type, error }),
  },
)
const StepKind = OnboardingRunKinds.onboarding_step
type StepRun = JobRun<typeof StepKind>
type StepResult = RunResult<typeof StepKind>

/** Performs an import step's run, on the lane of the type's creates and bulk links (never two at once). */
export const onboardingStepTask = defineTask({
  name: 'onboarding:step',
  payload: RunPayload,
  maxAttempts: 3,
  run: (ctx, { runId }, job) => runJob(ctx, StepKind, runId, job, (run) => performStep(ctx, run)),
})

// ---- the state --------------------------------------------------------------------------------

export interface TypeCounts {
  inProcore: number
  inErp: number
  linked: number
  toCreate: number
  toReview: number
}

export interface StepView {
  step: OnboardingStep
  position: number
  status: StepStatus
  /** What was asked the last time (the options of the step). */
  options: Record<string, unknown> | null
  counts: TypeCounts | null
  run: Run | null
  result: Record<string, unknown> | null
  /** Why this step cannot run yet, or null. */
  blockedBy: string | null
  updatedAt: string | null
}

export interface OnboardingView {
  companyId: string
  steps: StepView[]
  /** The first step neither done nor skipped, with what to do; null once every step is. */
  next: { step: OnboardingStep; action: string } | null
  complete: boolean
}

const stepPath = (companyId: string, step: OnboardingStep) => `/v1/companies/${companyId}/onboarding/steps/${step}`

/** Live, top-level (records inside a parent follow it) records per side, links, and what is left on each side. */
async function typeCounts(db: Db, companyId: string, type: RecordType, target: Side): Promise<TypeCounts> {
  const top = Registry[type].parent ? sql`and s.parent_id is null` : sql``
  const { rows } = await sql<{ side: Side; total: number; linked: number }>`
    select s.side, count(*)::int as total,
      count(*) filter (where exists (select 1 from record_links l where l.company_id = s.company_id
        and l.type = s.type and l.unlinked_at is null
        and (case when s.side = 'procore' then l.procore_id else l.erp_id end) = s.external_id))::int as linked
    from record_snapshots s
    where s.company_id = ${companyId} and s.type = ${type} and s.deleted_at is null ${top}
      and not exists (select 1 from record_flags f where f.company_id = s.company_id and f.type = s.type
        and f.side = s.side and f.external_id = s.external_id and f.ignored_at is not null)
    group by s.side`.execute(db)
  const of = (side: Side) => rows.find((r) => r.side === side) ?? { total: 0, linked: 0 }
  const p = of('procore')
  const e = of('erp')
  const source = of(otherSide(target))
  const dest = of(target)
  return {
    inProcore: p.total,
    inErp: e.total,
    linked: Math.min(p.linked, e.linked),
    toCreate: source.total - source.linked,
    toReview: dest.total - dest.linked,
  }
}

/** Where the company's set-up stands: every step with its state, counts, last run and what blocks it. */
export async function getOnboarding(ctx: AppContext, companyId: string): Promise<OnboardingView> {
  const rows = await ctx.db.selectFrom('onboarding_steps').selectAll().where('company_id', '=', companyId).execute()
  const runIds = rows.map((r) => r.run_id).filter((id): id is string => id !== null)
  const runs =
    runIds.length === 0
      ? []
      : await ctx.db
          .selectFrom('sync_runs')
          .selectAll()
          .where('company_id', '=', companyId)
          .where('id', 'in', runIds)
          .execute()
  const runOf = new Map(runs.map((r) => [r.id, r]))
  const connection = await ctx.db
    .selectFrom('procore_connections')
    .select('status')
    .where('company_id', '=', companyId)
    .executeTakeFirst()

  const steps: StepView[] = []
  for (const [i, step] of OnboardingSteps.entries()) {
    const row = rows.find((r) => r.step === step)
    const runRow = row?.run_id ? runOf.get(row.run_id) : undefined
    let status: StepStatus = row ? row.status : 'todo'
    if (row && runRow) {
      // A run that stopped (failed, interrupted, cancelled) leaves the step in progress: asking again resumes it.
      status = runRow.status === 'succeeded' ? 'done' : 'in_progress'
    }
    const target = (row?.options as { target?: Side } | undefined)?.target ?? 'procore'
    const counts = isImportStep(step) ? await typeCounts(ctx.db, companyId, ImportSteps[step], target) : null
    const earlier = steps.find((s) => s.status !== 'done' && s.status !== 'skipped')
    let blockedBy: string | null = null
    if (connection?.status !== 'connected')
      blockedBy = `Procore is not connected: POST /v1/companies/${companyId}/procore/connect first.`
    else if (earlier) blockedBy = `Step ${earlier.position} (${earlier.step}) is ${earlier.status.replace('_', ' ')}.`
    else if (runRow && runRow.status !== 'succeeded' && runRow.status !== 'queued' && runRow.status !== 'running')
      blockedBy =
        `Its last run ${runRow.id} ended ${runRow.status}${runRow.error ? ` (${runRow.error})` : ''}; ` +
        `POST ${stepPath(companyId, step)} again to resume it.`
    steps.push({
      step,
      position: i + 1,
      status,
      options: row?.options ?? null,
      counts,
      run: runRow ? toRun(runRow) : null,
      result: runRow ? (runRow.result ?? null) : (row?.result ?? null),
      blockedBy,
      updatedAt: row?.updated_at.toISOString() ?? null,
    })
  }
  const first = steps.find((s) => s.status !== 'done' && s.status !== 'skipped')
  return {
    companyId,
    steps,
    next: first
      ? {
          step: first.step,
          action:
            first.status === 'in_progress' && first.run && ['queued', 'running'].includes(first.run.status)
              ? `Wait for run ${first.run.id} (GET /v1/companies/${companyId}/runs/${first.run.id}).`
              : `POST ${stepPath(companyId, first.step)}` +
                `${first.step === 'company' ? ' (options: GET …/steps/company/options)' : ''}.`,
        }
      : null,
    complete: !first,
  }
}

/** The Procore companies the connection can see and the standard cost code lists of one (the chosen one by default). */
export async function companyOptions(ctx: AppContext, companyId: string, procoreCompanyId?: string) {
  const account = await procoreAccount(ctx, companyId)
  const [companies, chosen] = await Promise.all([account.companies(), account.choice()])
  const of = procoreCompanyId ?? chosen.procoreCompanyId
  if (!companies.some((c) => c.id === of))
    throw unprocessable(
      'procore_company_not_visible',
      `The Procore connection cannot see company ${of}; it sees ` +
        `${companies.map((c) => `${c.id} (${c.name ?? ''})`).join(', ')}.`,
      [{ pointer: '/query/procoreCompanyId', message: `choose one of ${companies.map((c) => c.id).join(', ')}` }],
    )
  const lists = await account.costCodeLists(of)
  return {
    companies,
    procoreCompanyId: of,
    costCodeLists: lists,
    chosen: { procoreCompanyId: chosen.procoreCompanyId, costCodeListId: chosen.costCodeListId },
  }
}

// ---- performing a step ------------------------------------------------------------------------

export interface StepInput {
  skip?: boolean | undefined
  procoreCompanyId?: string | undefined
  costCodeListId?: string | undefined
  mode?: 'auto' | 'manual' | undefined
  target?: Side | undefined
  decisions?: Decision[] | undefined
  directions?: Partial<Record<(typeof SettingsTypes)[number], Direction>> | undefined
}

/** The step as GET shows it, plus the run started (import steps). */
export async function performOnboardingStep(
  ctx: AppContext,
  companyId: string,
  step: OnboardingStep,
  input: StepInput,
  actor: Actor,
): Promise<{ step: StepView; run: Run | null }> {
  const state = await getOnboarding(ctx, companyId)
  const current = state.steps.find((s) => s.step === step)!
  if (current.blockedBy?.startsWith('Procore is not connected'))
    throw conflict('procore_not_connected', current.blockedBy)
  const before = state.steps.filter(
    (s) => s.position < current.position && s.status !== 'done' && s.status !== 'skipped',
  )
  if (before.length > 0 && !input.skip) {
    throw conflict(
      'onboarding_step_out_of_order',
      'Steps run in order: ' +
        `${before.map((s) => `${s.position} (${s.step}) is ${s.status.replace('_', ' ')}`).join(', ')}. ` +
        `Finish or skip ${before.length === 1 ? 'it' : 'them'} first (POST ${stepPath(companyId, before[0]!.step)}).`,
      { steps: before.map((s) => s.step) },
    )
  }
  if (current.run && (current.run.status === 'queued' || current.run.status === 'running'))
    throw conflict(
      'onboarding_step_running',
      `Step ${step} is running (run ${current.run.id}); ` +
        `wait for it (GET /v1/companies/${companyId}/runs/${current.run.id}).`,
      { runId: current.run.id },
    )
  checkOptions(step, input)

  if (input.skip) {
    await saveStep(
      ctx.db,
      companyId,
      step,
      { status: 'skipped', options: { skip: true }, runId: null, result: null },
      actor,
    )
    return { step: await viewOf(ctx, companyId, step), run: null }
  }
  if (step === 'company') {
    const options = await companyOptions(ctx, companyId, input.procoreCompanyId)
    const list = options.costCodeLists.find((l) => l.id === input.costCodeListId)
    if (!list)
      throw unprocessable(
        'cost_code_list_not_found',
        `Procore company ${options.procoreCompanyId} has no standard cost code list ${input.costCodeListId}; ` +
          `its lists: ${options.costCodeLists.map((l) => `${l.id} (${l.name ?? ''})`).join(', ') || 'none'}.`,
        [
          {
            pointer: '/body/costCodeListId',
            message: `choose one of ${options.costCodeLists.map((l) => l.id).join(', ')}`,
          },
        ],
      )
    await chooseProcoreCompany(ctx, companyId, { procoreCompanyId: options.procoreCompanyId, costCodeListId: list.id })
    const company = options.companies.find((c) => c.id === options.procoreCompanyId)!
    await saveStep(
      ctx.db,
      companyId,
      step,
      {
        status: 'done',
        options: { procoreCompanyId: options.procoreCompanyId, costCodeListId: list.id },
        runId: null,
        result: { procoreCompany: company, costCodeList: list },
      },
      actor,
    )
    return { step: await viewOf(ctx, companyId, step), run: null }
  }
  if (step === 'settings') {
    const { settings, etag } = await getSettings(ctx.db, companyId)
    const changes = Object.fromEntries(
      Object.entries(input.directions ?? {}).map(([type, direction]) => {
        const s = settings[type as RecordType]
        return [type, { ...s, direction }]
      }),
    )
    const saved = await putSettings(ctx.db, companyId, Number(etag.replace(/\D/g, '')), changes, actor)
    await saveStep(
      ctx.db,
      companyId,
      step,
      {
        status: 'done',
        options: { directions: input.directions ?? {} },
        runId: null,
        result: {
          directions: Object.fromEntries(SettingsTypes.map((t) => [t, saved.settings[t].direction])),
          note: 'Syncing works for linked records only; unlinking a record stops its syncing.',
        },
      },
      actor,
    )
    return { step: await viewOf(ctx, companyId, step), run: null }
  }

  // An import step: checked now, performed by a run.
  const type = ImportSteps[step]
  const target: Side = input.target ?? 'procore'
  const mode = input.mode!
  await checkImport(ctx.db, companyId, step, type, target, mode, input.decisions ?? [])
  const run = await transaction(ctx.db, async (tx) => {
    const params = {
      step: step,
      type,
      target,
      mode,
      ...(mode === 'manual'
        ? {
            decisions: (input.decisions ?? []).map((d) => ({
              id: d.id,
              action: d.action,
              ...(d.to === undefined ? {} : { to: d.to }),
              ...(d.fields === undefined ? {} : { fields: d.fields }),
            })),
          }
        : {}),
      ...(actor.requestId ? { requestId: actor.requestId } : {}),
    }
    const row = await createRun(tx, StepKind, companyId, params, actor.id, { syncType: type })
    await enqueue(tx, onboardingStepTask, { companyId, runId: row.id }, { queueName: createLane(companyId, type) })
    await saveStep(
      tx,
      companyId,
      step,
      {
        status: 'in_progress',
        options: { mode, target, ...(params.decisions ? { decisions: params.decisions } : {}) },
        runId: row.id,
        result: null,
      },
      actor,
    )
    return toRun(row)
  })
  return { step: await viewOf(ctx, companyId, step), run }
}

async function viewOf(ctx: AppContext, companyId: string, step: OnboardingStep): Promise<StepView> {
  return (await getOnboarding(ctx, companyId)).steps.find((s) => s.step === step)!
}

async function saveStep(
  db: Db | Tx,
  companyId: string,
  step: OnboardingStep,
  v: {
    status: 'in_progress' | 'done' | 'skipped'
    options: Record<string, unknown>
    runId: string | null
    result: Record<string, unknown> | null
  },
  actor: Actor,
): Promise<void> {
  const values = {
    status: v.status,
    options: JSON.stringify(v.options),
    run_id: v.runId,
    result: v.result === null ? null : JSON.stringify(v.result),
    updated_by: actor.id,
    updated_at: new Date(),
  }
  await db
    .insertInto('onboarding_steps')
    .values({ company_id: companyId, step, ...values })
    .onConflict((oc) => oc.columns(['company_id', 'step']).doUpdateSet(values))
    .execute()
}

/** Which options each step takes: the rest is refused, naming the field. */
function checkOptions(step: OnboardingStep, input: StepInput): void {
  const errors: FieldError[] = []
  const given = (Object.keys(input) as Array<keyof StepInput>).filter((k) => input[k] !== undefined)
  const allowed: Record<OnboardingStep, Array<keyof StepInput>> = {
    company: ['procoreCompanyId', 'costCodeListId'],
    users: ['mode', 'target', 'decisions'],
    projects: ['mode', 'target', 'decisions'],
    cost_codes: ['mode', 'target', 'decisions'],
    settings: ['directions'],
  }
  if (input.skip) {
    for (const k of given)
      if (k !== 'skip') errors.push({ pointer: `/body/${k}`, message: 'not taken with skip: true' })
  } else {
    for (const k of given)
      if (k !== 'skip' && !allowed[step].includes(k))
        errors.push({
          pointer: `/body/${k}`,
          message: `not an option of step ${step}; it takes ${allowed[step].join(', ')}`,
        })
    if (step === 'company' && !input.costCodeListId)
      errors.push({
        pointer: '/body/costCodeListId',
        message: 'required: one of GET …/steps/company/options costCodeLists',
      })
    if (isImportStep(step)) {
      if (!input.mode) errors.push({ pointer: '/body/mode', message: 'required: auto or manual' })
      if (input.mode === 'manual' && !input.decisions?.length)
        errors.push({ pointer: '/body/decisions', message: 'manual mode takes at least one decision' })
      if (input.mode === 'auto' && input.decisions)
        errors.push({ pointer: '/body/decisions', message: 'auto mode decides by itself; use mode manual to decide' })
    }
    if (step === 'settings' && Object.keys(input.directions ?? {}).length === 0)
      errors.push({
        pointer: '/body/directions',
        message: `required: a direction for one or more of ${SettingsTypes.join(', ')}`,
      })
  }
  if (errors.length > 0)
    throw badRequest(
      'invalid_onboarding_step',
      `These options do not fit step ${step}: ${errors.map((e) => `${e.pointer}: ${e.message}`).join('; ')}.`,
      errors,
    )
}

/**
 * Before a run starts: manual decisions name live records and known fields; projects created in
 * Procore carry the address fields Procore needs (a refusal names every project and field missing).
 */
async function checkImport(
  db: Db,
  companyId: string,
  step: ImportStep,
  type: RecordType,
  target: Side,
  mode: 'auto' | 'manual',
  decisions: readonly Decision[],
): Promise<void> {
  const source = otherSide(target)
  const def = Registry[type]
  const errors: FieldError[] = []
  const live = async (side: Side, ids: readonly string[]) =>
    ids.length === 0
      ? new Map<string, Fields>()
      : new Map(
          (
            await db
              .selectFrom('record_snapshots')
              .select(['external_id', 'fields'])
              .where('company_id', '=', companyId)
              .where('type', '=', type)
              .where('side', '=', side)
              .where('deleted_at', 'is', null)
              .where('external_id', 'in', [...ids])
              .execute()
          ).map((r) => [r.external_id, r.fields as Fields]),
        )
  const sideName = (side: Side) => (side === 'procore' ? 'Procore' : 'ERP')

  let toCreate: Array<{ id: string; fields: Fields; pointer: string }> = []
  if (mode === 'manual') {
    const sources = await live(
      source,
      decisions.map((d) => d.id),
    )
    const targets = await live(
      target,
      decisions.flatMap((d) => (d.action === 'link' && d.to ? [d.to] : [])),
    )
    const seen = new Set<string>()
    decisions.forEach((d, i) => {
      const at = `/body/decisions/${i}`
      if (seen.has(d.id)) errors.push({ pointer: `${at}/id`, message: `${d.id} is decided twice` })
      seen.add(d.id)
      if (!sources.has(d.id))
        errors.push({ pointer: `${at}/id`, message: `no live ${sideName(source)} ${def.noun} ${d.id} is known` })
      if (d.action === 'link') {
        if (!d.to)
          errors.push({ pointer: `${at}/to`, message: `required with action link: the ${sideName(target)} id` })
        else if (!targets.has(d.to))
          errors.push({ pointer: `${at}/to`, message: `no live ${sideName(target)} ${def.noun} ${d.to} is known` })
      } else if (d.to !== undefined) errors.push({ pointer: `${at}/to`, message: `only taken with action link` })
      if (d.action !== 'create' && d.fields !== undefined)
        errors.push({ pointer: `${at}/fields`, message: 'only taken with action create' })
      for (const f of Object.keys(d.fields ?? {}))
        if (!(f in def.fields))
          errors.push({
            pointer: `${at}/fields/${f}`,
            message: `${f} is not a field of ${def.label}; fields: ${Object.keys(def.fields).join(', ')}`,
          })
      if (d.action === 'create' && sources.has(d.id))
        toCreate.push({ id: d.id, fields: { ...sources.get(d.id)!, ...(d.fields ?? {}) }, pointer: at })
    })
    if (errors.length > 0)
      throw badRequest(
        'invalid_onboarding_decisions',
        `These decisions cannot be carried out: ${errors.map((e) => `${e.pointer}: ${e.message}`).join('; ')}.`,
        errors,
      )
  } else if (target === 'procore' && def.create.procore.required.length > 0) {
    // Auto: the records that will be created are those no strong match links.
    const top = def.parent ? sql`and s.parent_id is null` : sql``
    const { rows } = await sql<{ external_id: string; fields: Fields }>`
      select s.external_id, s.fields from record_snapshots s
      where s.company_id = ${companyId} and s.type = ${type} and s.side = ${source} and s.deleted_at is null ${top}
        and not exists (select 1 from record_links l where l.company_id = s.company_id and l.type = s.type
          and l.unlinked_at is null and l.erp_id = s.external_id)
        and not exists (select 1 from record_flags f where f.company_id = s.company_id and f.type = s.type
          and f.side = s.side and f.external_id = s.external_id and f.ignored_at is not null)
      order by s.external_id`.execute(db)
    const lacking = rows.filter((r) => procoreProblems(type, r.fields).length > 0)
    const strong = new Set(
      (
        await scorePairs(db, companyId, type, {
          sourceSide: source,
          sourceIds: lacking.map((r) => r.external_id),
          candidates: 'unlinked',
          fuzzy: null,
          perSource: 1,
        })
      )
        .filter((c) => c.strong)
        .map((c) => c.sourceId),
    )
    toCreate = lacking
      .filter((r) => !strong.has(r.external_id))
      .map((r) => ({ id: r.external_id, fields: r.fields, pointer: `/erp/${type}/${r.external_id}` }))
  }
  if (target !== 'procore') return
  const missing = toCreate.flatMap((r) =>
    procoreProblems(type, r.fields).map((p) => ({
      pointer: mode === 'manual' ? `${r.pointer}/fields/${p.field}` : r.pointer,
      message:
        `ERP ${def.noun} ${r.id}` +
        `${r.fields[def.displayField] ? ` (${String(r.fields[def.displayField])})` : ''}: ${p.message}`,
    })),
  )
  if (missing.length > 0) {
    throw unprocessable(
      'procore_required_fields_missing',
      `Procore needs these fields to create the ${def.label}: ${missing.map((m) => m.message).join('; ')}. ` +
        (mode === 'manual'
          ? 'Give them in the decision’s fields, or skip the record.'
          : 'Fill them in the ERP and refresh it, ' +
            `or import step ${step} in manual mode (give them per record, or skip).`),
      missing,
    )
  }
}

/** The job's work: link (strong matches, or the caller's links), then create the rest on the target side. */
async function performStep(ctx: AppContext, run: StepRun): Promise<StepResult> {
  const { companyId, params } = run
  const { type, target, mode } = params
  const source = otherSide(target)
  const actor: Actor = { id: run.requestedBy, requestId: params.requestId }
  const items = new Map<string, StepItem>()
  const result = (phases: number): StepResult => {
    const list = [...items.values()]
    const counts = { linked: 0, created: 0, skipped: 0, refused: 0, failed: 0, ambiguous: 0 }
    for (const i of list) counts[i.status] += 1
    return { step: params.step, mode, progress: { done: phases, total: 2 }, counts, items: list.slice(0, 10_000) }
  }
  run.onFailure(() => result(0))
  await run.progress(result(0))

  let createIds: string[] = []
  const edits: Record<string, Fields> = {}
  if (mode === 'auto') {
    const linked = await linkUnambiguous(ctx, companyId, type, AUTO_MIN_SCORE, actor, `onboarding (run ${run.id})`, {
      strongOnly: true,
    })
    for (const p of linked.items) {
      const id = source === 'procore' ? p.procoreId : p.erpId
      const to = source === 'procore' ? p.erpId : p.procoreId
      if (p.status === 'linked')
        items.set(id, { id, status: 'linked', targetId: to, ...(p.linkId ? { linkId: p.linkId } : {}) })
    }
    await run.checkCancelled()
    // The rest of the source side: top-level, live, unlinked, not set aside.
    const top = Registry[type].parent ? sql`and s.parent_id is null` : sql``
    const col = sql.ref(source === 'procore' ? 'l.procore_id' : 'l.erp_id')
    const { rows } = await sql<{ external_id: string }>`
      select s.external_id from record_snapshots s
      where s.company_id = ${companyId} and s.type = ${type} and s.side = ${source} and s.deleted_at is null ${top}
        and not exists (select 1 from record_links l where l.company_id = s.company_id and l.type = s.type
          and l.unlinked_at is null and ${col} = s.external_id)
        and not exists (select 1 from record_flags f where f.company_id = s.company_id and f.type = s.type
          and f.side = s.side and f.external_id = s.external_id and f.ignored_at is not null)
      order by s.external_id`.execute(ctx.db)
    createIds = rows.map((r) => r.external_id)
  } else {
    for (const d of params.decisions ?? []) {
      if (d.action === 'skip') items.set(d.id, { id: d.id, status: 'skipped', reason: 'skipped by the caller' })
      else if (d.action === 'create') {
        createIds.push(d.id)
        if (d.fields && Object.keys(d.fields).length > 0) edits[d.id] = d.fields
      } else {
        const pair = source === 'procore' ? { procoreId: d.id, erpId: d.to! } : { procoreId: d.to!, erpId: d.id }
        try {
          const { link } = await createLink(ctx, companyId, { type, ...pair, fix: true }, actor)
          items.set(d.id, { id: d.id, status: 'linked', targetId: d.to!, linkId: link.id })
        } catch (error) {
          if (!(error instanceof AppError) || error.status >= 500) throw error
          // Linked already (by an earlier run of this step) is what was asked.
          const existing = await ctx.db
            .selectFrom('record_links')
            .select('id')
            .where('company_id', '=', companyId)
            .where('type', '=', type)
            .where('unlinked_at', 'is', null)
            .where('procore_id', '=', pair.procoreId)
            .where('erp_id', '=', pair.erpId)
            .executeTakeFirst()
          items.set(
            d.id,
            existing
              ? { id: d.id, status: 'linked', targetId: d.to!, linkId: existing.id }
              : { id: d.id, status: 'refused', targetId: d.to!, reason: error.detail },
          )
        }
      }
    }
  }
  await run.progress(result(1))
  await run.checkCancelled()

  if (createIds.length > 0) {
    const created = await performCreate(ctx, {
      ...run,
      kind: CreateRunKinds[target].name,
      params: {
        type,
        target,
        ids: createIds,
        force: false,
        ...(params.requestId ? { requestId: params.requestId } : {}),
        ...(Object.keys(edits).length > 0 ? { edits } : {}),
        ...(mode === 'auto' && target === 'procore' ? { leastPrivilege: true } : {}),
      },
      progress: async (partial) => {
        for (const c of partial.items ?? []) items.set(c.sourceId, stepItem(c))
        await run.progress(result(1))
      },
      onFailure: () => {},
    })
    for (const c of created.items) items.set(c.sourceId, stepItem(c))
  }
  return result(2)
}

function stepItem(c: {
  sourceId: string
  status: 'created' | 'refused' | 'failed'
  targetId?: string
  linkId?: string
  reason?: string
  match?: unknown
}): StepItem {
  // A refusal for a strong match that was not linked (two candidates, say) is for a person to review.
  const status = c.status === 'refused' && c.match ? 'ambiguous' : c.status
  return {
    id: c.sourceId,
    status,
    ...(c.targetId ? { targetId: c.targetId } : {}),
    ...(c.linkId ? { linkId: c.linkId } : {}),
    ...(c.reason ? { reason: c.reason } : {}),
  }
}
