// Payments for synced invoices: the ERP's payments of linked invoices, issued on the Procore
// commitment of each invoice (its Payments Issued tab), keyed by origin_id = the ERP payment id.
import { createHash } from 'node:crypto'
import { sql } from 'kysely'
import { Type, type Static } from 'typebox'
import type { AppContext } from '../context.js'
import type { Tx } from '../db/database.js'
import type { ErpPayment } from '../erp/protocol.js'
import { enqueue } from '../jobs/queue.js'
import { createRun, defineRunKinds, runJob, RunPayload, type JobRun, type RunResult } from '../jobs/runs.js'
import { defineTask } from '../jobs/task.js'
import { failureMessage } from '../sync/connectors.js'
import { money, Normalizers } from '../sync/registry.js'
import { toRun, type Run } from '../sync/runs.js'
import { erpRecords, procoreRecords, type Json } from '../sync/sides.js'
import { financialSyncAvailable } from './available.js'

/** Procore's sync endpoint takes at most this many items per call. */
const BATCH = 1000
/** The ERP's clock is not ours: a run reads payments changed since the last good run started, minus this. */
const OVERLAP_MS = 10 * 60_000
/** Refusals listed on the run; counts cover all. */
const MAX_LISTED = 200
const Count = Type.Integer({ minimum: 0 })

const PaymentItem = Type.Object({
  sourceId: Type.String({ description: 'The ERP payment id.' }),
  status: Type.Enum(['refused']),
  reason: Type.String(),
  invoiceNumber: Type.String(),
  vendorId: Type.String(),
  jobId: Type.Union([Type.String(), Type.Null()]),
})

export const PaymentsResult = Type.Object({
  counts: Type.Object({
    /** ERP payments read (changed since the watermark). */
    listed: Count,
    /** Issued or updated on a Procore commitment. */
    sent: Count,
    /** Already issued exactly so: nothing sent. */
    unchanged: Count,
    /** Not issued, with the reason in items (an invoice not linked, or Procore refused it). */
    refused: Count,
  }),
  items: Type.Array(PaymentItem),
  truncated: Type.Boolean(),
  apiCalls: Type.Object({ procore: Count, erp: Count }),
  /** Where the ERP listing started; null: every payment. */
  since: Type.Union([Type.String(), Type.Null()]),
})
export type PaymentsResult = Static<typeof PaymentsResult>

export const PaymentRunKinds = defineRunKinds(
  {
    payments_for_synced_invoices: {
      params: Type.Object({ full: Type.Boolean() }),
      result: PaymentsResult,
    },
  },
  { describe: failureMessage },
)
type Kind = typeof PaymentRunKinds.payments_for_synced_invoices

/** A payment's invoice key: ERP vendor id, invoice number as codes compare, ERP job id. */
const invoiceKey = (vendorId: string, number: string, jobId: string | null) =>
  `${vendorId}\u0000${String(Normalizers.code(number))}\u0000${jobId ?? ''}`

interface LinkedInvoice {
  procoreId: string
  projectId: string | null
  commitmentId: string | null
}

/**
 * Starts a payments run in the caller's transaction, unless one is queued or running (then that one,
 * `created: false`). `trigger`: schedule, manual, or project_link.
 */
export async function requestPaymentsRunInTx(
  tx: Tx,
  companyId: string,
  params: { full: boolean },
  requestedBy: string,
  origin: { syncType: string; trigger: string },
): Promise<{ run: Run; created: boolean }> {
  const kind = PaymentRunKinds.payments_for_synced_invoices
  await sql`select pg_advisory_xact_lock(hashtext(${`${kind.name}:${companyId}`}))`.execute(tx)
  const active = await tx
    .selectFrom('sync_runs')
    .selectAll()
    .where('company_id', '=', companyId)
    .where('kind', '=', kind.name)
    .where('status', 'in', ['queued', 'running'])
    .executeTakeFirst()
  if (active) return { run: toRun(active), created: false }
  const run = await createRun(tx, kind, companyId, params, requestedBy, origin)
  await enqueue(tx, paymentsTask, { companyId, runId: run.id }, { jobKey: `${paymentsTask.name}:${companyId}` })
  return { run: toRun(run), created: true }
}

/**
 * After project links are made (links.ts): a payments run reading every payment, trigger `project_link`, when
 * the agent serves payments and AP invoices and Procore is connected; a run under way serves.
 */
export async function requestPaymentsAfterLink(tx: Tx, companyId: string): Promise<void> {
  if (!(await financialSyncAvailable(tx, companyId, ['payments', 'ap-invoices']))) return
  const origin = { syncType: 'payments_for_synced_invoices', trigger: 'project_link' }
  await requestPaymentsRunInTx(tx, companyId, { full: true }, 'project_link', origin)
}

