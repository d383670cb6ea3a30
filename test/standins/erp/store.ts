// The ERP's data: records, the rules a create or update must pass, idempotency keys and keyset
// pagination. Pure and synchronous, so every API call is atomic; index.ts puts HTTP around it.
import {
  ERP_RESOURCES,
  FIELDS,
  MAX_LENGTHS,
  NOUN,
  SYSTEM_LABEL,
  assignEmployeeNumber,
  assignVendorCode,
  defaultValue,
  formatId,
  inactiveField,
  maxLength,
  seedCostCode,
  seedDepartmentCode,
  seedJobNumber,
  type ErpResource,
  type ErpSystem,
  type FieldSpec,
} from './rules.js'
import { formatProblem, type CodeFormats } from '../../../src/erp/formats.js'

export type ErpRecord = { id: string; version: number; updated_at: string } & Record<string, unknown>

export interface ErpPayment {
  id: string
  invoice_number: string
  vendor_id: string
  job_id: string | null
  amount: string
  paid_at: string
  check_number: string | null
  updated_at: string
  /** Protocol 1.2: `voided` once voided. */
  status: 'paid' | 'voided'
}

export interface ErpCostTotal {
  cost_code: string
  cost_type: string
  budget: string
  actual: string
  committed: string
}

export interface FieldError {
  field: string
  message: string
}

export type ChangeType = 'record.created' | 'record.updated' | 'record.deactivated'

/** A refusal the HTTP layer renders as problem+json. */
export class ProblemError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly extra: { errors?: FieldError[]; existing_id?: string; current_version?: number } = {},
  ) {
    super(detail)
  }
}

interface Stored<T> {
  micros: number
  value: T
}

interface KeyBinding {
  fingerprint: string
  resource: ErpResource
  id: string
}

export interface PageQuery {
  limit?: unknown
  cursor?: unknown
  updated_since?: unknown
}

export interface Page<T> {
  data: T[]
  next_cursor: string | null
}

const READ_ONLY = new Set(['id', 'version', 'updated_at'])
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/

/** RFC 3339 date-time → microseconds since the epoch, or undefined when malformed. */
export function parseRfc3339(s: string): number | undefined {
  const m = RFC3339.exec(s)
  if (!m) return undefined
  const [, y, mo, d, h, mi, sec, frac, , sign, oh, om] = m
  const month = Number(mo)
  const day = Number(d)
  if (month < 1 || month > 12 || day < 1 || day > 31 || Number(h) > 23 || Number(mi) > 59 || Number(sec) > 60)
    return undefined
  let ms = Date.UTC(Number(y), month - 1, day, Number(h), Number(mi), Number(sec))
  if (sign !== undefined) ms -= (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om)) * 60_000
  const fraction = Number((frac ?? '').padEnd(6, '0').slice(0, 6))
  return ms * 1000 + fraction
}

/** Microseconds since the epoch → RFC 3339 in UTC with six fractional digits. */
export function formatMicros(micros: number): string {
  const iso = new Date(Math.floor(micros / 1000)).toISOString()
  return `${iso.slice(0, -1)}${String(micros % 1000).padStart(3, '0')}Z`
}

function isValidDate(s: string): boolean {
  const m = DATE.exec(s)
  if (!m) return false
  const date = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])))
  return date.toISOString().slice(0, 10) === s
}

