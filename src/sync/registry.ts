/**
 * The entity registry: the one place that knows a record type. Every generic mechanism —
 * snapshots, status, suggestions, links, create-on-other-side, discrepancies, audit — reads
 * these entries and nothing else. Adding a record type means adding an entry here.
 *
 * Canonical fields are named in camelCase. A field that exists on only one side is still
 * canonical (it is stored, searched and shown) but is compared only when both sides have it.
 */

export const RecordTypes = ['department', 'user', 'project', 'cost_code', 'vendor'] as const
export type RecordType = (typeof RecordTypes)[number]

export type Fields = Record<string, string | boolean | null>

/** A JSON scalar as text; anything else (objects, arrays) is not a field value. */
function scalar(v: unknown): string | null {
  return typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean' ? String(v) : typeof v === 'string' && v !== '' ? v : null
}

/** How a field's values are made comparable; applied before any comparison or match. */
export const Normalizers = {
  text: (v: unknown) => (typeof v === 'string' ? v.trim().replace(/\s+/g, ' ') || null : scalar(v)),
  /** Codes compare case-insensitively and without surrounding space. */
  code: (v: unknown) => (typeof v === 'string' ? v.trim().toUpperCase() || null : scalar(v)),
  email: (v: unknown) => (typeof v === 'string' ? v.trim().toLowerCase() || null : null),
  phone: (v: unknown) => (typeof v === 'string' ? v.replace(/\D/g, '') || null : null),
  /** ISO 3166 alpha-2 country and state/province codes. */
  iso: (v: unknown) => (typeof v === 'string' ? v.trim().toUpperCase() || null : null),
  bool: (v: unknown) => (typeof v === 'boolean' ? v : v == null ? null : Boolean(v)),
  /** Calendar dates as YYYY-MM-DD. */
  date: (v: unknown) => (typeof v === 'string' && v ? v.slice(0, 10) : null),
} as const
export type NormalizerName = keyof typeof Normalizers

export interface FieldDef {
  normalize: NormalizerName
  /** Which sides carry the field. */
  sides: ReadonlyArray<'procore' | 'erp'>
  label: string
}

export interface Mapped {
  externalId: string
  /** The record's container: a project cost code's project (Procore) or job (ERP); null otherwise. */
  parentId: string | null
  fields: Fields
  /** The source's own last-change time, to ignore stale re-reads. */
  updatedAt: string | null
}

export interface EntityDef {
  type: RecordType
  /** Plural, for messages: "departments". */
  label: string
  fields: Record<string, FieldDef>
  /** The field people recognise a record by, for search and messages. */
  displayField: string
  procore: {
    /** Webhook `resource_name`s that report changes of this type. */
    webhookResources: readonly string[]
    /** Whether Procore records of this type carry `origin_code` (users and departments do not). */
    hasOriginCode: boolean
    from(json: Record<string, unknown>): Mapped
    /** Procore write body (inside the resource wrapper) for the given canonical fields. */
    to(fields: Fields): Record<string, unknown>
  }
  erp: {
    /** Resource name in the ERP connector protocol. */
    resource: 'departments' | 'employees' | 'jobs' | 'cost-codes' | 'vendors'
    from(json: Record<string, unknown>): Mapped
    to(fields: Fields): Record<string, unknown>
  }
}

const both = ['procore', 'erp'] as const
const erpOnly = ['erp'] as const
const str = scalar
const id = (v: unknown): string => scalar(v) ?? ''
/** Drop undefined and keep only fields the caller gave, so partial writes stay partial. */
const defined = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined))
const has = (f: Fields, k: string) => (k in f ? f[k] : undefined)

const address = {
  address: { normalize: 'text', sides: both, label: 'Address' },
  city: { normalize: 'text', sides: both, label: 'City' },
  state: { normalize: 'iso', sides: both, label: 'State' },
  zip: { normalize: 'text', sides: both, label: 'ZIP' },
  country: { normalize: 'iso', sides: both, label: 'Country' },
} as const satisfies Record<string, FieldDef>

const procoreAddress = (j: Record<string, unknown>) => ({
  address: str(j.address), city: str(j.city), state: str(j.state_code), zip: str(j.zip), country: str(j.country_code),
})
const toProcoreAddress = (f: Fields) => ({
  address: has(f, 'address'), city: has(f, 'city'), state_code: has(f, 'state'), zip: has(f, 'zip'), country_code: has(f, 'country'),
})
const erpAddress = (j: Record<string, unknown>) => ({
  address: str(j.address), city: str(j.city), state: str(j.state), zip: str(j.zip), country: str(j.country),
})
const toErpAddress = (f: Fields) => ({
  address: has(f, 'address'), city: has(f, 'city'), state: has(f, 'state'), zip: has(f, 'zip'), country: has(f, 'country'),
})

