// The resources the stand-in serves, one entry each (src/procore/README.md §2.1–2.6). The mechanism in
// resources.ts reads only this table; anything resource-specific belongs here.
import { str, type FieldErrors } from './http.js'
import type { Kind, Rec, Store } from './store.js'

export type FilterName =
  | 'updated_at'
  | 'created_at'
  | 'origin_id'
  | 'id'
  | 'project_number'
  | 'name'
  | 'party_id'
  | 'by_status'
  | 'active'
  | 'commitment_id'

export interface ResourceDef {
  kind: Kind
  /** Key wrapping the object in create/update bodies: `{ company_id, vendor: {...} }`. */
  wrapper: string
  /** `project`: every record belongs to one project and requests name it with `project_id`. */
  scope: 'company' | 'project'
  /** Collection paths; `:company_id` / `:project_id` path params name the scope where present. */
  paths: readonly string[]
  syncPaths: readonly string[]
  /** Lists of inactive records (`GET`) and their reactivation (`PATCH .../{id}`). */
  inactivePaths: readonly string[]
  /** Field that marks a record active; main lists then show active records only. */
  activeField?: string
  /** `filters[...]` this endpoint honours; any other filter is ignored, as Procore does. */
  filters: readonly FilterName[]
  /** Plain query parameters a list requires and is narrowed by. */
  listParams: readonly string[]
  required: readonly string[]
  /** Unique per company besides origin_id (which is always unique per company). */
  unique: readonly string[]
  defaults: Record<string, unknown>
  /** Input keys dropped on write (read-only, or not a field of this resource). */
  ignored: readonly string[]
  /** Stored keys left out of the API representation. */
  hidden: readonly string[]
  /** Webhook `resource_name` for changes to this resource. */
  resourceName: string
  /** Why plain create/update is refused for this record (sync still works), if it is. */
  directWriteBlocked?(rec: Rec, store: Store): string | undefined
  /** Input aliases and derived defaults, applied before validation. */
  prepare?(fields: Record<string, unknown>, store: Store, companyId: string): Record<string, unknown>
  validate?(rec: Rec, store: Store): FieldErrors
  /** Computed representation fields. */
  present?(rec: Rec, store: Store): Record<string, unknown>
  /** The fields a list returns for a `view` query value; undefined means all. */
  listView?(view: string | undefined): readonly string[] | undefined
}

const nameOf = (store: Store, kind: Kind, id: unknown): { id: string; name: unknown } | null => {
  const rec = typeof id === 'string' ? store.get(kind, id) : undefined
  return rec ? { id: rec.id, name: rec.name } : null
}

const inCompany = (store: Store, kind: Kind, id: unknown, companyId: string): boolean =>
  typeof id === 'string' && store.get(kind, id)?.company_id === companyId

/** `code` prefixed with its ancestors' codes, e.g. `01-100`. */
function fullCode(store: Store, kind: Kind, rec: Rec): string {
  const codes: string[] = []
  let node: Rec | undefined = rec
  for (let depth = 0; node && depth < 10; depth++) {
    codes.unshift(str(node.code) ?? '')
    node = typeof node.parent_id === 'string' ? store.get(kind, node.parent_id) : undefined
  }
  return codes.join('-')
}

function parentErrors(store: Store, kind: Kind, rec: Rec, sameList?: string): FieldErrors {
  if (rec.parent_id == null) return {}
  const parent = typeof rec.parent_id === 'string' ? store.get(kind, rec.parent_id) : undefined
  const ok =
    parent &&
    parent.company_id === rec.company_id &&
    parent.id !== rec.id &&
    (!sameList || parent[sameList] === rec[sameList])
  return ok ? {} : { parent_id: ['is invalid'] }
}

const USER_API_VERSIONS = ['v1.0', 'v1.1', 'v1.2', 'v1.3'] as const

