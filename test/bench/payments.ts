// Benchmark of payments for synced invoices: Procore calls for 1,000 ERP payments of linked invoices.
// Prints figures; asserts nothing about time.
//
//   npx tsx test/bench/payments.ts            # on TEST_DATABASE_URL / DATABASE_URL or an embedded PostgreSQL
//   npx tsx test/bench/payments.ts --invoices=100 --per=10
//
// A linked vendor and project ↔ job, `invoices` approved Procore invoices on one commitment with their ERP
// twins (linked by a bulk link on linked vendor + invoice number), and `per` ERP payments of each. Then the
// payments run twice: the first issues every payment on the commitment, the re-run finds them unchanged.
import { setTimeout as sleep } from 'node:timers/promises'
import { startEnvironment } from '../sync/fixtures/environment.js'

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1]
const invoices = Number(arg('invoices') ?? 100)
const per = Number(arg('per') ?? 10)
const ids: Record<string, string> = {}

const env = await startEnvironment({
  serverUrl: process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL,
  // It counts calls, not time: a busy shared machine must not have the overload guard refuse the set-up.
  env: { PRESSURE_MAX_EVENT_LOOP_DELAY_MS: '0' },
  seed: (procore, erp, c) => {
    ids.pVendor = procore.seed(c, 'vendors', { name: 'Acme Concrete' }).id
    ids.eVendor = erp.seed('vendors', { name: 'Acme Concrete', code: 'ACME01' }).id
    ids.pProject = procore.seed(c, 'projects', { name: 'Bench Tower', project_number: 'B-1', erp_integrated: true }).id
    ids.eJob = erp.seed('jobs', { number: 'B-1', name: 'Bench Tower', status: 'active' }).id
    const sub = procore.seed(c, 'commitments', { vendor_id: ids.pVendor, number: 'SC-1' }, { projectId: ids.pProject })
    for (let i = 1; i <= invoices; i++) {
      const number = `INV-${String(i).padStart(5, '0')}`
      const amount = `${per}.00`
      procore.seed(
        c,
        'requisitions',
        { commitment_id: sub.id, invoice_number: number, status: 'approved', amount },
        { projectId: ids.pProject },
      )
      erp.seed('ap-invoices', { invoice_number: number, vendor_id: ids.eVendor, job_id: ids.eJob, amount })
      for (let k = 0; k < per; k++)
        erp.seedPayment({ vendor_id: ids.eVendor, job_id: ids.eJob, invoice_number: number, amount: '1.00' })
    }
  },
})
try {
  const c = env.companyId
  const must = async (what: string, status: number, p: ReturnType<typeof env.call>) => {
    const r = await p
    if (r.status !== status) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body)}`)
    return r
  }
  const key = () => ({ 'idempotency-key': crypto.randomUUID() })
  await must(
    'link vendor',
    201,
    env.call(
      'POST',
      `/v1/companies/${c}/links`,
      {
        type: 'vendor',
        procoreId: ids.pVendor,
        erpId: ids.eVendor,
      },
      key(),
    ),
  )
  while (env.procore.get(c, 'vendors', ids.pVendor!)?.origin_id !== ids.eVendor) await sleep(50)
  await must(
    'link project',
    201,
    env.call(
      'POST',
      `/v1/companies/${c}/links`,
      {
        type: 'project',
        procoreId: ids.pProject,
        erpId: ids.eJob,
        fix: true,
      },
      key(),
    ),
  )
  // The invoices, read again now that their vendor carries its ERP id, then linked in bulk.
  const reconcile = await must(
    'reconcile',
    202,
    env.call('POST', `/v1/companies/${c}/procore/reconcile`, {
      full: true,
      types: ['invoice'],
    }),
  )
  await env.waitRun(reconcile.body.id)
  const bulk = await must(
    'bulk link',
    202,
    env.call(
      'POST',
      `/v1/companies/${c}/links/bulk`,
      {
        type: 'invoice',
        minScore: 0.9,
      },
      key(),
    ),
  )
  const linked = await env.waitRun(bulk.body.id)
  // The run the project link started (before the invoices were linked: every payment refused, no Procore call).
  const afterLink = await env.call('GET', `/v1/companies/${c}/runs?syncType=payments_for_synced_invoices`)
  for (const r of afterLink.body.items) await env.waitRun(r.id)

  const run = async () => {
    const path = `/v1/companies/${c}/sync-schedule/payments_for_synced_invoices/run`
    const started = await must('run', 202, env.call('POST', path, {}))
    return env.waitRun(started.body.id)
  }
  const procoreBefore = env.procore.calls.length
  const first = await run()
  const procoreFirst = env.procore.calls.length - procoreBefore
  const second = await run()
  const procoreSecond = env.procore.calls.length - procoreBefore - procoreFirst
  const issued = env.procore.list(c, 'invoice_payments').length
  const line = (name: string, r: any, seen: number) =>
    `  ${name.padEnd(16)} ${JSON.stringify(r.result.counts)}  Procore calls ${r.result.apiCalls.procore} ` +
    `(stand-in saw ${seen}), ERP pages ${r.result.apiCalls.erp}, ${r.durationMs} ms`
  console.log(
    [
      `payments for synced invoices: ${invoices} linked invoices ` +
        `(bulk link: ${linked.result.counts.linked}) × ${per} payments = ${invoices * per} ERP payments`,
      line('first run', first, procoreFirst),
      line('unchanged re-run', second, procoreSecond),
      `  payments issued in Procore: ${issued}`,
    ].join('\n'),
  )
} finally {
  await env.stop()
}
