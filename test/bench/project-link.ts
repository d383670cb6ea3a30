// Benchmark: linking one ERP job with 300 cost codes to an existing Procore project that is not
// ERP-integrated yet (fix: true), until the 300 cost codes are in the Procore project and every
// background job is done. Prints the Procore calls (by method and path) and the time. Asserts nothing.
//
//   TEST_DATABASE_URL=postgres://… npx tsx test/bench/project-link.ts [--codes=300]
import type { Test } from 'tap'
import { syncHarness, until } from '../sync/fixtures/harness.js'

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1]
const n = Number(arg('codes') ?? '300')

const teardowns: Array<() => unknown> = []
// The harness registers its clean-up on a tap test; here the script runs it at the end.
const t = { name: 'bench project link', teardown: (fn: () => unknown) => teardowns.push(fn) } as unknown as Test

async function main() {
  const h = await syncHarness(t)
  const c = h.companyId
  const project = h.procore.seed(c, 'projects', { name: 'Riverside Tower', project_number: 'J-100' })
  const job = h.erp.seed('jobs', { number: 'J-100', name: 'Riverside Tower', status: 'active' })
  for (let i = 0; i < n; i++)
    h.erp.seed('cost-codes', {
      job_id: job.id,
      code: `${String(1 + Math.floor(i / 100)).padStart(2, '0')}-${String(100 + (i % 100))}`,
      name: `Cost code ${i + 1}`,
    })
  await h.refresh(['project', 'cost_code'])
  await h.quiet()

  const before = h.procore.calls.length
  const started = process.hrtime.bigint()
  const res = await h.api(
    'POST',
    `/v1/companies/${c}/links`,
    { type: 'project', procoreId: project.id, erpId: job.id, fix: true },
    { 'idempotency-key': 'bench' },
  )
  if (res.status !== 201) throw new Error(`link: ${res.status} ${JSON.stringify(res.body)}`)
  const answered = Number(process.hrtime.bigint() - started) / 1e6
  await until('cost codes in Procore', async () =>
    h.procore.list(c, 'cost_codes').filter((x) => String(x.project_id) === project.id && x.origin_id != null).length ===
    n
      ? true
      : undefined,
  )
  const codesIn = Number(process.hrtime.bigint() - started) / 1e6
  await h.quiet()
  const total = Number(process.hrtime.bigint() - started) / 1e6
  const calls = h.procore.calls.slice(before)
  const inbox = await h.app.db
    .selectFrom('inbox_events')
    .select(['status', (eb) => eb.fn.countAll<string>().as('n')])
    .where('company_id', '=', c)
    .where('source', '=', 'procore')
    .groupBy('status')
    .execute()
  const byPath = new Map<string, number>()
  for (const call of calls) {
    const key = `${call.method} ${call.path.replace(/\/\d+(?=\/|$)/g, '/{id}')}`
    byPath.set(key, (byPath.get(key) ?? 0) + 1)
  }
  console.log(`link one job with ${n} cost codes (fix: true)`)
  console.log(`  link answered in ${answered.toFixed(0)} ms`)
  console.log(`  ${n} cost codes in the Procore project after ${codesIn.toFixed(0)} ms`)
  console.log(`  every background job done after ${total.toFixed(0)} ms`)
  console.log(`  Procore webhooks received meanwhile: ${inbox.map((r) => `${r.n} ${r.status}`).join(', ') || 'none'}`)
  console.log(`  Procore calls: ${calls.length}`)
  for (const [key, count] of [...byPath].sort()) console.log(`    ${String(count).padStart(4)}  ${key}`)
}

try {
  await main()
} finally {
  for (const fn of teardowns.reverse()) await fn()
}