/** Where the last successful payments run started, minus the overlap; undefined: read every payment. */
async function watermark(ctx: AppContext, companyId: string, runId: string): Promise<Date | undefined> {
  const last = await ctx.db
    .selectFrom('sync_runs')
    .select('started_at')
    .where('company_id', '=', companyId)
    .where('kind', '=', PaymentRunKinds.payments_for_synced_invoices.name)
    .where('status', '=', 'succeeded')
    .where('id', '!=', runId)
    .where('started_at', 'is not', null)
    .orderBy('started_at', 'desc')
    .executeTakeFirst()
  return last?.started_at ? new Date(last.started_at.getTime() - OVERLAP_MS) : undefined
}

/** Linked invoices by (vendor, number, job), read from both sides' snapshots: no API call. */
async function linkedInvoices(ctx: AppContext, companyId: string): Promise<Map<string, LinkedInvoice>> {
  const rows = await ctx.db
    .selectFrom('record_links as l')
    .innerJoin('record_snapshots as e', (j) =>
      j
        .onRef('e.company_id', '=', 'l.company_id')
        .on('e.type', '=', 'invoice')
        .on('e.side', '=', 'erp')
        .onRef('e.external_id', '=', 'l.erp_id'),
    )
    .innerJoin('record_snapshots as p', (j) =>
      j
        .onRef('p.company_id', '=', 'l.company_id')
        .on('p.type', '=', 'invoice')
        .on('p.side', '=', 'procore')
        .onRef('p.external_id', '=', 'l.procore_id'),
    )
    .select(['l.procore_id', 'e.fields as erp_fields', 'e.parent_id as job_id', 'p.raw as procore_raw'])
    .where('l.company_id', '=', companyId)
    .where('l.type', '=', 'invoice')
    .where('l.unlinked_at', 'is', null)
    .execute()
  const out = new Map<string, LinkedInvoice>()
  for (const r of rows) {
    const f = r.erp_fields
    const raw = r.procore_raw as Record<string, unknown>
    if (typeof f.vendorId !== 'string' || typeof f.number !== 'string') continue
    out.set(invoiceKey(f.vendorId, f.number, r.job_id), {
      procoreId: r.procore_id,
      projectId: typeof raw.project_id === 'string' ? raw.project_id : null,
      commitmentId: typeof raw.commitment_id === 'string' ? raw.commitment_id : null,
    })
  }
  return out
}

/** ERP invoices that are known but not linked, by key: to say why their payments wait. */
async function unlinkedInvoiceKeys(ctx: AppContext, companyId: string): Promise<Map<string, string>> {
  const rows = await ctx.db
    .selectFrom('record_snapshots as e')
    .select(['e.external_id', 'e.fields', 'e.parent_id'])
    .where('e.company_id', '=', companyId)
    .where('e.type', '=', 'invoice')
    .where('e.side', '=', 'erp')
    .where('e.deleted_at', 'is', null)
    .where((eb) =>
      eb.not(
        eb.exists(
          eb
            .selectFrom('record_links as l')
            .select('l.id')
            .whereRef('l.company_id', '=', 'e.company_id')
            .where('l.type', '=', 'invoice')
            .where('l.unlinked_at', 'is', null)
            .whereRef('l.erp_id', '=', 'e.external_id'),
        ),
      ),
    )
    .execute()
  const out = new Map<string, string>()
  for (const r of rows) {
    const f = r.fields
    if (typeof f.vendorId === 'string' && typeof f.number === 'string')
      out.set(invoiceKey(f.vendorId, f.number, r.parent_id), r.external_id)
  }
  return out
}

const fingerprint = (body: Json) => createHash('sha256').update(JSON.stringify(body)).digest('hex')

/**
 * One payments run: reads the ERP's payments changed since the last good run, matches each to its
 * linked invoice, and issues on Procore (≤ 1,000 per call) those whose body differs from what was last
 * issued. A payment of an invoice that is not linked is refused with the reason, and sent by the first
 * run after its invoice is linked (a full run, or one after a project link, reads every payment).
 */