/** JSON with sorted keys, so two bodies that mean the same compare equal. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
  }
  return JSON.stringify(value)
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

function compareKeys(a: { micros: number; id: string }, b: { micros: number; id: string }): number {
  if (a.micros !== b.micros) return a.micros - b.micros
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

export class ErpStore {
  readonly system: ErpSystem
  /** Successful API creates (201s). */
  creates = 0

  private lastMicros = 0
  private seq = new Map<string, number>()
  private readonly epoch = Math.floor(Date.now() / 1000)
  private readonly records = new Map<ErpResource, Map<string, Stored<ErpRecord>>>(
    ERP_RESOURCES.map((r) => [r, new Map()]),
  )
  /** `${resource}|${scope}|${field}|${VALUE}` → id, for unique codes. */
  private readonly unique = new Map<string, string>()
  private readonly keys = new Map<string, KeyBinding>()
  private readonly payments = new Map<string, Stored<ErpPayment>>()
  private readonly costTotals = new Map<string, ErpCostTotal[]>()

  constructor(
    system: ErpSystem,
    readonly formats: CodeFormats = {},
    private readonly quirks: { newestFirst?: boolean } = {},
  ) {
    this.system = system
  }

  // -------------------------------------------------------------------------------------------
  // Clock and ids

  /**
   * A strictly increasing clock: every change gets an updated_at later than every earlier one.
   * That is what keeps keyset pagination over (updated_at, id) from skipping a record changed
   * while a client walks the pages.
   */
  private tick(): number {
    this.lastMicros = Math.max(Date.now() * 1000, this.lastMicros + 1)
    return this.lastMicros
  }

  private next(counter: string): number {
    const n = (this.seq.get(counter) ?? 0) + 1
    this.seq.set(counter, n)
    return n
  }

  private newId(resource: ErpResource | 'payments'): string {
    // QuickBooks Desktop hands out ListIDs from one sequence for every list.
    const n = this.next(this.system === 'quickbooks_desktop' ? 'qbd' : `id:${resource}`)
    return formatId(this.system, resource, n, this.epoch)
  }

  private idTaken(id: string): boolean {
    for (const map of this.records.values()) if (map.has(id)) return true
    return this.payments.has(id)
  }

  // -------------------------------------------------------------------------------------------
  // Reading

  get(resource: ErpResource, id: string): ErpRecord | undefined {
    const stored = this.records.get(resource)?.get(id)
    return stored ? structuredClone(stored.value) : undefined
  }

  /** Records of a resource in (updated_at, id) order; cost codes of one job or of the standard list. */
  list(resource: ErpResource, jobId?: string | null): ErpRecord[] {
    return this.sorted(resource, jobId).map((s) => structuredClone(s.value))
  }

  count(resource: ErpResource): number {
    return this.records.get(resource)?.size ?? 0
  }

  distinctCreateKeys(): number {
    return this.keys.size
  }

  private sorted(resource: ErpResource, jobId?: string | null): Array<Stored<ErpRecord>> {
    const scope = resource === 'cost-codes' ? (jobId ?? null) : undefined
    const all = [...(this.records.get(resource)?.values() ?? [])]
    const inScope = scope === undefined ? all : all.filter((s) => s.value['job_id'] === scope)
    return inScope.sort((a, b) =>
      compareKeys({ micros: a.micros, id: a.value.id }, { micros: b.micros, id: b.value.id }),
    )
  }

  page(resource: ErpResource, jobId: string | null | undefined, query: PageQuery): Page<ErpRecord> {
    const scope = resource === 'cost-codes' ? `${resource}:${jobId ?? ''}` : resource
    const page = paginate(this.sorted(resource, jobId), scope, query)
    return this.quirks.newestFirst === true ? { ...page, data: page.data.reverse() } : page
  }

  paymentsPage(query: PageQuery): Page<ErpPayment> {
    const items = [...this.payments.values()].sort((a, b) =>
      compareKeys({ micros: a.micros, id: a.value.id }, { micros: b.micros, id: b.value.id }),
    )
    return paginate(items, 'payments', query)
  }

  costTotalsOf(jobId: string): ErpCostTotal[] {
    return structuredClone(this.costTotals.get(jobId) ?? [])
  }

  // -------------------------------------------------------------------------------------------
  // Test-side writes: seeds and edits "made in the ERP"

  /** Adds a record as if it had always been in the ERP: defaults filled in, rules not applied. */
  seed(resource: ErpResource, fields: Record<string, unknown>): ErpRecord {
    const spec = FIELDS[resource]
    for (const key of Object.keys(fields)) {
      if (key !== 'id' && !(key in spec)) throw new Error(`seed(${resource}): ${key} is not a ${NOUN[resource]} field`)
    }
    const n = this.next(`seed:${resource}`)
    const values: Record<string, unknown> = {}
    for (const [field, fs] of Object.entries(spec))
      values[field] = field in fields ? fields[field] : fs.assigned === true ? undefined : defaultValue(fs, field)
    const jobId = resource === 'cost-codes' ? (values['job_id'] as string | null) : undefined
    if (typeof jobId === 'string' && !this.records.get('jobs')?.has(jobId))
      throw new Error(`seed(cost-codes): no job has id ${jobId}`)
    const seedDefaults: Record<ErpResource, () => Record<string, unknown>> = {
      departments: () => ({ code: seedDepartmentCode(n), name: `Department ${n}` }),
      employees: () => ({ first_name: 'Pat', last_name: `Employee ${n}` }),
      jobs: () => ({ number: seedJobNumber(this.system, n, new Date().getUTCFullYear()), name: `Job ${n}` }),
      'cost-codes': () => ({ ...seedCostCode(n), name: `Cost code ${n}` }),
      vendors: () => ({ name: `Vendor ${n}` }),
      'ap-invoices': () => ({ invoice_number: `INV-${String(n).padStart(5, '0')}` }),
    }
    for (const [field, value] of Object.entries(seedDefaults[resource]())) {
      if (!(field in fields)) values[field] = value
    }
    this.assignCodes(resource, values, jobId)
    const id = typeof fields['id'] === 'string' ? fields['id'] : this.newId(resource)
    if (this.idTaken(id)) throw new Error(`seed(${resource}): id ${id} is taken`)
    const conflict = this.uniqueConflict(resource, values, jobId, undefined)
    if (conflict) throw new Error(`seed(${resource}): ${conflict.message}`)
    return this.insert(resource, id, values, jobId)
  }

  /** Edits a record as a person in the ERP would: no rules, version bumped even if nothing changed. */
  change(resource: ErpResource, id: string, patch: Record<string, unknown>): { record: ErpRecord; type: ChangeType } {
    const stored = this.records.get(resource)?.get(id)
    if (!stored) throw new Error(`change(${resource}): no ${NOUN[resource]} has id ${id}`)
    const spec = FIELDS[resource]
    for (const key of Object.keys(patch)) {
      if (!(key in spec) || spec[key]?.readOnly === true)
        throw new Error(`change(${resource}): ${key} is not a writable ${NOUN[resource]} field`)
    }
    const type = this.apply(resource, stored, patch)
    return { record: structuredClone(stored.value), type }
  }

  /** Deletes a record as someone would in the ERP; a job takes its cost codes with it. */
  remove(resource: ErpResource, id: string): void {
    if (!this.records.get(resource)?.delete(id))
      throw new Error(`remove(${resource}): no ${NOUN[resource]} has id ${id}`)
    if (resource !== 'jobs') return
    const codes = this.records.get('cost-codes')
    for (const [codeId, stored] of codes ?? []) if (stored.value['job_id'] === id) codes?.delete(codeId)
  }

  seedPayment(fields: Partial<ErpPayment>): ErpPayment {
    if (fields.vendor_id === undefined) throw new Error('seedPayment: vendor_id is required')
    const n = this.next('seed:payments')
    const micros = this.tick()
    const payment: ErpPayment = {
      id: fields.id ?? this.newId('payments'),
      invoice_number: fields.invoice_number ?? `INV-${String(n).padStart(5, '0')}`,
      vendor_id: fields.vendor_id,
      job_id: fields.job_id ?? null,
      amount: fields.amount ?? '100.00',
      paid_at: fields.paid_at ?? formatMicros(micros),
      check_number: fields.check_number === undefined ? String(10000 + n) : fields.check_number,
      updated_at: formatMicros(micros),
      status: fields.status ?? 'paid',
    }
    this.payments.set(payment.id, { micros, value: payment })
    return structuredClone(payment)
  }

  /** Changes a payment as the ERP would (voided, amount corrected): a new `updated_at`, so `updated_since` finds it. */
  changePayment(id: string, patch: Partial<Omit<ErpPayment, 'id' | 'updated_at'>>): ErpPayment {
    const stored = this.payments.get(id)
    if (!stored) throw new Error(`changePayment: no payment has id ${id}`)
    const micros = this.tick()
    Object.assign(stored.value, patch, { updated_at: formatMicros(micros) })
    stored.micros = micros
    return structuredClone(stored.value)
  }

  setCostTotals(jobId: string, rows: ErpCostTotal[]): void {
    if (!this.records.get('jobs')?.has(jobId)) throw new Error(`setCostTotals: no job has id ${jobId}`)
    this.costTotals.set(jobId, structuredClone(rows))
  }

  /** Edits one total "in the ERP" (a posting moved it), or adds it when the job has none of this code and type. */
  changeCostTotal(jobId: string, costCode: string, costType: string, patch: Partial<ErpCostTotal>): ErpCostTotal {
    if (!this.records.get('jobs')?.has(jobId)) throw new Error(`changeCostTotal: no job has id ${jobId}`)
    const rows = this.costTotals.get(jobId) ?? []
    this.costTotals.set(jobId, rows)
    let row = rows.find((r) => r.cost_code === costCode && r.cost_type === costType)
    if (!row) {
      row = { cost_code: costCode, cost_type: costType, budget: '0.00', actual: '0.00', committed: '0.00' }
      rows.push(row)
    }
    Object.assign(row, patch, { cost_code: costCode, cost_type: costType })
    return structuredClone(row)
  }

  // -------------------------------------------------------------------------------------------
  // API writes

  /**
   * POST: replays a bound key, otherwise validates and creates, then binds the key. A refused
   * request binds nothing, so the caller may fix the body and retry with the same key.
   */
  create(
    resource: ErpResource,
    jobId: string | undefined,
    path: string,
    key: string,
    body: unknown,
  ): { record: ErpRecord; replayed: boolean } {
    const fingerprint = `${path}\n${canonicalJson(body)}`
    const bound = this.keys.get(key)
    if (bound) {
      if (bound.fingerprint !== fingerprint) {
        throw new ProblemError(
          422,
          'idempotency_key_reused',
          `Idempotency-Key "${key}" was already used for a different request (another body or path). ` +
            `Use a new key for a new record.`,
        )
      }
      const existing = this.records.get(bound.resource)?.get(bound.id)
      if (!existing) throw new Error(`idempotency key ${key} points at a missing record`)
      return { record: structuredClone(existing.value), replayed: true }
    }
    if (!isObject(body)) throw new ProblemError(400, 'bad_request', 'The body must be a JSON object.')

    const scope = resource === 'cost-codes' ? (jobId ?? null) : undefined
    const errors = this.validate(resource, body, 'create', undefined)
    if (errors.length > 0) throw this.validationProblem('create', resource, errors)

    const values: Record<string, unknown> = {}
    for (const [field, fs] of Object.entries(FIELDS[resource])) {
      values[field] = field in body ? body[field] : fs.assigned === true ? undefined : defaultValue(fs, field)
    }
    if (scope !== undefined) values['job_id'] = scope
    this.assignCodes(resource, values, scope)
    const conflict = this.uniqueConflict(resource, values, scope, undefined)
    if (conflict) {
      throw new ProblemError(
        409,
        'already_exists',
        `The ${NOUN[resource]} was not created: ${conflict.message}. ` +
          `Link that record instead, or use another ${conflict.field}.`,
        {
          errors: [{ field: conflict.field, message: conflict.message }],
          existing_id: conflict.existingId,
        },
      )
    }
    const record = this.insert(resource, this.newId(resource), values, scope)
    this.keys.set(key, { fingerprint, resource, id: record.id })
    this.creates += 1
    return { record, replayed: false }
  }

  /** PATCH with If-Match: 404, 428, 400, 412, 422, 409 in that order. */
  update(
    resource: ErpResource,
    id: string,
    ifMatch: string | undefined,
    body: unknown,
  ): { record: ErpRecord; type: ChangeType | undefined } {
    const stored = this.records.get(resource)?.get(id)
    if (!stored) throw notFound(resource, id)
    const m = ifMatch === undefined ? null : /^"(\d+)"$/.exec(ifMatch.trim())
    if (!m) {
      throw new ProblemError(
        428,
        'if_match_required',
        `Send If-Match with the ETag of the version you are changing, e.g. If-Match: "${stored.value.version}". ` +
          `Read the ${NOUN[resource]} first to get it.`,
      )
    }
    if (!isObject(body))
      throw new ProblemError(400, 'bad_request', 'The body must be a JSON object with the fields to change.')
    if (Object.keys(body).length === 0)
      throw new ProblemError(
        422,
        'validation_failed',
        `The body has no fields. Send the ${NOUN[resource]} fields to change, e.g. {"name": "..."}.`,
        { errors: [] },
      )
    if (Number(m[1]) !== stored.value.version) {
      throw new ProblemError(
        412,
        'version_mismatch',
        `The ${NOUN[resource]} changed since version ${m[1]}; it is now at version ${stored.value.version}. ` +
          `Read it again, re-apply your change and retry with the new ETag.`,
        {
          current_version: stored.value.version,
        },
      )
    }
    const errors = this.validate(resource, body, 'update', stored.value)
    if (errors.length > 0) throw this.validationProblem('update', resource, errors)
    const scope = resource === 'cost-codes' ? (stored.value['job_id'] as string | null) : undefined
    const conflict = this.uniqueConflict(resource, { ...stored.value, ...body }, scope, id)
    if (conflict) {
      throw new ProblemError(409, 'already_exists', `The ${NOUN[resource]} was not changed: ${conflict.message}.`, {
        errors: [{ field: conflict.field, message: conflict.message }],
        existing_id: conflict.existingId,
      })
    }
    const changed = Object.entries(body).some(([k, v]) => canonicalJson(stored.value[k]) !== canonicalJson(v))
    if (!changed) return { record: structuredClone(stored.value), type: undefined }
    const type = this.apply(resource, stored, body)
    return { record: structuredClone(stored.value), type }
  }

  // -------------------------------------------------------------------------------------------
  // Internals

  private insert(
    resource: ErpResource,
    id: string,
    values: Record<string, unknown>,
    scope: string | null | undefined,
  ): ErpRecord {
    const micros = this.tick()
    const record: ErpRecord = { id, version: 1, updated_at: formatMicros(micros), ...values }
    this.records.get(resource)?.set(id, { micros, value: record })
    this.indexUnique(resource, record, scope, undefined)
    return structuredClone(record)
  }

  private apply(resource: ErpResource, stored: Stored<ErpRecord>, patch: Record<string, unknown>): ChangeType {
    const before = structuredClone(stored.value)
    const micros = this.tick()
    Object.assign(stored.value, patch, { version: before.version + 1, updated_at: formatMicros(micros) })
    stored.micros = micros
    const scope = resource === 'cost-codes' ? (stored.value['job_id'] as string | null) : undefined
    this.indexUnique(resource, stored.value, scope, before)
    const { field, value } = inactiveField(resource)
    return before[field] !== value && stored.value[field] === value ? 'record.deactivated' : 'record.updated'
  }

  private uniqueKey(resource: ErpResource, scope: string | null | undefined, field: string, value: string): string {
    return `${resource}|${scope ?? ''}|${field}|${value.trim().toUpperCase()}`
  }

  private indexUnique(
    resource: ErpResource,
    record: ErpRecord,
    scope: string | null | undefined,
    before: ErpRecord | undefined,
  ): void {
    for (const [field, fs] of Object.entries(FIELDS[resource])) {
      if (fs.unique !== true) continue
      const old = before?.[field]
      if (typeof old === 'string') this.unique.delete(this.uniqueKey(resource, scope, field, old))
      const value = record[field]
      // An empty value (an AP invoice without a reference) is no code: never taken.
      if (typeof value === 'string' && value !== '')
        this.unique.set(this.uniqueKey(resource, scope, field, value), record.id)
    }
  }

  private uniqueConflict(
    resource: ErpResource,
    values: Record<string, unknown>,
    scope: string | null | undefined,
    selfId: string | undefined,
  ): (FieldError & { existingId: string }) | undefined {
    for (const [field, fs] of Object.entries(FIELDS[resource])) {
      const value = values[field]
      if (fs.unique !== true || typeof value !== 'string' || value === '') continue
      const existingId = this.unique.get(this.uniqueKey(resource, scope, field, value))
      if (existingId !== undefined && existingId !== selfId) {
        const where =
          resource === 'cost-codes'
            ? scope === null || scope === undefined
              ? ' on the standard list'
              : ` on job ${scope}`
            : ''
        return {
          field,
          message: `a ${NOUN[resource]} with ${field} "${value}" already exists${where} (id ${existingId})`,
          existingId,
        }
      }
    }
    return undefined
  }

  private assignCodes(resource: ErpResource, values: Record<string, unknown>, scope: string | null | undefined): void {
    const taken = (field: string) => (code: string) => this.unique.has(this.uniqueKey(resource, scope, field, code))
    if (resource === 'vendors' && values['code'] === undefined) {
      values['code'] = assignVendorCode(
        this.system,
        typeof values['name'] === 'string' ? values['name'] : '',
        this.next('code:vendors'),
        taken('code'),
      )
    }
    if (resource === 'employees' && values['employee_number'] === undefined) {
      values['employee_number'] = assignEmployeeNumber(this.next('code:employees'), taken('employee_number'))
    }
  }

  private validationProblem(action: 'create' | 'update', resource: ErpResource, errors: FieldError[]): ProblemError {
    const what = action === 'create' ? 'created' : 'changed'
    const n = errors.length === 1 ? '1 field is' : `${errors.length} fields are`
    return new ProblemError(
      422,
      'validation_failed',
      `The ${NOUN[resource]} was not ${what}: ${n} not accepted by ${SYSTEM_LABEL[this.system]}. ` +
        `Correct them and retry.`,
      { errors },
    )
  }

  /** One message per problem, each naming its field and saying what is allowed. */
  private validate(
    resource: ErpResource,
    body: Record<string, unknown>,
    mode: 'create' | 'update',
    current: ErpRecord | undefined,
  ): FieldError[] {
    const spec = FIELDS[resource]
    const noun = NOUN[resource]
    const errors: FieldError[] = []
    const keys = Object.keys(body)
    for (const field of keys) {
      const fs = spec[field]
      if (READ_ONLY.has(field) || fs?.readOnly === true) {
        errors.push({ field, message: `${field} is read-only` })
      } else if (!fs) {
        errors.push({ field, message: `${field} is not a ${noun} field` })
      }
    }
    for (const [field, fs] of Object.entries(spec)) {
      if (fs.readOnly === true) continue
      if (!(field in body) || body[field] === undefined) {
        if (mode === 'create' && fs.required === true) errors.push({ field, message: `${field} is required` })
        continue
      }
      const message = this.checkField(resource, field, fs, body[field])
      if (message !== undefined) errors.push({ field, message })
    }
    if (resource === 'jobs') {
      const start = 'start_date' in body ? body['start_date'] : current?.['start_date']
      const end = 'completion_date' in body ? body['completion_date'] : current?.['completion_date']
      if (
        typeof start === 'string' &&
        typeof end === 'string' &&
        isValidDate(start) &&
        isValidDate(end) &&
        end < start
      ) {
        errors.push({ field: 'completion_date', message: `completion_date must not be before start_date (${start})` })
      }
    }
    return errors
  }

  private checkField(resource: ErpResource, field: string, fs: FieldSpec, value: unknown): string | undefined {
    switch (fs.kind) {
      case 'boolean':
        return typeof value === 'boolean' ? undefined : `${field} must be true or false`
      case 'enum':
        return typeof value === 'string' && (fs.values ?? []).includes(value)
          ? undefined
          : `${field} must be one of: ${(fs.values ?? []).join(', ')}`
      case 'money':
        return typeof value === 'string' && /^-?[0-9]+\.[0-9]{2}$/.test(value)
          ? undefined
          : `${field} must be a decimal string with two decimals, such as "1250.00"`
      case 'date':
        return value === null || (typeof value === 'string' && isValidDate(value))
          ? undefined
          : `${field} must be a date in the form YYYY-MM-DD, or null`
      case 'text': {
        if (value === null)
          return fs.nullable === true
            ? undefined
            : `${field} must be a string${fs.required === true || fs.assigned === true ? '' : ' (use "" for none)'}`
        if (typeof value !== 'string') return `${field} must be a string${fs.nullable === true ? ' or null' : ''}`
        if ((fs.required === true || fs.assigned === true) && value.trim() === '') return `${field} must not be empty`
        const max = maxLength(this.system, resource, field)
        if ([...value].length > max) return `${field} must be at most ${max} characters`
        const format = this.formats[resource]?.[field]
        if (format !== undefined && value !== '') {
          const problem = formatProblem(field, value, format)
          if (problem !== undefined) return problem
        }
        if (fs.email === true && value !== '' && !EMAIL.test(value))
          return `${field} must be an e-mail address such as ap@example.com`
        if (fs.ref !== undefined && !this.records.get(fs.ref)?.has(value))
          return `${field} "${value}" does not match any ${NOUN[fs.ref]}`
        return undefined
      }
    }
  }

  /** What /v1/info reports as limits.max_lengths. */
  maxLengths(): Partial<Record<ErpResource, Record<string, number>>> {
    return structuredClone(MAX_LENGTHS[this.system])
  }
}

