/**
 * The entity registry: the one place that knows a record type. Every generic mechanism —
 * snapshots, status, suggestions, links, create-on-other-side, discrepancies, audit — reads
 * these entries and nothing else. Adding a record type means adding an entry here.
 *
 * Canonical fields are named in camelCase. A field that exists on only one side is still
 * canonical (it is stored, searched and shown) but is compared only when both sides have it.
 */
import type { ErpSystem } from '../db/tables/companies.js'
import { describeFormat, fitCode, fitsFormat, type CodeFormat } from '../erp/formats.js'
import type { ErpInfo, ErpResource } from '../erp/protocol.js'
import type { ProcoreResource } from '../procore/resources.js'

export const RecordTypes = ['department', 'user', 'project', 'cost_code', 'vendor', 'invoice'] as const
export type RecordType = (typeof RecordTypes)[number]

export type Fields = Record<string, string | boolean | null>

/** The ERP kinds a company can run (companies.erp_system). */
export type ErpKind = ErpSystem
export const ErpKindLabels: Record<ErpKind, string> = {
  foundation: 'Foundation',
  sage300: 'Sage 300 CRE',
  vista: 'Viewpoint Vista',
  spectrum: 'Spectrum',
  quickbooks_desktop: 'QuickBooks Desktop',
  generic: 'the ERP',
}

/** A JSON scalar as text; anything else (objects, arrays) is not a field value. */
function scalar(v: unknown): string | null {
  return typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean'
    ? String(v)
    : typeof v === 'string' && v !== ''
      ? v
      : null
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
  /** Money as a decimal string with two decimals ("0.3" → "0.30"), by string arithmetic: never a float. */
  money: (v: unknown) => (typeof v === 'string' ? money(v) : null),
} as const

/** A decimal string with exactly two decimals, or null when `v` is not a decimal; no float is ever made. */
export function money(v: string): string | null {
  const m = /^\s*(-?)(\d*)(?:\.(\d*))?\s*$/.exec(v)
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) return null
  const frac = (m[3] ?? '').padEnd(2, '0')
  if (/[1-9]/.test(frac.slice(2))) return null
  const whole = (m[2] || '0').replace(/^0+(?=\d)/, '')
  const out = `${whole}.${frac.slice(0, 2)}`
  return m[1] === '-' && out !== '0.00' ? `-${out}` : out
}
export type NormalizerName = keyof typeof Normalizers

export interface FieldDef {
  normalize: NormalizerName
  /** Which sides carry the field. */
  sides: ReadonlyArray<'procore' | 'erp'>
  label: string
  /**
   * False for a field both sides carry but that is only read for matching (e.g. a vendor's tax
   * id, read-only in Procore): it never opens a discrepancy and is never written.
   */
  compare?: false
}

/** An exact match key: records whose normalised values are equal are candidates. */
export interface ExactKey {
  /** Key name in record_keys; also the canonical field it reads. */
  field: string
  /** 0–1: how much an equal value says (scores combine as 1 − Π(1 − weight)). */
  weight: number
  /** An equal value alone makes a strong match (a create is refused, bulk link may take it). */
  strong: boolean
  /** Shown with a suggestion: "same e-mail". */
  reason: string
}

export interface MatchDef {
  exact: readonly ExactKey[]
  /** The name compared by trigram similarity, built from these canonical fields; null: no name matching. */
  name: { fields: readonly string[]; weight: number; strongWhenSame: boolean } | null
}

export interface Mapped {
  externalId: string
  /** The record's container: a project cost code's project (Procore) or job (ERP); null otherwise. */
  parentId: string | null
  fields: Fields
  /** The source's own last-change time, to ignore stale re-reads. */
  updatedAt: string | null
}

/** Facts about the company that link prerequisites read (kept in the database, so checks need no API call). */
export interface LinkFacts {
  /** The company's ERP standard cost code list in Procore; null while it has not been read. */
  erpCostCodeListId: string | null
}

/** The two records a link would pair, as their snapshots hold them. */
export interface LinkPair {
  procore: { id: string; raw: Record<string, unknown>; fields: Fields }
  erp: { id: string; raw: Record<string, unknown>; fields: Fields }
}

/**
 * One condition a link must meet. `unmet` answers null when it holds, else the detail; `procoreFix`,
 * where Procore's API can meet it for this pair, is the partial Procore update that does (applied on
 * request), and `reads` the fields of the Procore record (as Procore answers them) it looks at.
 */
export interface LinkPrerequisite {
  code: string
  unmet(pair: LinkPair, facts: LinkFacts): string | null
  /** What a person does to meet it. */
  fix: string
  reads: readonly string[]
  procoreFix?: (pair: LinkPair, facts: LinkFacts) => Record<string, unknown> | null
}