async function runPayments(ctx: AppContext, run: JobRun<Kind>): Promise<RunResult<Kind>> {
  const { companyId } = run
  const since = run.params.full ? undefined : await watermark(ctx, companyId, run.id)
  const erp = await erpRecords(ctx, companyId)
  const calls = { procore: 0, erp: 0 }
  const counts = { listed: 0, sent: 0, unchanged: 0, refused: 0 }
  const items: PaymentsResult['items'] = []
  const refuse = (item: Omit<PaymentsResult['items'][number], 'status'>) => {
    counts.refused += 1
    if (items.length < MAX_LISTED) items.push({ ...item, status: 'refused' })
  }
  const result = (): PaymentsResult => ({
    counts: { ...counts },
    items: [...items],
    truncated: counts.refused > items.length,
    apiCalls: { ...calls },
    since: since?.toISOString() ?? null,
  })
  run.onFailure(() => result())
  const invoices = await linkedInvoices(ctx, companyId)
  const unlinked = await unlinkedInvoiceKeys(ctx, companyId)
  // The newest version of each payment (a payment changed mid-walk may come twice).
  const latest = new Map<string, ErpPayment>()
  for await (const page of erp.payments({ updatedSince: since })) {
    calls.erp += 1
    for (const p of page) latest.set(p.id, p)
    await run.checkCancelled()
  }
  const payments = [...latest.values()]
  counts.listed = payments.length
  const issued = new Map(
    (
      await ctx.db
        .selectFrom('invoice_payments')
        .select(['erp_payment_id', 'fingerprint'])
        .where('company_id', '=', companyId)
        .execute()
    ).map((r) => [r.erp_payment_id, r.fingerprint]),
  )
  const outbox: Array<{ paymentId: string; updatedAt: string; invoice: LinkedInvoice; body: Json; print: string }> = []
  for (const p of payments) {
    const base = { sourceId: p.id, invoiceNumber: p.invoice_number, vendorId: p.vendor_id, jobId: p.job_id }
    const key = invoiceKey(p.vendor_id, p.invoice_number, p.job_id)
    const invoice = invoices.get(key)
    if (!invoice) {
      const erpInvoice = unlinked.get(key)
      refuse({
        ...base,
        reason: erpInvoice
          ? `AP invoice ${erpInvoice} (${p.invoice_number}) is not linked to a Procore invoice; ` +
            'link it (POST …/links) or send the Procore invoice to the ERP, and the next run issues the payment.'
          : `No AP invoice ${p.invoice_number} of vendor ${p.vendor_id}` +
            `${p.job_id ? ` on job ${p.job_id}` : ''} is known; refresh the ERP invoices, then link it.`,
      })
      continue
    }
    if (invoice.commitmentId === null) {
      refuse({ ...base, reason: `Procore invoice ${invoice.procoreId} names no commitment to issue the payment on.` })
      continue
    }
    const amount = money(p.amount)
    if (amount === null) {
      refuse({ ...base, reason: `The amount "${p.amount}" is not a decimal with two decimals.` })
      continue
    }
    const body: Json = {
      origin_id: p.id,
      commitment_id: invoice.commitmentId,
      requisition_id: invoice.procoreId,
      project_id: invoice.projectId,
      invoice_number: p.invoice_number,
      amount,
      payment_date: p.paid_at.slice(0, 10),
      check_number: p.check_number,
      status: p.status ?? 'paid',
    }
    const print = fingerprint(body)
    if (issued.get(p.id) === print) {
      counts.unchanged += 1
      continue
    }
    outbox.push({ paymentId: p.id, updatedAt: p.updated_at, invoice, body, print })
  }
  if (outbox.length > 0) {
    const procore = await procoreRecords(ctx, companyId)
    for (let start = 0; start < outbox.length; start += BATCH) {
      await run.checkCancelled()
      const chunk = outbox.slice(start, start + BATCH)
      const response = await procore.syncInvoicePayments(chunk.map((o) => o.body))
      calls.procore += 1
      const byOrigin = new Map(response.entities.map((e) => [String(e.origin_id), e]))
      const errors = new Map(response.errors.map((e) => [String(e.origin_id), e]))
      const done: Array<{ o: (typeof chunk)[number]; procoreId: string }> = []
      for (const o of chunk) {
        const entity = byOrigin.get(o.paymentId)
        if (entity) {
          done.push({ o, procoreId: String(entity.id) })
          continue
        }
        const error = errors.get(o.paymentId)
        refuse({
          sourceId: o.paymentId,
          invoiceNumber: String(o.body.invoice_number),
          vendorId: '',
          jobId: null,
          reason: `Procore refused the payment: ${error ? JSON.stringify(error.errors ?? error) : 'no result for it'}.`,
        })
      }
      counts.sent += done.length
      if (done.length > 0) {
        await ctx.db
          .insertInto('invoice_payments')
          .values(
            done.map(({ o, procoreId }) => ({
              company_id: companyId,
              erp_payment_id: o.paymentId,
              procore_payment_id: procoreId,
              procore_invoice_id: o.invoice.procoreId,
              commitment_id: o.invoice.commitmentId!,
              fingerprint: o.print,
              erp_updated_at: o.updatedAt,
            })),
          )
          .onConflict((oc) =>
            oc.columns(['company_id', 'erp_payment_id']).doUpdateSet((eb) => ({
              procore_payment_id: eb.ref('excluded.procore_payment_id'),
              procore_invoice_id: eb.ref('excluded.procore_invoice_id'),
              commitment_id: eb.ref('excluded.commitment_id'),
              fingerprint: eb.ref('excluded.fingerprint'),
              erp_updated_at: eb.ref('excluded.erp_updated_at'),
              synced_at: new Date(),
            })),
          )
          .execute()
      }
      await run.progress(result())
    }
  }
  run.log.info({ counts, apiCalls: calls }, 'payments run done')
  return result()
}

/** Performs a payments run; one pending per company (job key). */
export const paymentsTask = defineTask({
  name: 'payments-for-synced-invoices',
  payload: RunPayload,
  maxAttempts: 5,
  jobKey: ({ companyId }) => `payments-for-synced-invoices:${companyId}`,
  jobKeyMode: 'preserve_run_at',
  run: (ctx, { runId }, job) =>
    runJob(ctx, PaymentRunKinds.payments_for_synced_invoices, runId, job, (run) => runPayments(ctx, run)),
})