export const DEFINITIONS: readonly ResourceDef[] = [
  {
    kind: 'departments',
    wrapper: 'department',
    scope: 'company',
    paths: ['/rest/v1.0/departments'],
    syncPaths: [],
    inactivePaths: [],
    filters: [], // §2.1: no filters at all, so reconciliation must full-scan
    listParams: [],
    required: ['name'],
    unique: [],
    defaults: { origin_id: null, origin_data: null },
    ignored: [],
    hidden: [],
    resourceName: 'Departments',
  },
  {
    kind: 'vendors',
    wrapper: 'vendor',
    scope: 'company',
    paths: ['/rest/v1.0/vendors'],
    syncPaths: ['/rest/v1.0/vendors/sync'],
    inactivePaths: ['/rest/v1.0/companies/:company_id/vendors/inactive'],
    activeField: 'is_active',
    filters: ['updated_at', 'created_at', 'origin_id', 'id'],
    listParams: [],
    required: ['name'],
    unique: [],
    defaults: { is_active: true, origin_id: null, origin_data: null, origin_code: null },
    ignored: ['synced_to_erp', 'is_connected', 'contact_count'],
    hidden: [],
    resourceName: 'Company Vendors',
    present: (rec) => ({ synced_to_erp: rec.synced_to_erp ?? rec.origin_id != null }),
  },
  {
    kind: 'projects',
    wrapper: 'project',
    scope: 'company',
    paths: ['/rest/v1.0/projects', '/rest/v1.1/projects', '/rest/v1.0/companies/:company_id/projects'],
    syncPaths: ['/rest/v1.0/projects/sync'],
    inactivePaths: [],
    activeField: 'active',
    filters: ['updated_at', 'created_at', 'origin_id', 'id', 'project_number', 'name', 'by_status'],
    listParams: [],
    required: ['name'],
    unique: [],
    defaults: {
      active: true,
      is_erp_integrated: false,
      standard_cost_code_list_id: null,
      department_ids: [],
      project_number: null,
      origin_id: null,
      origin_data: null,
      origin_code: null,
    },
    ignored: ['display_name', 'departments', 'is_erp_integrated', 'enable_copy_of_standard_cost_codes'],
    hidden: ['department_ids'],
    resourceName: 'Projects',
    prepare(fields, store, companyId) {
      // Written as `erp_integrated`, read back as `is_erp_integrated` (§2.3).
      const { erp_integrated: erp, ...rest } = fields
      if (erp === undefined) return rest
      const out: Record<string, unknown> = { ...rest, is_erp_integrated: erp === true || erp === 'true' }
      const erpList = store.all('standard_cost_code_lists', companyId).find((l) => l.is_erp_list === true)
      if (out.is_erp_integrated === true && out.standard_cost_code_list_id == null && erpList)
        out.standard_cost_code_list_id = erpList.id
      return out
    },
    validate(rec, store) {
      const errors: FieldErrors = {}
      const ids = rec.department_ids
      if (!Array.isArray(ids) || !ids.every((id) => inCompany(store, 'departments', id, rec.company_id)))
        errors.department_ids = ['is invalid']
      if (
        rec.standard_cost_code_list_id != null &&
        !inCompany(store, 'standard_cost_code_lists', rec.standard_cost_code_list_id, rec.company_id)
      ) {
        errors.standard_cost_code_list_id = ['is invalid']
      }
      return errors
    },
    present(rec, store) {
      const ids = Array.isArray(rec.department_ids) ? rec.department_ids : []
      return {
        display_name: str(rec.project_number) ? `${str(rec.project_number)} - ${str(rec.name)}` : rec.name,
        departments: ids.map((id) => nameOf(store, 'departments', id)).filter((d) => d !== null),
        company: { id: rec.company_id, name: store.companies.get(rec.company_id)?.name ?? null },
      }
    },
  },
  {
    kind: 'users',
    wrapper: 'user',
    scope: 'company',
    paths: USER_API_VERSIONS.flatMap((v) => [`/rest/${v}/companies/:company_id/users`, `/rest/${v}/users`]),
    syncPaths: USER_API_VERSIONS.flatMap((v) => [
      `/rest/${v}/companies/:company_id/users/sync`,
      `/rest/${v}/users/sync`,
    ]),
    inactivePaths: USER_API_VERSIONS.map((v) => `/rest/${v}/companies/:company_id/users/inactive`),
    activeField: 'is_active',
    filters: ['updated_at', 'created_at', 'origin_id', 'id', 'active'],
    listParams: [],
    required: ['last_name', 'email_address'],
    unique: ['email_address'],
    defaults: {
      first_name: null,
      is_active: true,
      is_employee: false,
      employee_id: null,
      erp_integrated_accountant: false,
      origin_id: null,
      origin_data: null,
    },
    // users have no origin_code (§2.5)
    ignored: ['origin_code', 'name', 'vendor', 'last_login_at', 'welcome_email_sent_at'],
    hidden: ['vendor_id'],
    resourceName: 'Company Users',
    validate: (rec, store) =>
      rec.vendor_id == null || inCompany(store, 'vendors', rec.vendor_id, rec.company_id)
        ? {}
        : { vendor_id: ['is invalid'] },
    present: (rec, store) => ({
      name: [rec.first_name, rec.last_name].filter((s) => typeof s === 'string' && s !== '').join(' '),
      vendor: nameOf(store, 'vendors', rec.vendor_id),
    }),
  },
  {
    kind: 'standard_cost_code_lists',
    wrapper: 'standard_cost_code_list',
    scope: 'company',
    paths: ['/rest/v1.0/standard_cost_code_lists'],
    syncPaths: [],
    inactivePaths: [],
    filters: [],
    listParams: [],
    required: ['name'],
    unique: [],
    defaults: { is_erp_list: false, available_to_use_on_new_projects: true },
    ignored: [],
    hidden: [],
    resourceName: 'Standard Cost Code Lists',
    validate(rec, store) {
      // A company has only one ERP list (§2.4).
      const other = store
        .all('standard_cost_code_lists', rec.company_id)
        .find((l) => l.is_erp_list === true && l.id !== rec.id)
      return rec.is_erp_list === true && other ? { is_erp_list: ['has already been taken'] } : {}
    },
  },
  {
    kind: 'standard_cost_codes',
    wrapper: 'standard_cost_code',
    scope: 'company',
    paths: ['/rest/v1.0/standard_cost_codes'],
    syncPaths: ['/rest/v1.0/standard_cost_codes/sync'],
    inactivePaths: [],
    filters: ['origin_id', 'id'],
    listParams: ['standard_cost_code_list_id'],
    required: ['name', 'code', 'standard_cost_code_list_id'],
    unique: [],
    defaults: { parent_id: null, origin_id: null, origin_data: null },
    ignored: ['full_code'],
    hidden: [],
    resourceName: 'Standard Cost Codes',
    validate: (rec, store) => ({
      ...(inCompany(store, 'standard_cost_code_lists', rec.standard_cost_code_list_id, rec.company_id)
        ? {}
        : { standard_cost_code_list_id: ['is invalid'] }),
      ...parentErrors(store, 'standard_cost_codes', rec, 'standard_cost_code_list_id'),
    }),
    // §2.4: lists carry only the id and list id unless `view=compact` (adds origin_id) or `view=extended`.
    listView: (view) =>
      view === 'extended'
        ? undefined
        : view === 'compact'
          ? ['id', 'standard_cost_code_list_id', 'origin_id']
          : ['id', 'standard_cost_code_list_id'],
    present: (rec, store) => ({ full_code: fullCode(store, 'standard_cost_codes', rec) }),
  },
  {
    kind: 'cost_codes',
    wrapper: 'cost_code',
    scope: 'project',
    paths: ['/rest/v1.0/cost_codes'],
    syncPaths: ['/rest/v1.0/cost_codes/sync'],
    inactivePaths: [],
    filters: ['origin_id', 'id'],
    listParams: [],
    required: ['name', 'code'],
    unique: [],
    defaults: { parent_id: null, standard_cost_code_id: null, position: null, origin_id: null, origin_data: null },
    ignored: [
      'full_code',
      'sortable_code',
      'biller',
      'biller_id',
      'biller_type',
      'parent',
      'standard_cost_code_list_id',
      'project_id',
    ],
    hidden: ['parent_id', 'project_id'],
    resourceName: 'Cost Codes',
    directWriteBlocked: (rec, store) =>
      store.get('projects', String(rec.project_id))?.is_erp_integrated === true
        ? 'Cost codes of an ERP integrated project can only be created or updated through the sync endpoint'
        : undefined,
    validate: (rec, store) => ({
      ...(rec.standard_cost_code_id == null ||
      inCompany(store, 'standard_cost_codes', rec.standard_cost_code_id, rec.company_id)
        ? {}
        : { standard_cost_code_id: ['is invalid'] }),
      ...parentErrors(store, 'cost_codes', rec),
    }),
    present(rec, store) {
      const project = store.get('projects', String(rec.project_id))
      const full = fullCode(store, 'cost_codes', rec)
      const standard =
        typeof rec.standard_cost_code_id === 'string'
          ? store.get('standard_cost_codes', rec.standard_cost_code_id)
          : undefined
      return {
        full_code: full,
        sortable_code: full,
        parent: rec.parent_id == null ? null : { id: rec.parent_id },
        biller: project?.name ?? null,
        biller_id: rec.project_id,
        biller_type: 'Project',
        budgeted: false,
        standard_cost_code_list_id: standard?.standard_cost_code_list_id ?? null,
        line_item_types: [],
        deleted_at: null,
      }
    },
  },
  {
    kind: 'timecard_entries',
    wrapper: 'timecard_entry',
    scope: 'company',
    paths: ['/rest/v1.0/companies/:company_id/timecard_entries', '/rest/v1.0/projects/:project_id/timecard_entries'],
    syncPaths: [],
    inactivePaths: [],
    filters: ['updated_at', 'created_at', 'id', 'party_id'],
    listParams: [],
    required: [],
    unique: [],
    defaults: { project_id: null, party_id: null, cost_code_id: null, hours: null, origin_id: null, origin_data: null },
    ignored: ['approval_status', 'timecard_type', 'in_progress', 'party', 'cost_code', 'project', 'crew', 'created_by'],
    hidden: ['project_id'],
    resourceName: 'Timecard Entries',
    validate: (rec, store) => ({
      ...(rec.date == null && rec.datetime == null ? { date: ["can't be blank"] } : {}),
      ...(rec.project_id == null || inCompany(store, 'projects', rec.project_id, rec.company_id)
        ? {}
        : { project_id: ['is invalid'] }),
      // §2.6: the spec types a timecard entry's origin_id as an integer.
      ...(rec.origin_id == null || (typeof rec.origin_id === 'number' && Number.isInteger(rec.origin_id))
        ? {}
        : { origin_id: ['must be an integer'] }),
      ...(rec.party_id == null || inCompany(store, 'users', rec.party_id, rec.company_id)
        ? {}
        : { party_id: ['is invalid'] }),
      ...(rec.cost_code_id == null ||
      (inCompany(store, 'cost_codes', rec.cost_code_id, rec.company_id) &&
        (rec.project_id == null || store.get('cost_codes', rec.cost_code_id as string)?.project_id === rec.project_id))
        ? {}
        : { cost_code_id: ['is invalid'] }),
    }),
    present: (rec, store) => ({
      project: nameOf(store, 'projects', rec.project_id),
      party: nameOf(store, 'users', rec.party_id) ?? (rec.party_id == null ? null : { id: rec.party_id }),
      cost_code: nameOf(store, 'cost_codes', rec.cost_code_id),
      approval_status: 'pending',
    }),
  },
  // Company cost types (§2.4): job costs name theirs by id.
  {
    kind: 'line_item_types',
    wrapper: 'line_item_type',
    scope: 'company',
    paths: ['/rest/v1.0/line_item_types'],
    syncPaths: ['/rest/v1.0/line_item_types/sync'],
    inactivePaths: [],
    filters: ['origin_id'],
    listParams: [],
    required: ['name', 'code'],
    unique: ['code'],
    defaults: { base_type: null, origin_id: null, origin_data: null },
    ignored: [],
    hidden: [],
    resourceName: 'Line Item Types',
  },
  // ---- invoices and payments (paths [UNCONFIRMED], as src/procore/resources.ts FinancialPaths) ----
  {
    kind: 'commitments',
    wrapper: 'work_order_contract',
    scope: 'project',
    paths: ['/rest/v1.0/work_order_contracts'],
    syncPaths: [],
    inactivePaths: [],
    filters: ['updated_at', 'origin_id', 'id'],
    listParams: [],
    required: ['vendor_id'],
    unique: [],
    defaults: { number: null, title: null, status: 'Approved', origin_id: null, origin_data: null },
    ignored: ['vendor', 'project_id'],
    hidden: ['vendor_id'],
    resourceName: 'Work Order Contracts',
    validate: (rec, store) =>
      inCompany(store, 'vendors', rec.vendor_id, rec.company_id) ? {} : { vendor_id: ['is invalid'] },
    present: (rec, store) => ({ vendor: nameOf(store, 'vendors', rec.vendor_id) }),
  },
  {
    kind: 'requisitions',
    wrapper: 'requisition',
    scope: 'project',
    paths: ['/rest/v1.0/requisitions'],
    syncPaths: ['/rest/v1.0/requisitions/sync'],
    inactivePaths: [],
    filters: ['updated_at', 'origin_id', 'id', 'commitment_id'],
    listParams: [],
    required: ['commitment_id', 'invoice_number'],
    unique: [],
    defaults: { status: 'draft', amount: '0.00', billing_date: null, origin_id: null, origin_data: null },
    ignored: ['vendor', 'project_id'],
    hidden: [],
    resourceName: 'Requisitions',
    validate: (rec, store) => ({
      ...(store.get('commitments', String(rec.commitment_id))?.project_id === rec.project_id
        ? {}
        : { commitment_id: ['is invalid'] }),
      ...(typeof rec.amount === 'string' && /^-?[0-9]+\.[0-9]{2}$/.test(rec.amount)
        ? {}
        : { amount: ['must be a decimal string with two decimals'] }),
    }),
    // The invoice names its commitment's vendor, with the vendor's ERP id (origin_id) once it is synced.
    present(rec, store) {
      const commitment = store.get('commitments', String(rec.commitment_id))
      const vendor = commitment ? store.get('vendors', String(commitment.vendor_id)) : undefined
      return {
        vendor: vendor
          ? { id: vendor.id, name: vendor.name, origin_id: vendor.origin_id ?? null, origin_code: vendor.origin_code }
          : null,
      }
    },
  },
  {
    kind: 'invoice_payments',
    wrapper: 'invoice_payment',
    scope: 'company',
    paths: ['/rest/v1.0/companies/:company_id/invoice_payments'],
    syncPaths: ['/rest/v1.0/companies/:company_id/invoice_payments/sync'],
    inactivePaths: [],
    filters: ['updated_at', 'origin_id', 'id', 'commitment_id'],
    listParams: [],
    required: ['origin_id', 'commitment_id', 'amount'],
    unique: [],
    defaults: {
      project_id: null,
      requisition_id: null,
      invoice_number: null,
      payment_date: null,
      check_number: null,
      status: 'paid',
      origin_data: null,
    },
    ignored: [],
    hidden: [],
    resourceName: 'Invoice Payments',
    validate: (rec, store) => ({
      ...(inCompany(store, 'commitments', rec.commitment_id, rec.company_id) ? {} : { commitment_id: ['is invalid'] }),
      ...(rec.requisition_id == null || inCompany(store, 'requisitions', rec.requisition_id, rec.company_id)
        ? {}
        : { requisition_id: ['is invalid'] }),
      ...(typeof rec.amount === 'string' && /^-?[0-9]+\.[0-9]{2}$/.test(rec.amount)
        ? {}
        : { amount: ['must be a decimal string with two decimals'] }),
    }),
  },
]

export function definition(kind: Kind): ResourceDef {
  const def = DEFINITIONS.find((d) => d.kind === kind)
  if (!def) throw new Error(`no resource definition for ${kind}`)
  return def
}