export interface EntityDef {
  type: RecordType
  /** Plural, for messages: "departments". */
  label: string
  /** Singular, for messages: "department". */
  noun: string
  fields: Record<string, FieldDef>
  /** The field people recognise a record by, for search and messages. */
  displayField: string
  /** Fields `q` searches (substring, case-insensitive). */
  searchFields: readonly string[]
  /**
   * Records of this type may live inside a record of the parent type (project cost codes in a
   * project); in Procore those are read and written through `procoreResource` with the parent's id,
   * the others (standard cost codes) through `procore.resource`.
   */
  parent?: {
    type: RecordType
    procoreResource: ProcoreResource
    /** The Procore webhook resource name of records inside a parent (the others are company-level). */
    procoreWebhookResource: string
    /**
     * Per side, the parent's boolean field (in its raw JSON) that says its children are followed
     * between full listings: Procore's project cost codes follow the ERP only on ERP-integrated projects.
     */
    followedIf?: Partial<Record<'procore' | 'erp', string>>
    /**
     * Records of this side inside a linked parent follow to the other side by themselves (linked
     * where a twin exists, created where not): a job's cost codes follow it to its Procore project.
     */
    follows?: 'procore' | 'erp'
    /**
     * Per side, where records of this type are listed: only under each parent (Procore's invoices, per
     * project) or only company-wide with the parent named in each record (the ERP's AP invoices).
     * Absent: both (cost codes: the standard list and each project's or job's).
     */
    lists?: Partial<Record<'procore' | 'erp', 'parent' | 'company'>>
  }
  /**
   * What must hold before records of this type are linked, checked by every path that creates a
   * link (links.ts insertLinks); a refused link lists every unmet one.
   */
  linkPrerequisites?: readonly LinkPrerequisite[]
  /** Inactive records of this side (`activeField` false) may be archived: set aside, never imported. */
  archivable?: { side: 'procore' | 'erp'; activeField: string }
  match: MatchDef
  /** Canonical fields that must have a value before a record is created on that side. */
  create: {
    procore: {
      required: readonly string[]
      /** Procore settings every record created there gets (a project: ERP-integrated on the ERP list). */
      settings?: (facts: LinkFacts) => Record<string, unknown>
      /**
       * What a record made by onboarding's auto import gets in Procore so it starts with the least
       * access (a user: no permission template, not an ERP accountant); an admin grants more there.
       */
      leastPrivilege?: Record<string, unknown>
    }
    erp: {
      required: readonly string[]
      /** Values the ERP needs that Procore does not carry, derived from the record (e.g. a department code). */
      derive?: (fields: Fields, kind: ErpKind) => Fields
    }
  }
  /**
   * Records of this type can be sent to the ERP for an accounting approver's acceptance
   * (…/exports): the approver's ERP id goes into `erpIdField` (a vendor's code, a job's number);
   * `companyTypes`, when given, are the choices offered on accept.
   */
  export?: {
    erpIdField: string
    companyTypes?: readonly string[]
    /** What else a record must be before it is sent (an invoice: approved), as reasons; none when it may go. */
    requires?: (fields: Fields) => Array<{ code: string; field?: string; detail: string; fix: string }>
  }
  /** The ERP's text limits: field → maximum length, per ERP kind (255 where not listed). */
  erpLimits: Partial<Record<ErpKind, Record<string, number>>>
  /** Fields that hold a code people type (checked for format before they are sent to the ERP). */
  codeFields: readonly string[]
  procore: {
    /** The Procore connector's resource for records of this type (without a parent). */
    resource: ProcoreResource
    /** Webhook `resource_name`s that report changes of this type. */
    webhookResources: readonly string[]
    /** Whether Procore records of this type carry `origin_code` (users and departments do not). */
    hasOriginCode: boolean
    /** With hasOriginCode: the canonical field whose ERP value is written to `origin_code`. */
    originCodeField?: string
    /**
     * Procore's value of originCodeField is `origin_code` itself (vendors), not a field of its
     * own: links write it from the ERP, so it is never compared, owned or written otherwise.
     */
    originCodeIsField?: boolean
    from(json: Record<string, unknown>): Mapped
    /** Procore write body (inside the resource wrapper) for the given canonical fields. */
    to(fields: Fields): Record<string, unknown>
  }
  erp: {
    /** Resource name in the ERP connector protocol. */
    resource: ErpResource
    from(json: Record<string, unknown>): Mapped
    to(fields: Fields): Record<string, unknown>
  }
}

const both = ['procore', 'erp'] as const
const erpOnly = ['erp'] as const
const procoreOnly = ['procore'] as const
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
  address: str(j.address),
  city: str(j.city),
  state: str(j.state_code),
  zip: str(j.zip),
  country: str(j.country_code),
})
const toProcoreAddress = (f: Fields) => ({
  address: has(f, 'address'),
  city: has(f, 'city'),
  state_code: has(f, 'state'),
  zip: has(f, 'zip'),
  country_code: has(f, 'country'),
})
const erpAddress = (j: Record<string, unknown>) => ({
  address: str(j.address),
  city: str(j.city),
  state: str(j.state),
  zip: str(j.zip),
  country: str(j.country),
})
const toErpAddress = (f: Fields) => ({
  address: has(f, 'address'),
  city: has(f, 'city'),
  state: has(f, 'state'),
  zip: has(f, 'zip'),
  country: has(f, 'country'),
})

/**
 * Projects made in Procore by the integration are ERP-integrated, and so on the company's ERP cost code
 * list (Procore's create takes erp_integrated, not the list: PROCORE.md §2.3).
 */
