// Procore's JSON for the resources we read and write, as TypeBox schemas:
// responses are checked against them (ids already turned into decimal strings by ids.ts), so a
// changed or broken upstream body fails loudly at the edge instead of deep in the sync domain.
// Objects stay open: Procore adds fields, and we keep the raw record in snapshots.
import { Type, type Static, type TSchema } from 'typebox'

/** A Procore record as its JSON object (ids as decimal strings). */
export type Json = Record<string, unknown>

const Id = Type.String({ pattern: '^\\d{1,19}$' })
const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()])
const Text = Type.Optional(Nullable(Type.String()))
const Flag = Type.Optional(Nullable(Type.Boolean()))
const RefId = Type.Optional(Nullable(Id))
/** origin_id is text in most resources, an integer in timecard entries. */
const Origin = Type.Optional(Nullable(Type.Union([Type.String(), Type.Number(), Type.BigInt()])))
const Stamps = { created_at: Text, updated_at: Text }
const OriginFields = { origin_id: Origin, origin_data: Text }

export const Department = Type.Object({ id: Id, name: Text, ...OriginFields, ...Stamps })
export const Vendor = Type.Object({
  id: Id,
  name: Text,
  abbreviated_name: Text,
  address: Text,
  city: Text,
  state_code: Text,
  zip: Text,
  country_code: Text,
  business_phone: Text,
  mobile_phone: Text,
  email_address: Text,
  is_active: Flag,
  origin_code: Text,
  ...OriginFields,
  ...Stamps,
})
export const Project = Type.Object({
  id: Id,
  name: Text,
  display_name: Text,
  project_number: Text,
  active: Flag,
  address: Text,
  city: Text,
  state_code: Text,
  zip: Text,
  country_code: Text,
  start_date: Text,
  completion_date: Text,
  is_erp_integrated: Flag,
  standard_cost_code_list_id: RefId,
  origin_code: Text,
  ...OriginFields,
  ...Stamps,
})
export const CompanyUser = Type.Object({
  id: Id,
  first_name: Text,
  last_name: Text,
  email_address: Text,
  job_title: Text,
  business_phone: Text,
  mobile_phone: Text,
  employee_id: Text,
  is_active: Flag,
  is_employee: Flag,
  ...OriginFields,
  ...Stamps,
})
/** A company the credentials can act for (`GET /rest/v1.0/companies`). */
export const ProcoreCompany = Type.Object({ id: Id, name: Text, is_active: Flag })
export const StandardCostCodeList = Type.Object({
  id: Id,
  name: Text,
  is_erp_list: Flag,
  available_to_use_on_new_projects: Flag,
})
export const StandardCostCode = Type.Object({
  id: Id,
  standard_cost_code_list_id: RefId,
  parent_id: RefId,
  code: Text,
  full_code: Text,
  name: Text,
  ...OriginFields,
  ...Stamps,
})
export const CostCode = Type.Object({
  id: Id,
  code: Text,
  full_code: Text,
  name: Text,
  biller_id: RefId,
  biller_type: Text,
  standard_cost_code_id: RefId,
  ...OriginFields,
  ...Stamps,
})
export const TimecardEntry = Type.Object({
  id: Id,
  date: Text,
  datetime: Text,
  hours: Type.Optional(Nullable(Type.Union([Type.String(), Type.Number()]))),
  time_in: Text,
  time_out: Text,
  party_id: RefId,
  cost_code_id: RefId,
  sub_job_id: RefId,
  line_item_type_id: RefId,
  timecard_time_type_id: RefId,
  billable: Flag,
  description: Text,
  ...OriginFields,
  ...Stamps,
})
/** What we may write into a timecard entry. */
export const TimecardEntryWrite = Type.Object({
  date: Type.Optional(Type.String()),
  datetime: Type.Optional(Type.String()),
  hours: Type.Optional(Type.Union([Type.String(), Type.Number()])),
  time_in: Type.Optional(Type.String()),
  time_out: Type.Optional(Type.String()),
  lunch_time: Type.Optional(Type.Number()),
  party_id: Type.Optional(Id),
  cost_code_id: Type.Optional(Id),
  sub_job_id: Type.Optional(Id),
  line_item_type_id: Type.Optional(Id),
  timecard_time_type_id: Type.Optional(Id),
  project_id: Type.Optional(Id),
  billable: Type.Optional(Type.Boolean()),
  description: Type.Optional(Type.String()),
  origin_id: Type.Optional(Type.Union([Type.String(), Type.Number()])),
  origin_data: Type.Optional(Type.String()),
})