export function notFound(resource: ErpResource, id: string): ProblemError {
  return new ProblemError(
    404,
    'not_found',
    `No ${NOUN[resource]} has id "${id}". ` +
      `It may never have existed in this ERP company; records are deactivated, not deleted.`,
  )
}

// ---------------------------------------------------------------------------------------------
// Pagination

interface CursorPosition {
  s: string
  u: number
  i: string
  /** The updated_since the walk started with (1.1: a cursor carries its filter; a different one is ignored). */
  f?: number | null
}

function encodeCursor(position: CursorPosition): string {
  return Buffer.from(JSON.stringify(position)).toString('base64url')
}

function decodeCursor(cursor: string, scope: string): CursorPosition {
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    parsed = undefined
  }
  if (
    !isObject(parsed) ||
    typeof parsed['u'] !== 'number' ||
    typeof parsed['i'] !== 'string' ||
    typeof parsed['s'] !== 'string'
  ) {
    throw new ProblemError(
      400,
      'invalid_cursor',
      'The cursor is not one this agent issued. Start again from the first page (no cursor).',
      {
        errors: [{ field: 'cursor', message: 'cursor must be a next_cursor value returned by this list' }],
      },
    )
  }
  if (parsed['s'] !== scope) {
    throw new ProblemError(
      400,
      'invalid_cursor',
      'The cursor belongs to another list. Use the next_cursor returned by this list.',
      {
        errors: [{ field: 'cursor', message: 'cursor must be a next_cursor value returned by this list' }],
      },
    )
  }
  return { s: parsed['s'], u: parsed['u'], i: parsed['i'], f: typeof parsed['f'] === 'number' ? parsed['f'] : null }
}