const projectErpSettings = (): Record<string, unknown> => ({ erp_integrated: true })

export const Registry: Record<RecordType, EntityDef> = {
  department: {
    type: 'department',
    label: 'departments',
    noun: 'department',
    displayField: 'name',
    searchFields: ['name', 'code'],
    match: {
      exact: [{ field: 'code', weight: 0.95, strong: true, reason: 'same code' }],
      name: { fields: ['name'], weight: 0.9, strongWhenSame: true },
    },
    create: {
      procore: { required: ['name'] },
      // Procore departments have no code; the ERP needs one: made from the name, within Foundation's 10 characters.
      erp: { required: ['code', 'name'], derive: (f) => (f.code ? {} : { code: codeFromName(f.name, 10) }) },
    },
    erpLimits: { foundation: { code: 10 } },
    codeFields: ['code'],
    fields: {
      name: { normalize: 'text', sides: both, label: 'Name' },
      code: { normalize: 'code', sides: erpOnly, label: 'Code' },
      active: { normalize: 'bool', sides: erpOnly, label: 'Active' },
    },
    procore: {
      resource: 'departments',
      webhookResources: ['Departments'],
      hasOriginCode: false,
      from: (j) => ({
        externalId: id(j.id),
        parentId: null,
        fields: { name: str(j.name) },
        updatedAt: str(j.updated_at),
      }),
      to: (f) => defined({ name: has(f, 'name') }),
    },
    erp: {
      resource: 'departments',
      from: (j) => ({
        externalId: id(j.id),
        parentId: null,
        fields: { name: str(j.name), code: str(j.code), active: typeof j.active === 'boolean' ? j.active : null },
        updatedAt: str(j.updated_at),
      }),
      to: (f) => defined({ name: has(f, 'name'), code: has(f, 'code'), active: has(f, 'active') }),
    },
  },

  user: {
    type: 'user',
    label: 'users',
    noun: 'user',
    displayField: 'email',
    searchFields: ['email', 'firstName', 'lastName', 'employeeNumber'],
    match: {
      exact: [
        { field: 'email', weight: 0.97, strong: true, reason: 'same e-mail' },
        { field: 'employeeNumber', weight: 0.95, strong: true, reason: 'same employee number' },
        { field: 'phone', weight: 0.5, strong: false, reason: 'same phone' },
      ],
      name: { fields: ['firstName', 'lastName'], weight: 0.7, strongWhenSame: false },
    },
    create: {
      procore: {
        required: ['lastName', 'email'],
        // §2.5: templates are set on the user; none means no tool access until an admin gives one.
        leastPrivilege: {
          permission_template_id: null,
          company_permission_template_id: null,
          erp_integrated_accountant: false,
        },
      },
      erp: { required: ['firstName', 'lastName'] },
    },
    erpLimits: {},
    codeFields: ['employeeNumber'],
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
      resource: 'users',
      webhookResources: ['Company Users'],
      hasOriginCode: false,
      from: (j) => ({
        externalId: id(j.id),
        parentId: null,
        fields: {
          firstName: str(j.first_name),
          lastName: str(j.last_name),
          email: str(j.email_address),
          phone: str(j.business_phone) ?? str(j.mobile_phone),
          jobTitle: str(j.job_title),
          employeeNumber: str(j.employee_id),
          active: typeof j.is_active === 'boolean' ? j.is_active : null,
        },
        updatedAt: str(j.updated_at),
      }),
      to: (f) =>
        defined({
          first_name: has(f, 'firstName'),
          last_name: has(f, 'lastName'),
          email_address: has(f, 'email'),
          business_phone: has(f, 'phone'),
          job_title: has(f, 'jobTitle'),
          employee_id: has(f, 'employeeNumber'),
          is_active: has(f, 'active'),
          is_employee: true,
        }),
    },
    erp: {
      resource: 'employees',
      from: (j) => ({
        externalId: id(j.id),
        parentId: null,
        fields: {
          firstName: str(j.first_name),
          lastName: str(j.last_name),
          email: str(j.email),
          phone: str(j.phone),
          jobTitle: str(j.job_title),
          employeeNumber: str(j.employee_number),
          active: typeof j.active === 'boolean' ? j.active : null,
        },
        updatedAt: str(j.updated_at),
      }),
      to: (f) =>
        defined({
          first_name: has(f, 'firstName'),
          last_name: has(f, 'lastName'),
          email: has(f, 'email'),
          phone: has(f, 'phone'),
          job_title: has(f, 'jobTitle'),
          employee_number: has(f, 'employeeNumber'),
          active: has(f, 'active'),
        }),
    },
  },

  project: {
    type: 'project',
    label: 'projects',
    noun: 'project',
    displayField: 'number',
    searchFields: ['number', 'name'],
    match: {
      exact: [{ field: 'number', weight: 0.97, strong: true, reason: 'same project / job number' }],
      name: { fields: ['name'], weight: 0.8, strongWhenSame: false },
    },
    // Procore's ERP Integrations tool creates projects ERP-integrated on the ERP list, with their address.
    create: {
      procore: { required: ['name', 'address', 'city', 'state', 'zip', 'country'], settings: projectErpSettings },
      erp: { required: ['number', 'name'] },
    },
    linkPrerequisites: [
      {
        code: 'procore_project_synced_elsewhere',
        unmet: ({ procore, erp }) => {
          const origin = scalar(procore.raw.origin_id)
          return origin !== null && origin !== erp.id
            ? `Procore project ${procore.id} is already synced to ERP job ${origin} (its origin_id).`
            : null
        },
        fix: 'Pick an unsynced project, or unlink the project from the other job first.',
        reads: ['origin_id'],
      },
      {
        code: 'erp_job_inactive',
        unmet: ({ erp }) =>
          erp.fields.active === false ? `ERP job ${erp.id} is inactive; only active jobs are linked.` : null,
        fix:
          'Archive the inactive job instead (POST …/records/project/erp/{jobId}/archive), ' +
          'or reactivate it in the ERP.',
        reads: [],
      },
      {
        code: 'procore_project_not_erp_integrated',
        unmet: ({ procore }) =>
          procore.raw.is_erp_integrated === true
            ? null
            : `Procore project ${procore.id} does not have the ERP-integrated setting on.`,
        fix: 'Turn on the ERP-integrated setting of the project, or send fix: true to let the service do it.',
        reads: ['is_erp_integrated'],
        // Written as erp_integrated, read back as is_erp_integrated (PROCORE.md §2.3).
        procoreFix: () => ({ erp_integrated: true }),
      },
      {
        code: 'procore_project_not_on_erp_cost_code_list',
        unmet: ({ procore }, facts) => {
          const list = scalar(procore.raw.standard_cost_code_list_id)
          if (facts.erpCostCodeListId === null)
            return "The company's ERP standard cost code list in Procore is not known yet."
          return list === facts.erpCostCodeListId
            ? null
            : `Procore project ${procore.id} uses cost code list ${list ?? 'none'}, ` +
                `not the company's ERP standard cost code list ${facts.erpCostCodeListId}.`
        },
        fix:
          'A project without a list gets the ERP list when it becomes ERP-integrated (fix: true does that); ' +
          "Procore's API cannot move a project from another list, so switch it to the ERP standard cost code list " +
          'in Procore.',
        reads: ['standard_cost_code_list_id'],
        // Procore's project writes take erp_integrated, not the list (§2.3): a project on no list joins the ERP list
        // when it becomes ERP-integrated; one on another list is moved in Procore by a person.
        procoreFix: ({ procore }, facts) =>
          facts.erpCostCodeListId !== null && scalar(procore.raw.standard_cost_code_list_id) === null
            ? { erp_integrated: true }
            : null,
      },
    ],
    archivable: { side: 'erp', activeField: 'active' },
    export: { erpIdField: 'number' },
    erpLimits: {},
    codeFields: ['number'],
    fields: {
      number: { normalize: 'code', sides: both, label: 'Project / job number' },
      name: { normalize: 'text', sides: both, label: 'Name' },
      active: { normalize: 'bool', sides: both, label: 'Active' },
      ...address,
      startDate: { normalize: 'date', sides: both, label: 'Start date' },
      completionDate: { normalize: 'date', sides: both, label: 'Completion date' },
    },
    procore: {
      resource: 'projects',
      webhookResources: ['Projects'],
      hasOriginCode: true,
      originCodeField: 'number',
      from: (j) => ({
        externalId: id(j.id),
        parentId: null,
        fields: {
          number: str(j.project_number),
          name: str(j.name),
          active: typeof j.active === 'boolean' ? j.active : null,
          ...procoreAddress(j),
          startDate: str(j.start_date),
          completionDate: str(j.completion_date),
        },
        updatedAt: str(j.updated_at),
      }),
      to: (f) =>
        defined({
          project_number: has(f, 'number'),
          name: has(f, 'name'),
          active: has(f, 'active'),
          ...toProcoreAddress(f),
          start_date: has(f, 'startDate'),
          completion_date: has(f, 'completionDate'),
        }),
    },
    erp: {
      resource: 'jobs',
      from: (j) => ({
        externalId: id(j.id),
        parentId: null,
        fields: {
          number: str(j.number),
          name: str(j.name),
          active: j.status === 'active' ? true : j.status === 'inactive' ? false : null,
          ...erpAddress(j),
          startDate: str(j.start_date),
          completionDate: str(j.completion_date),
        },
        updatedAt: str(j.updated_at),
      }),
      to: (f) =>
        defined({
          number: has(f, 'number'),
          name: has(f, 'name'),
          status: f.active === undefined ? undefined : f.active === false ? 'inactive' : 'active',
          ...toErpAddress(f),
          start_date: has(f, 'startDate'),
          completion_date: has(f, 'completionDate'),
        }),
    },
  },

  cost_code: {
    type: 'cost_code',
    label: 'cost codes',
    noun: 'cost code',
    displayField: 'code',
    searchFields: ['code', 'name'],
    // Project cost codes match, and are created, only within linked project ↔ job pairs.
    parent: {
      type: 'project',
      procoreResource: 'project_cost_codes',
      procoreWebhookResource: 'Cost Codes',
      followedIf: { procore: 'is_erp_integrated' },
      follows: 'erp',
    },
    match: {
      exact: [{ field: 'code', weight: 0.97, strong: true, reason: 'same full code' }],
      name: { fields: ['name'], weight: 0.6, strongWhenSame: false },
    },
    create: { procore: { required: ['code', 'name'] }, erp: { required: ['code', 'name'] } },
    erpLimits: {},
    codeFields: ['code'],
    fields: {
      code: { normalize: 'code', sides: both, label: 'Full code' },
      name: { normalize: 'text', sides: both, label: 'Description' },
      active: { normalize: 'bool', sides: erpOnly, label: 'Active' },
    },
    procore: {
      resource: 'standard_cost_codes',
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
        externalId: id(j.id),
        parentId: str(j.job_id),
        fields: { code: str(j.code), name: str(j.name), active: typeof j.active === 'boolean' ? j.active : null },
        updatedAt: str(j.updated_at),
      }),
      to: (f) => defined({ code: has(f, 'code'), name: has(f, 'name'), active: has(f, 'active') }),
    },
  },

  vendor: {
    type: 'vendor',
    label: 'vendors',
    noun: 'vendor',
    displayField: 'name',
    searchFields: ['name', 'code', 'email'],
    match: {
      exact: [
        { field: 'code', weight: 0.98, strong: true, reason: 'same ERP vendor id' },
        { field: 'taxId', weight: 0.97, strong: true, reason: 'same tax id' },
        { field: 'email', weight: 0.93, strong: true, reason: 'same e-mail' },
        { field: 'phone', weight: 0.6, strong: false, reason: 'same phone' },
      ],
      name: { fields: ['name'], weight: 0.9, strongWhenSame: true },
    },
    create: { procore: { required: ['name'] }, erp: { required: ['name'] } },
    export: { erpIdField: 'code', companyTypes: ['sub', 'supplier', 'vendor', 'consultant', 'owner', 'other'] },
    // Procore's own "send to ERP" limits; Foundation codes are at most 10 characters.
    erpLimits: {
      foundation: { name: 30, code: 10 },
      sage300: { name: 30 },
      spectrum: { name: 30 },
      quickbooks_desktop: { name: 41 },
      vista: { name: 60 },
    },
    codeFields: ['code'],
    fields: {
      name: { normalize: 'text', sides: both, label: 'Name' },
      code: { normalize: 'code', sides: both, label: 'ERP vendor id' },
      // Procore shows it read-only (business_id): good for matching, never compared or written.
      taxId: { normalize: 'code', sides: both, label: 'Tax id', compare: false },
      email: { normalize: 'email', sides: both, label: 'E-mail' },
      phone: { normalize: 'phone', sides: both, label: 'Phone' },
      ...address,
      active: { normalize: 'bool', sides: both, label: 'Active' },
    },
    procore: {
      resource: 'vendors',
      webhookResources: ['Company Vendors'],
      hasOriginCode: true,
      originCodeField: 'code',
      originCodeIsField: true,
      from: (j) => ({
        externalId: id(j.id),
        parentId: null,
        fields: {
          name: str(j.name),
          code: str(j.origin_code),
          taxId: str(j.business_id),
          email: str(j.email_address),
          phone: str(j.business_phone),
          ...procoreAddress(j),
          active: typeof j.is_active === 'boolean' ? j.is_active : null,
        },
        updatedAt: str(j.updated_at),
      }),
      to: (f) =>
        defined({
          name: has(f, 'name'),
          origin_code: has(f, 'code'),
          email_address: has(f, 'email'),
          business_phone: has(f, 'phone'),
          ...toProcoreAddress(f),
          is_active: has(f, 'active'),
        }),
    },
    erp: {
      resource: 'vendors',
      from: (j) => ({
        externalId: id(j.id),
        parentId: null,
        fields: {
          name: str(j.name),
          code: str(j.code),
          taxId: str(j.tax_id),
          email: str(j.email),
          phone: str(j.phone),
          ...erpAddress(j),
          active: typeof j.active === 'boolean' ? j.active : null,
        },
        updatedAt: str(j.updated_at),
      }),
      to: (f) =>
        defined({
          name: has(f, 'name'),
          code: has(f, 'code'),
          tax_id: has(f, 'taxId'),
          email: has(f, 'email'),
          phone: has(f, 'phone'),
          ...toErpAddress(f),
          active: has(f, 'active'),
        }),
    },
  },

  // ---- invoices (src/financials/payments*.ts reads their links) ------------------------------
  /**
   * A subcontractor invoice on a commitment in Procore and its twin, the ERP's AP invoice (protocol 1.2):
   * matched within a linked project ↔ job pair by linked vendor + invoice number. The vendor is read as
   * its ERP id on both sides — in Procore, the origin_id of the commitment's vendor, which only a linked
   * vendor carries — so an invoice of an unlinked vendor matches nothing. Procore lists invoices per
   * project (no webhook resource: the schedule's incremental listings find changes); the ERP lists them
   * company-wide, each naming its job.
   */
  invoice: {
    type: 'invoice',
    label: 'invoices',
    noun: 'invoice',
    displayField: 'number',
    searchFields: ['number', 'reference'],
    parent: {
      type: 'project',
      procoreResource: 'requisitions',
      procoreWebhookResource: 'Requisitions',
      followedIf: { procore: 'is_erp_integrated' },
      lists: { procore: 'parent', erp: 'company' },
    },
    match: {
      exact: [
        { field: 'vendorInvoice', weight: 0.99, strong: true, reason: 'same linked vendor and invoice number' },
        { field: 'number', weight: 0.6, strong: false, reason: 'same invoice number' },
      ],
      name: null,
    },
    create: {
      procore: { required: ['number', 'vendorId', 'amount'] },
      erp: { required: ['number', 'vendorId', 'amount'] },
    },
    // The approver enters the ERP's AP reference (voucher number) on accept.
    export: {
      erpIdField: 'reference',
      requires: (f) => [
        ...(f.status === 'approved'
          ? []
          : [
              {
                code: 'invoice_not_approved',
                field: 'status',
                detail:
                  `The invoice is ${typeof f.status === 'string' ? f.status : 'not approved'}; ` +
                  'only approved invoices go to the ERP.',
                fix: 'Approve the invoice in Procore, then send it.',
              },
            ]),
        ...(f.vendorId
          ? []
          : [
              {
                code: 'vendor_not_synced',
                field: 'vendorId',
                detail: "The commitment's vendor is not synced with the ERP (it has no ERP id).",
                fix: 'Link or export the vendor first.',
              },
            ]),
      ],
    },
    erpLimits: {},
    codeFields: ['number'],
    fields: {
      number: { normalize: 'code', sides: both, label: 'Invoice number' },
      // The vendor's ERP id on both sides: match-only, and the ERP create's vendor_id.
      vendorId: { normalize: 'code', sides: both, label: 'Vendor (ERP id)', compare: false },
      vendorInvoice: { normalize: 'code', sides: both, label: 'Vendor and invoice number', compare: false },
      amount: { normalize: 'money', sides: both, label: 'Amount' },
      invoiceDate: { normalize: 'date', sides: both, label: 'Invoice date' },
      status: { normalize: 'text', sides: procoreOnly, label: 'Status' },
      reference: { normalize: 'code', sides: erpOnly, label: 'ERP AP reference' },
    },
    procore: {
      resource: 'requisitions',
      webhookResources: [],
      hasOriginCode: false,
      from: (j) => {
        const vendor = (j.vendor ?? null) as Record<string, unknown> | null
        const vendorId = str(vendor?.origin_id)
        const number = str(j.invoice_number)
        return {
          externalId: id(j.id),
          parentId: str(j.project_id),
          fields: {
            number,
            vendorId,
            vendorInvoice: vendorId && number ? `${vendorId}/${number}` : null,
            amount: str(j.amount),
            invoiceDate: str(j.billing_date),
            status: str(j.status),
          },
          updatedAt: str(j.updated_at),
        }
      },
      to: (f) =>
        defined({ invoice_number: has(f, 'number'), amount: has(f, 'amount'), billing_date: has(f, 'invoiceDate') }),
    },
    erp: {
      resource: 'ap-invoices',
      from: (j) => {
        const vendorId = str(j.vendor_id)
        const number = str(j.invoice_number)
        return {
          externalId: id(j.id),
          parentId: str(j.job_id),
          fields: {
            number,
            vendorId,
            vendorInvoice: vendorId && number ? `${vendorId}/${number}` : null,
            amount: str(j.amount),
            invoiceDate: str(j.invoice_date),
            reference: str(j.reference),
          },
          updatedAt: str(j.updated_at),
        }
      },
      to: (f) =>
        defined({
          invoice_number: has(f, 'number'),
          vendor_id: has(f, 'vendorId'),
          amount: has(f, 'amount') === null ? undefined : has(f, 'amount'),
          invoice_date: has(f, 'invoiceDate'),
          reference: has(f, 'reference'),
        }),
    },
  },
}

