// Benchmark: Procore calls of project job costs for one linked job of 500 cost codes x 3 cost types (1,500
// totals): the first run (started by the project link) and an unchanged run (on demand). Prints each run's
// counts and the Procore calls the stand-in received for job costs, by method and path. Asserts nothing.
//
//   TAP_TIMEOUT=0 TEST_DATABASE_URL=postgres://… npx tsx test/bench/job-costs.ts [--codes=500]
import type { Test } from 'tap'
import { syncHarness, until } from '../sync/fixtures/harness.js'

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1]
const n = Number(arg('codes') ?? '500')
const TYPES = ['L', 'M', 'S']

const teardowns: Array<() => unknown> = []
// The harness registers its clean-up on a tap test; here the script runs it at the end.
const t = { name: 'bench job costs', teardown: (fn: () => unknown) => teardowns.push(fn) } as unknown as Test

async function main() {
  const h = await syncHarness(t)
  const c = h.companyId
  const list = h.procore.list(c, 'standard_cost_code_lists')[0]!.id
  for (const code of TYPES) h.procore.seed(c, 'line_item_types', { code, name: `Type ${code}` })
  const project = h.procore.seed(c, 'projects', {
    name: 'Riverside Tower',
    project_number: 'J-100',
    erp_integrated: true,
    standard_cost_code_list_id: list,
  })
  const job = h.erp.seed('jobs', { number: 'J-100', name: 'Riverside Tower', status: 'active' })
  const totals = []
  for (let i = 0; i < n; i++) {
    const code = `${String(1 + Math.floor(i / 100)).padStart(2, '0')}-${String(100 + (i % 100))}`
    h.erp.seed('cost-codes', { job_id: job.id, code, name: `Cost code ${i + 1}` })
    for (const type of TYPES)
      totals.push({ cost_code: code, cost_type: type, budget: `${1000 + i}.00`, actual: `${i}.25`, committed: '0.00' })
  }
  h.erp.setCostTotals(job.id, totals)
  await h.refresh(['project', 'cost_code'])
  await h.quiet()

  const jobCostCalls = (from: number) => {
    const byPath = new Map<string, number>()
    for (const call of h.procore.calls.slice(from)) {
      if (!/line_item_types|configuration|erp_job_costs/.test(call.path)) continue
      const key = `${call.method} ${call.path.replace(/\/\d+(?=\/|$)/g, '/{id}')}`
      byPath.set(key, (byPath.get(key) ?? 0) + 1)
    }
    return byPath
  }
  const report = (label: string, run: any, byPath: Map<string, number>, ms: number) => {
    const received = [...byPath.values()].reduce((a, b) => a + b, 0)
    console.log(`${label}: ${run.status}, counts ${JSON.stringify(run.result.counts)}, ${ms.toFixed(0)} ms`)
    console.log(`  run's apiCalls: procore ${run.result.apiCalls.procore}, erp ${run.result.apiCalls.erp}`)
    console.log(`  Procore calls received for job costs: ${received}`)
    for (const [path, count] of [...byPath].sort()) console.log(`    ${String(count).padStart(4)}  ${path}`)
  }

  // First run: the one the project link starts.
  let mark = h.procore.calls.length
  let started = process.hrtime.bigint()
  const res = await h.api(
    'POST',
    `/v1/companies/${c}/links`,
    { type: 'project', procoreId: project.id, erpId: job.id },
    { 'idempotency-key': 'bench' },
  )
  if (res.status !== 201) throw new Error(`link: ${res.status} ${JSON.stringify(res.body)}`)
  const [first] = await until('the link-triggered job-cost run', async () => {
    const runs = await h.api('GET', `/v1/companies/${c}/runs?kind=job_costs&trigger=link`)
    return runs.body.items.length > 0 ? runs.body.items : undefined
  })
  const firstRun = await h.waitRun(first.id)
  await h.quiet()
  report(
    `first run (${n} cost codes x ${TYPES.length} cost types)`,
    firstRun,
    jobCostCalls(mark),
    Number(process.hrtime.bigint() - started) / 1e6,
  )

  // Unchanged run: on demand, nothing changed in the ERP.
  mark = h.procore.calls.length
  started = process.hrtime.bigint()
  const again = await h.api(
    'POST',
    `/v1/companies/${c}/sync-schedule/project_job_costs/run`,
    {},
    { 'idempotency-key': 'bench-again' },
  )
  const unchanged = await h.waitRun(again.body.id)
  report('unchanged run', unchanged, jobCostCalls(mark), Number(process.hrtime.bigint() - started) / 1e6)
}

try {
  await main()
} finally {
  for (const fn of teardowns.reverse()) await fn()
}
