import type { ColumnType } from 'kysely'

/** An ERP payment of a linked invoice as last issued on its Procore commitment (Payments Issued). */
export interface InvoicePaymentsTable {
  company_id: ColumnType<string, string, never>
  erp_payment_id: ColumnType<string, string, never>
  procore_payment_id: string
  procore_invoice_id: string
  commitment_id: string
  /** sha256 of the body last sent: the same body again is unchanged and not sent. */
  fingerprint: string
  erp_updated_at: string
  synced_at: ColumnType<Date, Date | undefined, Date>
}