/** The record types that can be sent to the ERP for acceptance. */
export const exportableTypes = (): RecordType[] => RecordTypes.filter((t) => Registry[t].export !== undefined)

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

/** The Procore resource that holds records of this type, inside `parentId` when given. */
export function procoreResource(type: RecordType, parentId: string | null | undefined): ProcoreResource {
  const def = Registry[type]
  return parentId != null && def.parent ? def.parent.procoreResource : def.procore.resource
}

/** Every Procore webhook resource name the registry consumes. */
export const consumedProcoreWebhookResources = (): string[] => [
  ...new Set(RecordTypes.flatMap((t) => Registry[t].procore.webhookResources)),
]

export function typeForErpResource(resource: string): RecordType | undefined {
  return RecordTypes.find((t) => Registry[t].erp.resource === resource)
}

/** The other side. */
export const otherSide = (side: 'procore' | 'erp'): 'procore' | 'erp' => (side === 'procore' ? 'erp' : 'procore')

/** Fields compared between linked records: carried by both sides, not match-only, not the link's own origin_code. */
export function comparedFields(type: RecordType): string[] {
  const origin = originCodeOnly(type)
  return Object.entries(Registry[type].fields)
    .filter(([name, d]) => d.sides.length === 2 && d.compare !== false && name !== origin)
    .map(([name]) => name)
}

