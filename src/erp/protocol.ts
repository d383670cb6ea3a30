// ERP Connector Protocol 1.x (openapi/erp-connector.json), as far as the client needs it: the
// response shapes it validates before trusting an agent's data, and the resource paths.
// test/erp/protocol.test.ts checks these schemas against the document, so they cannot drift.
import { Compile } from 'typebox/compile'
import { Type, type Static, type TSchema } from 'typebox'
import { ErpSystems } from '../db/tables/companies.js'

/** The protocol major version this client speaks; agents answer `protocol_version: "1.<minor>"`. */
export const PROTOCOL_MAJOR = 1
/** The newest minor version this client knows (1.1: code formats, unknown members ignored; 1.2: AP invoices). */
export const PROTOCOL_VERSION = '1.2'

export const ErpResources = ['departments', 'employees', 'jobs', 'cost-codes', 'vendors', 'ap-invoices'] as const
export type ErpResource = (typeof ErpResources)[number]

/** The systems an agent may report: the ones a company can be registered with. */
export const ErpSystemsReported = ErpSystems

const Text = Type.String()
const NullableText = Type.Union([Type.String(), Type.Null()])
const NullableDate = Type.Union([Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$' }), Type.Null()])
/** Money: a decimal string with two decimals, never a JSON number. */
export const Money = Type.String({ pattern: '^-?[0-9]+\\.[0-9]{2}$' })

/** Every record: the agent's permanent id, a version that grows on each change, the change time. */
const Base = {
  id: Type.String({ minLength: 1 }),
  version: Type.Integer({ minimum: 1 }),
  updated_at: Type.String({ format: 'date-time' }),
}

/** Record shapes per resource. Unknown members are allowed: minor versions add fields. */
export const RecordSchemas = {
  departments: Type.Object({ ...Base, code: Text, name: Text, active: Type.Boolean() }),
  employees: Type.Object({
    ...Base,
    employee_number: Text,
    first_name: Text,
    last_name: Text,
    email: Text,
    phone: Text,
    job_title: Text,
    department_id: NullableText,
    active: Type.Boolean(),
  }),
  jobs: Type.Object({
    ...Base,
    number: Text,
    name: Text,
    status: Type.Enum(['active', 'inactive']),
    address: Text,
    city: Text,
    state: Text,
    zip: Text,
    country: Text,
    start_date: NullableDate,
    completion_date: NullableDate,
    department_id: NullableText,
    customer: NullableText,
  }),
  'cost-codes': Type.Object({
    ...Base,
    code: Text,
    name: Text,
    parent_code: NullableText,
    job_id: NullableText,
    active: Type.Boolean(),
  }),
  vendors: Type.Object({
    ...Base,
    code: Text,
    name: Text,
    tax_id: NullableText,
    email: NullableText,
    phone: NullableText,
    address: Text,
    city: Text,
    state: Text,
    zip: Text,
    country: Text,
    active: Type.Boolean(),
  }),
  // Since 1.2: AP invoices (a vendor's bill charged to a job), the twins of Procore's subcontractor invoices.
  'ap-invoices': Type.Object({
    ...Base,
    invoice_number: Text,
    vendor_id: Text,
    job_id: NullableText,
    amount: Money,
    invoice_date: NullableDate,
    reference: Text,
    description: Text,
  }),
} as const satisfies Record<ErpResource, TSchema>

/** Fields of each resource that are text and may never be null: an empty value is `""`. */
export const NonNullableText: Record<ErpResource, readonly string[]> = {
  departments: ['code', 'name'],
  employees: ['employee_number', 'first_name', 'last_name', 'email', 'phone', 'job_title'],
  jobs: ['number', 'name', 'address', 'city', 'state', 'zip', 'country'],
  'cost-codes': ['code', 'name'],
  vendors: ['code', 'name', 'address', 'city', 'state', 'zip', 'country'],
  'ap-invoices': ['invoice_number', 'vendor_id', 'amount', 'reference', 'description'],
}

/** A code format (protocol 1.1 `limits.formats`): a mask and/or a pattern, with an example that fits. */
export const CodeFormatSchema = Type.Object({
  mask: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
  pattern: Type.Optional(Type.String({ minLength: 1, maxLength: 1000 })),
  example: Type.String({ minLength: 1, maxLength: 255 }),
  description: Type.Optional(Type.String()),
})

/** Unknown members are allowed everywhere the service reads an agent: minor versions add fields. */
export const InfoSchema = Type.Object({
  protocol_version: Type.String({ pattern: '^1\\.[0-9]+$' }),
  system: Type.Enum([...ErpSystemsReported]),
  company_name: Type.String({ minLength: 1 }),
  capabilities: Type.Object({
    resources: Type.Array(Type.String()),
    writable: Type.Optional(Type.Array(Type.String())),
    notifications: Type.Optional(Type.Boolean()),
  }),
  limits: Type.Object({
    max_page_size: Type.Integer({ minimum: 1, maximum: 500 }),
    idempotency_key_ttl_seconds: Type.Integer({ minimum: 86_400 }),
    max_lengths: Type.Record(Type.String(), Type.Record(Type.String(), Type.Integer({ minimum: 1 }))),
    formats: Type.Optional(Type.Record(Type.String(), Type.Record(Type.String(), CodeFormatSchema))),
  }),
})
export type ErpInfo = Static<typeof InfoSchema>

export const PageSchema = Type.Object({
  data: Type.Array(Type.Object({}, { additionalProperties: true })),
  next_cursor: Type.Union([Type.String({ minLength: 1 }), Type.Null()]),
})

export const FieldErrorSchema = Type.Object({ field: Type.String(), message: Type.String() })
export const ProblemSchema = Type.Object({
  status: Type.Optional(Type.Integer()),
  code: Type.Optional(Type.String()),
  detail: Type.Optional(Type.String()),
  title: Type.Optional(Type.String()),
  errors: Type.Optional(Type.Array(FieldErrorSchema)),
  existing_id: Type.Optional(Type.String()),
  current_version: Type.Optional(Type.Integer()),
})
export type ErpProblem = Static<typeof ProblemSchema>

/**
 * The thin notification body (`webhooks.recordChanged`). Members it does not know are ignored
 * (protocol 1.1): a newer agent may add fields, and refusing them would quarantine every notification.
 */
export const RecordChangedSchema = Type.Object({
  type: Type.Enum(['record.created', 'record.updated', 'record.deactivated']),
  resource: Type.Enum(['departments', 'employees', 'jobs', 'cost-codes', 'vendors', 'ap-invoices']),
  id: Type.String({ minLength: 1, maxLength: 255 }),
  job_id: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
  occurred_at: Type.String({ format: 'date-time' }),
})
export type RecordChanged = Static<typeof RecordChangedSchema>

export type ErpRecordJson = { id: string; version: number; updated_at: string } & Record<string, unknown>

/** A payment of an AP invoice (`GET /v1/payments`): list-only, no `version`; compared by `(id, updated_at)`. */
export const PaymentSchema = Type.Object({
  id: Type.String({ minLength: 1 }),
  invoice_number: Type.String({ minLength: 1 }),
  vendor_id: Type.String({ minLength: 1 }),
  job_id: NullableText,
  amount: Money,
  paid_at: Type.String({ format: 'date-time' }),
  check_number: NullableText,
  updated_at: Type.String({ format: 'date-time' }),
  /** Since 1.2: `voided` once the payment was voided (its amount is kept); absent from 1.1 agents. */
  status: Type.Optional(Type.Enum(['paid', 'voided'])),
})
export type ErpPayment = Static<typeof PaymentSchema>
const compiledPayment = onFirstUse(() => Compile(PaymentSchema))

export function parsePaymentPage(body: unknown): { data: ErpPayment[]; next_cursor: string | null } {
  if (!compiled.page().Check(body))
    throw new Error(`payments page does not match the protocol: ${describe(compiled.page().Errors(body))}`)
  const page = body as { data: unknown[]; next_cursor: string | null }
  const data = page.data.map((p) => {
    if (!compiledPayment().Check(p))
      throw new Error(`payment does not match the protocol: ${describe(compiledPayment().Errors(p))}`)
    return p
  })
  return { data, next_cursor: page.next_cursor }
}

/** A validator compiled when first used: compiling them all as the module loaded took some 15 ms of every start. */
function onFirstUse<V>(compile: () => V): () => V {
  let validator: V | undefined
  return () => (validator ??= compile())
}

const compiled = {
  info: onFirstUse(() => Compile(InfoSchema)),
  page: onFirstUse(() => Compile(PageSchema)),
  problem: onFirstUse(() => Compile(ProblemSchema)),
  recordChanged: onFirstUse(() => Compile(RecordChangedSchema)),
  records: {
    departments: onFirstUse(() => Compile(RecordSchemas.departments)),
    employees: onFirstUse(() => Compile(RecordSchemas.employees)),
    jobs: onFirstUse(() => Compile(RecordSchemas.jobs)),
    'cost-codes': onFirstUse(() => Compile(RecordSchemas['cost-codes'])),
    vendors: onFirstUse(() => Compile(RecordSchemas.vendors)),
    'ap-invoices': onFirstUse(() => Compile(RecordSchemas['ap-invoices'])),
  },
}

/** The first few schema errors as one line: `/status must be equal to one of the allowed values`. */
function describe(errors: Iterable<{ instancePath: string; message: string }>): string {
  const lines: string[] = []
  for (const e of errors) {
    lines.push(`${e.instancePath || '/'} ${e.message}`)
    if (lines.length === 3) break
  }
  return lines.join('; ')
}

/** The agent speaks another major version of the protocol than this client. */
export class ProtocolVersionError extends Error {
  override name = 'ProtocolVersionError'
  constructor(readonly reported: string) {
    super(`the agent speaks ERP Connector Protocol ${reported}; this service speaks ${PROTOCOL_MAJOR}.x`)
  }
}

/** Throws an Error naming what is wrong; the HTTP layer turns it into an `invalid_response` UpstreamError. */
export function parseInfo(body: unknown): ErpInfo {
  const reported =
    typeof body === 'object' && body !== null ? (body as { protocol_version?: unknown }).protocol_version : undefined
  const major = protocolMajor(reported)
  if (major !== undefined && major !== PROTOCOL_MAJOR) throw new ProtocolVersionError(String(reported))
  if (!compiled.info().Check(body))
    throw new Error(`GET /v1/info does not match the protocol: ${describe(compiled.info().Errors(body))}`)
  return body
}

export function parseRecord(resource: ErpResource, body: unknown): ErpRecordJson {
  const check = compiled.records[resource]()
  if (!check.Check(body)) {
    const id = typeof body === 'object' && body !== null && 'id' in body ? ` ${String(body.id)}` : ''
    throw new Error(`${resource} record${id} does not match the protocol: ${describe(check.Errors(body))}`)
  }
  return body
}

export function parsePage(resource: ErpResource, body: unknown): { data: ErpRecordJson[]; next_cursor: string | null } {
  if (!compiled.page().Check(body))
    throw new Error(`${resource} page does not match the protocol: ${describe(compiled.page().Errors(body))}`)
  const page = body as { data: unknown[]; next_cursor: string | null }
  return { data: page.data.map((r) => parseRecord(resource, r)), next_cursor: page.next_cursor }
}

/** The agent's problem+json, when the error body is one; otherwise an empty problem. */
export function asProblem(body: unknown): ErpProblem {
  return compiled.problem().Check(body) ? body : {}
}

export function parseRecordChanged(body: unknown): { ok: true; event: RecordChanged } | { ok: false; reason: string } {
  if (compiled.recordChanged().Check(body)) {
    const { type, resource, id, job_id: jobId, occurred_at: occurredAt } = body
    return {
      ok: true,
      event: { type, resource, id, ...(jobId !== undefined && { job_id: jobId }), occurred_at: occurredAt },
    }
  }
  return { ok: false, reason: `not a recordChanged notification: ${describe(compiled.recordChanged().Errors(body))}` }
}

/** The major version of `protocol_version` ("1.0" → 1), or undefined when it is not "<major>.<minor>". */
export function protocolMajor(version: unknown): number | undefined {
  const m = typeof version === 'string' ? /^(\d+)\.(\d+)$/.exec(version) : null
  return m?.[1] === undefined ? undefined : Number(m[1])
}