export const Registry: Record<RecordType, EntityDef> = {
  department: {
    type: 'department',
    label: 'departments',
    displayField: 'name',
    fields: {
      name: { normalize: 'text', sides: both, label: 'Name' },
      code: { normalize: 'code', sides: erpOnly, label: 'Code' },
      active: { normalize: 'bool', sides: erpOnly, label: 'Active' },
    },
    procore: {
      webhookResources: ['Departments'],
      hasOriginCode: false,
      from: (j) => ({ externalId: id(j.id), parentId: null, fields: { name: str(j.name) }, updatedAt: str(j.updated_at) }),
      to: (f) => defined({ name: has(f, 'name') }),
    },
    erp: {
      resource: 'departments',
      from: (j) => ({
        externalId: id(j.id), parentId: null, fields: { name: str(j.name), code: str(j.code), active: typeof j.active === 'boolean' ? j.active : null }, updatedAt: str(j.updated_at),
      }),
      to: (f) => defined({ name: has(f, 'name'), code: has(f, 'code'), active: has(f, 'active') }),
    },
  },

  user: {
    type: 'user',
    label: 'users',
    displayField: 'email',
    fields: {
      firstName: { normalize: 'text', sides: both, label: 'First name' },
      lastName: { normalize: 'text', sides: both, label: 'Last name' },
      email: { normalize: 'email', sides: both, label: 'E-mail' },
      phone: { normalize: 'phone', sides: both, label: 'Phone' },
      jobTitle: { normalize: 'text', sides: both, label: 'Job title' },
      employeeNumber: { normalize: 'code', sides: both, label: 'Employee number' },
      active: { normalize: 'bool', sides: both, label: 'Active' },
    },
    procore: {
      webhookResources: ['Company Users'],
      hasOriginCode: false,
      from: (j) => ({
        externalId: id(j.id),
        parentId: null,
        fields: {
          firstName: str(j.first_name), lastName: str(j.last_name), email: str(j.email_address),
          phone: str(j.business_phone) ?? str(j.mobile_phone), jobTitle: str(j.job_title), employeeNumber: str(j.employee_id),
          active: typeof j.is_active === 'boolean' ? j.is_active : null,
        },
        updatedAt: str(j.updated_at),
      }),
      to: (f) => defined({
        first_name: has(f, 'firstName'), last_name: has(f, 'lastName'), email_address: has(f, 'email'), business_phone: has(f, 'phone'),
        job_title: has(f, 'jobTitle'), employee_id: has(f, 'employeeNumber'), is_active: has(f, 'active'), is_employee: true,
      }),
    },
    erp: {
      resource: 'employees',
      from: (j) => ({
        externalId: id(j.id),
        parentId: null,
        fields: {
          firstName: str(j.first_name), lastName: str(j.last_name), email: str(j.email), phone: str(j.phone), jobTitle: str(j.job_title),
          employeeNumber: str(j.employee_number), active: typeof j.active === 'boolean' ? j.active : null,
        },
        updatedAt: str(j.updated_at),
      }),
      to: (f) => defined({
        first_name: has(f, 'firstName'), last_name: has(f, 'lastName'), email: has(f, 'email'), phone: has(f, 'phone'),
        job_title: has(f, 'jobTitle'), employee_number: has(f, 'employeeNumber'), active: has(f, 'active'),
      }),
    },
  },

  project: {
    type: 'project',
    label: 'projects',
    displayField: 'number',
    fields: {
      number: { normalize: 'code', sides: both, label: 'Project / job number' },
      name: { normalize: 'text', sides: both, label: 'Name' },
      active: { normalize: 'bool', sides: both, label: 'Active' },
      ...address,
      startDate: { normalize: 'date', sides: both, label: 'Start date' },
      completionDate: { normalize: 'date', sides: both, label: 'Completion date' },
    },
    procore: {
      webhookResources: ['Projects'],
      hasOriginCode: true,
      from: (j) => ({
        externalId: id(j.id),
        parentId: null,
        fields: {
          number: str(j.project_number), name: str(j.name), active: typeof j.active === 'boolean' ? j.active : null, ...procoreAddress(j),
          startDate: str(j.start_date), completionDate: str(j.completion_date),
        },
        updatedAt: str(j.updated_at),
      }),
      to: (f) => defined({
        project_number: has(f, 'number'), name: has(f, 'name'), active: has(f, 'active'), ...toProcoreAddress(f),
        start_date: has(f, 'startDate'), completion_date: has(f, 'completionDate'),
      }),
    },
    erp: {
      resource: 'jobs',
      from: (j) => ({
        externalId: id(j.id),
        parentId: null,
        fields: {
          number: str(j.number), name: str(j.name), active: j.status === 'active' ? true : j.status === 'inactive' ? false : null, ...erpAddress(j),
          startDate: str(j.start_date), completionDate: str(j.completion_date),
        },
        updatedAt: str(j.updated_at),
      }),
      to: (f) => defined({
        number: has(f, 'number'), name: has(f, 'name'), status: f.active === undefined ? undefined : f.active === false ? 'inactive' : 'active',
        ...toErpAddress(f), start_date: has(f, 'startDate'), completion_date: has(f, 'completionDate'),
      }),
    },
  },

  cost_code: {
    type: 'cost_code',
    label: 'cost codes',
    displayField: 'code',
    fields: {
      code: { normalize: 'code', sides: both, label: 'Full code' },
      name: { normalize: 'text', sides: both, label: 'Description' },
      active: { normalize: 'bool', sides: erpOnly, label: 'Active' },
    },
    procore: {
      webhookResources: ['Standard Cost Codes', 'Cost Codes'],
      hasOriginCode: false,
      from: (j) => ({
        externalId: id(j.id),
        // Project cost codes belong to a project; standard codes to the company's ERP list.
        parentId: str(j.project_id) ?? (j.biller_type === 'Project' ? str(j.biller_id) : null),
        fields: { code: str(j.full_code) ?? str(j.code), name: str(j.name) },
        updatedAt: str(j.updated_at),
      }),
      to: (f) => defined({ code: has(f, 'code'), name: has(f, 'name') }),
    },
    erp: {
      resource: 'cost-codes',
      from: (j) => ({
        externalId: id(j.id), parentId: str(j.job_id), fields: { code: str(j.code), name: str(j.name), active: typeof j.active === 'boolean' ? j.active : null }, updatedAt: str(j.updated_at),
      }),
      to: (f) => defined({ code: has(f, 'code'), name: has(f, 'name'), active: has(f, 'active') }),
    },
  },

  vendor: {
    type: 'vendor',
    label: 'vendors',
    displayField: 'name',
    fields: {
      name: { normalize: 'text', sides: both, label: 'Name' },
      code: { normalize: 'code', sides: both, label: 'ERP vendor id' },
      taxId: { normalize: 'code', sides: erpOnly, label: 'Tax id' },
      email: { normalize: 'email', sides: both, label: 'E-mail' },
      phone: { normalize: 'phone', sides: both, label: 'Phone' },
      ...address,
      active: { normalize: 'bool', sides: both, label: 'Active' },
    },
    procore: {
      webhookResources: ['Company Vendors'],
      hasOriginCode: true,
      from: (j) => ({
        externalId: id(j.id),
        parentId: null,
        fields: {
          name: str(j.name), code: str(j.origin_code), email: str(j.email_address), phone: str(j.business_phone), ...procoreAddress(j),
          active: typeof j.is_active === 'boolean' ? j.is_active : null,
        },
        updatedAt: str(j.updated_at),
      }),
      to: (f) => defined({
        name: has(f, 'name'), origin_code: has(f, 'code'), email_address: has(f, 'email'), business_phone: has(f, 'phone'),
        ...toProcoreAddress(f), is_active: has(f, 'active'),
      }),
    },
    erp: {
      resource: 'vendors',
      from: (j) => ({
        externalId: id(j.id),
        parentId: null,
        fields: {
          name: str(j.name), code: str(j.code), taxId: str(j.tax_id), email: str(j.email), phone: str(j.phone), ...erpAddress(j),
          active: typeof j.active === 'boolean' ? j.active : null,
        },
        updatedAt: str(j.updated_at),
      }),
      to: (f) => defined({
        name: has(f, 'name'), code: has(f, 'code'), tax_id: has(f, 'taxId'), email: has(f, 'email'), phone: has(f, 'phone'),
        ...toErpAddress(f), active: has(f, 'active'),
      }),
    },
  },
}

export function entity(type: RecordType): EntityDef {
  return Registry[type]
}

/** Canonical fields with every value normalised, for hashing and comparison. */
export function normalizeFields(type: RecordType, fields: Fields): Fields {
  const defs = Registry[type].fields
  const out: Fields = {}
  for (const [name, def] of Object.entries(defs)) {
    if (name in fields) out[name] = Normalizers[def.normalize](fields[name])
  }
  return out
}

/** The record type whose Procore webhooks use this resource name, if we consume it. */
export function typeForProcoreResource(resourceName: string): RecordType | undefined {
  return RecordTypes.find((t) => Registry[t].procore.webhookResources.includes(resourceName))
}

export function typeForErpResource(resource: string): RecordType | undefined {
  return RecordTypes.find((t) => Registry[t].erp.resource === resource)
}