/** The field whose Procore value is origin_code itself, kept by the link mechanism (see originCodeIsField). */
export function originCodeOnly(type: RecordType): string | undefined {
  const p = Registry[type].procore
  return p.hasOriginCode && p.originCodeIsField ? p.originCodeField : undefined
}

/** The named fields of a record (null where it has none), for before/after values in the audit. */
export const pickFields = (fields: Fields, names: readonly string[]): Fields =>
  Object.fromEntries(names.map((n) => [n, fields[n] ?? null]))

/** Whether two values of a field are the same once normalised. */
export function sameValue(type: RecordType, field: string, a: unknown, b: unknown): boolean {
  const def = Registry[type].fields[field]
  if (!def) return a === b
  return Normalizers[def.normalize](a) === Normalizers[def.normalize](b)
}

const LEGAL_SUFFIXES = new Set([
  'inc',
  'incorporated',
  'llc',
  'l l c',
  'ltd',
  'limited',
  'co',
  'corp',
  'corporation',
  'company',
  'lp',
  'llp',
  'pllc',
  'pc',
  'the',
])

/**
 * A name as it is compared for matching: lower case, without accents, punctuation, legal forms
 * ("Inc.", "LLC") or the article "the", so "The Acme Concrete Co., Inc." and "ACME CONCRETE" are equal.
 */