export function parsePageQuery(query: PageQuery): {
  limit: number
  since: number | undefined
  cursor: string | undefined
} {
  const errors: FieldError[] = []
  let limit = 100
  if (query.limit !== undefined) {
    if (
      typeof query.limit === 'string' &&
      /^\d{1,3}$/.test(query.limit) &&
      Number(query.limit) >= 1 &&
      Number(query.limit) <= 500
    ) {
      limit = Number(query.limit)
    } else {
      errors.push({ field: 'limit', message: 'limit must be a whole number from 1 to 500' })
    }
  }
  let since: number | undefined
  if (query.updated_since !== undefined) {
    // A `+` offset sent unencoded arrives as a space (1.1: agents read it as `+`).
    since =
      typeof query.updated_since === 'string'
        ? parseRfc3339(query.updated_since.replace(/ (\d{2}:\d{2})$/, '+$1'))
        : undefined
    if (since === undefined)
      errors.push({
        field: 'updated_since',
        message: 'updated_since must be an RFC 3339 date-time such as 2024-05-01T00:00:00Z',
      })
  }
  let cursor: string | undefined
  if (query.cursor !== undefined) {
    if (typeof query.cursor === 'string' && query.cursor !== '') cursor = query.cursor
    else errors.push({ field: 'cursor', message: 'cursor must be a next_cursor value returned by this list' })
  }
  if (errors.length > 0)
    throw new ProblemError(400, 'bad_request', 'A query parameter is not valid; see errors.', { errors })
  return { limit, since, cursor }
}

function paginate<T extends { id: string }>(items: Array<Stored<T>>, scope: string, query: PageQuery): Page<T> {
  const parsed = parsePageQuery(query)
  const { limit, cursor } = parsed
  const after = cursor === undefined ? undefined : decodeCursor(cursor, scope)
  const since = after === undefined ? parsed.since : (after.f ?? undefined)
  const selected = items.filter(
    (s) =>
      (since === undefined || s.micros >= since) &&
      (after === undefined || compareKeys({ micros: s.micros, id: s.value.id }, { micros: after.u, id: after.i }) > 0),
  )
  const data = selected.slice(0, limit)
  const last = data.at(-1)
  const next_cursor =
    selected.length > limit && last !== undefined
      ? encodeCursor({ s: scope, u: last.micros, i: last.value.id, f: since ?? null })
      : null
  return { data: data.map((s) => structuredClone(s.value)), next_cursor }
}