export const Hook = Type.Object({
  id: Id,
  api_version: Text,
  destination_url: Text,
  namespace: Text,
  destination_headers: Type.Optional(Nullable(Type.Record(Type.String(), Type.Unknown()))),
  owned_by_company_id: RefId,
  owned_by_project_id: RefId,
})
export const Trigger = Type.Object({
  id: Id,
  webhook_hook_id: RefId,
  resource_name: Type.String(),
  event_type: Type.String(),
  api_version: Text,
})
export const WebhookResource = Type.Object({
  resource_name: Type.String(),
  except: Type.Optional(Nullable(Type.Array(Type.String()))),
})
export const BulkTriggersResult = Type.Object({
  success: Type.Optional(Type.Array(Type.Unknown())),
  failed: Type.Optional(
    Type.Array(
      Type.Object({ trigger: Type.Optional(Type.Unknown()), message: Text, errors: Type.Optional(Type.Unknown()) }),
    ),
  ),
})
/** `PATCH …/sync` always answers 200 with per-item results. */
// ---- invoices and payments (src/financials/payments*.ts) ----------------------------------
/** Money as Procore's ERP endpoints take it here: a decimal string, never a float. */
const Money = Type.Optional(Nullable(Type.String({ pattern: '^-?[0-9]+(\\.[0-9]+)?$' })))
/** A subcontractor invoice (requisition) on a commitment; `vendor` is the commitment's vendor. */
export const Requisition = Type.Object({
  id: Id,
  project_id: RefId,
  commitment_id: RefId,
  invoice_number: Text,
  status: Text,
  amount: Money,
  billing_date: Text,
  vendor: Type.Optional(Nullable(Type.Object({ id: Id, name: Text, origin_id: Origin, origin_code: Text }))),
  ...OriginFields,
  ...Stamps,
})
/** A payment issued on a commitment (its Payments Issued tab), keyed by origin_id = the ERP payment id. */
export const InvoicePayment = Type.Object({
  id: Id,
  project_id: RefId,
  commitment_id: RefId,
  requisition_id: RefId,
  invoice_number: Text,
  amount: Money,
  payment_date: Text,
  check_number: Text,
  status: Text,
  ...OriginFields,
  ...Stamps,
})
export type InvoicePayment = Static<typeof InvoicePayment>

export const SyncResult = Type.Object({
  entities: Type.Array(Type.Record(Type.String(), Type.Unknown())),
  errors: Type.Array(Type.Record(Type.String(), Type.Unknown())),
})

export type Department = Static<typeof Department>
export type Vendor = Static<typeof Vendor>
export type Project = Static<typeof Project>
export type CompanyUser = Static<typeof CompanyUser>
export type ProcoreCompany = Static<typeof ProcoreCompany>
export type StandardCostCodeList = Static<typeof StandardCostCodeList>
export type StandardCostCode = Static<typeof StandardCostCode>
export type CostCode = Static<typeof CostCode>
export type TimecardEntry = Static<typeof TimecardEntry>
export type TimecardEntryWrite = Static<typeof TimecardEntryWrite>
export type Hook = Static<typeof Hook>
export type Trigger = Static<typeof Trigger>
export type WebhookResource = Static<typeof WebhookResource>
export type BulkTriggersResult = Static<typeof BulkTriggersResult>
export type SyncResult = Static<typeof SyncResult>