export function matchName(value: string): string | null {
  const words = value
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/&/g, ' and ')
    .replace(/[^a-z0-9]+/g, ' ')
    .trim()
    .split(' ')
  const kept = words.filter((w) => w !== '' && !LEGAL_SUFFIXES.has(w))
  return kept.length > 0 ? kept.join(' ') : words.filter((w) => w !== '').join(' ') || null
}

/**
 * The normalised match keys of one record, as stored in record_keys. `origin` pairs Procore's origin_id with the ERP
 * id.
 */
export function matchKeys(
  type: RecordType,
  side: 'procore' | 'erp',
  record: { externalId: string; fields: Fields; raw: unknown },
): Array<{ key: string; value: string }> {
  const def = Registry[type]
  const keys: Array<{ key: string; value: string }> = []
  for (const k of def.match.exact) {
    const field = def.fields[k.field]
    if (!field?.sides.includes(side)) continue
    const value = Normalizers[field.normalize](record.fields[k.field])
    if (typeof value === 'string' && value !== '') keys.push({ key: k.field, value })
  }
  if (def.match.name) {
    const text = def.match.name.fields
      .map((f) => record.fields[f])
      .filter((v): v is string => typeof v === 'string' && v.trim() !== '')
      .join(' ')
    const name = text ? matchName(text) : null
    if (name) keys.push({ key: 'name', value: name })
  }
  const raw = record.raw as Record<string, unknown> | null
  const origin =
    side === 'erp'
      ? record.externalId
      : raw &&
          (typeof raw.origin_id === 'string' || typeof raw.origin_id === 'number' || typeof raw.origin_id === 'bigint')
        ? String(raw.origin_id)
        : ''
  if (origin !== '') keys.push({ key: 'origin', value: origin })
  return keys
}

/** How an exact key of a type scores; `origin` is every type's strongest key. */
export function exactKeys(type: RecordType): ExactKey[] {
  return [
    {
      field: 'origin',
      weight: 0.995,
      strong: true,
      reason: 'the Procore record already carries this ERP id (origin_id)',
    },
    ...Registry[type].match.exact,
  ]
}

/** A code for the ERP made from a name: letters and digits, upper case, at most `max` characters. */
export function codeFromName(name: unknown, max: number): string | null {
  if (typeof name !== 'string') return null
  const code = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toUpperCase()
    .replace(/[^A-Z0-9]/g, '')
    .slice(0, max)
  return code || null
}

export interface FieldProblem {
  field: string
  message: string
}

/**
 * What the company's agent itself declares in `/v1/info` `limits` (its last connection test):
 * `max_lengths` in code points and, from protocol 1.1, code `formats`, by resource and protocol field.
 */
export type AgentLimits = Partial<Pick<ErpInfo['limits'], 'max_lengths' | 'formats'>>

/** The protocol's name of a canonical field (`employeeNumber` → `employee_number`), if the ERP carries it. */
export function erpFieldName(type: RecordType, field: string): string | undefined {
  return Object.keys(Registry[type].erp.to({ [field]: 'x' }))[0]
}

function agentRule<T>(
  type: RecordType,
  field: string,
  table: Record<string, Record<string, T>> | undefined,
): T | undefined {
  const name = erpFieldName(type, field)
  return name === undefined ? undefined : table?.[Registry[type].erp.resource]?.[name]
}

/** The format the agent declares for a canonical field, if any. */
export function erpFormat(type: RecordType, field: string, agent?: AgentLimits): CodeFormat | undefined {
  return agentRule(type, field, agent?.formats)
}

/**
 * Longest text the ERP accepts in a field: the protocol's 255 unless this ERP kind or the agent's
 * own `max_lengths` says less.
 */
export function erpMaxLength(type: RecordType, kind: ErpKind, field: string, agent?: AgentLimits): number {
  const declared = agentRule(type, field, agent?.max_lengths) ?? 255
  return Math.min(Registry[type].erpLimits[kind]?.[field] ?? 255, declared)
}

/**
 * Values the ERP needs that the source record does not carry (a department code), made to fit the
 * agent's declared format: a derived code that breaks it is made again from the record's display
 * name (`fitCode`), skipping codes `taken` says are in use. A field the caller gave is kept as is.
 */
export function erpDerived(
  type: RecordType,
  kind: ErpKind,
  fields: Fields,
  agent?: AgentLimits,
  taken: (field: string, code: string) => boolean = () => false,
): Fields {
  const def = Registry[type]
  const derived = { ...(def.create.erp.derive?.(fields, kind) ?? {}) }
  for (const [field, value] of Object.entries(derived)) {
    const format = erpFormat(type, field, agent)
    if (format === undefined || (typeof value === 'string' && fitsFormat(value, format))) continue
    const name = fields[def.displayField]
    derived[field] = fitCode(typeof name === 'string' ? name : '', format, (code) => taken(field, code))
  }
  return derived
}

/**
 * The ERP's rules checked before anything is sent: required fields (on create), text lengths
 * of this ERP, code format. Messages name the field, the limit and the fix.
 */
export function erpProblems(
  type: RecordType,
  kind: ErpKind,
  fields: Fields,
  mode: 'create' | 'update',
  agent?: AgentLimits,
): FieldProblem[] {
  const def = Registry[type]
  const problems: FieldProblem[] = []
  const erp = ErpKindLabels[kind]
  if (mode === 'create') {
    for (const name of def.create.erp.required) {
      const v = fields[name]
      if (v === null || v === undefined || (typeof v === 'string' && v.trim() === '')) {
        problems.push({
          field: name,
          message:
            `${def.fields[name]?.label ?? name} is required to create a ${def.noun} in ${erp}; ` +
            'fill it in Procore first',
        })
      }
    }
  }
  for (const [name, value] of Object.entries(fields)) {
    if (typeof value !== 'string' || !def.fields[name]?.sides.includes('erp')) continue
    const max = erpMaxLength(type, kind, name, agent)
    const length = [...value].length
    if (length > max) {
      problems.push({
        field: name,
        message:
          `${def.fields[name]?.label ?? name} must be at most ${max} characters in ${erp} (it has ${length}); ` +
          'shorten it and retry',
      })
    }
    if (def.codeFields.includes(name) && (/\p{Cc}/u.test(value) || value !== value.trim())) {
      problems.push({
        field: name,
        message:
          `${def.fields[name]?.label ?? name} "${value}" has leading or trailing spaces or control characters, ` +
          `which ${erp} codes cannot hold; correct it and retry`,
      })
    }
    const format = value === '' ? undefined : erpFormat(type, name, agent)
    if (format !== undefined && !fitsFormat(value, format)) {
      problems.push({
        field: name,
        message:
          `${def.fields[name]?.label ?? name} "${value}" does not fit ${erp}'s format: ${describeFormat(format)}; ` +
          (mode === 'create' && def.codeFields.includes(name)
            ? 'give the code to use in `codes` and retry'
            : 'correct it and retry'),
      })
    }
  }
  return problems
}

/** Fields missing for a create in Procore. */
export function procoreProblems(type: RecordType, fields: Fields): FieldProblem[] {
  const def = Registry[type]
  return def.create.procore.required
    .filter((name) => {
      const v = fields[name]
      return v === null || v === undefined || (typeof v === 'string' && v.trim() === '')
    })
    .map((name) => ({
      field: name,
      message:
        `${def.fields[name]?.label ?? name} is required to create a ${def.noun} in Procore; ` +
        'fill it in the ERP first',
    }))
}

/**
 * The ERP write body for canonical fields. The protocol sends "" for empty text and refuses
 * null there, so null text becomes ""; an unknown boolean is left out. With `create`, empty
 * values are left out and the ERP applies its defaults.
 */
export function erpBody(type: RecordType, fields: Fields, mode: 'create' | 'update'): Record<string, unknown> {
  const def = Registry[type]
  const out: Fields = {}
  for (const [name, value] of Object.entries(fields)) {
    const fd = def.fields[name]
    if (!fd?.sides.includes('erp')) continue
    if (value === null || value === '') {
      if (mode === 'create' || fd.normalize === 'bool') continue
      out[name] = fd.normalize === 'date' ? null : ''
    } else out[name] = value
  }
  return def.erp.to(out)
}

/** The Procore write body for canonical fields (without the empty ones on create). */
export function procoreBody(type: RecordType, fields: Fields, mode: 'create' | 'update'): Record<string, unknown> {
  const def = Registry[type]
  const out: Fields = {}
  for (const [name, value] of Object.entries(fields)) {
    const fd = def.fields[name]
    if (!fd?.sides.includes('procore') || fd.compare === false) continue
    if (mode === 'create' && (value === null || value === '')) continue
    out[name] = value
  }
  return def.procore.to(out)
}

/** The record types whose records live inside a record of this type, and follow it from `follows`' side. */
export function dependentTypes(type: RecordType): RecordType[] {
  return RecordTypes.filter((t) => Registry[t].parent?.type === type)
}
