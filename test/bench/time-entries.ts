// Benchmark: 10,000 approved time entries (10 batches of 1,000) for 20 linked users on one linked project,
// until every one is a Procore timecard entry; then the same 10,000 resubmitted unchanged, then 100 changed.
// Prints the Procore calls (by method and path) and the times. Asserts nothing.
//
//   TEST_DATABASE_URL=postgres://… npx tsx test/bench/time-entries.ts [--entries=10000]
import { randomUUID } from 'node:crypto'
import tap, { type Test } from 'tap'
import { syncHarness, until } from '../sync/fixtures/harness.js'

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1]
const n = Number(arg('entries') ?? '10000')
const USERS = 20
const BATCH = 1000

// The test database helper runs under tap, whose default 30 s would end a run of 10,000 entries.
tap.setTimeout(3_600_000)
const teardowns: Array<() => unknown> = []
// The harness registers its clean-up on a tap test; here the script runs it at the end.
const t = { name: 'bench time entries', teardown: (fn: () => unknown) => teardowns.push(fn) } as unknown as Test

async function main() {
  const h = await syncHarness(t)
  const c = h.companyId
  const users: Array<{ procore: string; erp: string }> = []
  for (let i = 0; i < USERS; i++) {
    const email = `worker${i}@riverside.example`
    users.push({
      procore: h.procore.seed(c, 'users', { first_name: 'W', last_name: `No${i}`, email_address: email }).id,
      erp: h.erp.seed('employees', { first_name: 'W', last_name: `No${i}`, email }).id,
    })
  }
  const project = h.procore.seed(c, 'projects', { name: 'Riverside Tower', project_number: 'J-1' }).id
  const job = h.erp.seed('jobs', { number: 'J-1', name: 'Riverside Tower', status: 'active' }).id
  const codes = ['01-100', '03-300', '26-100'].map(
    (code) => h.erp.seed('cost-codes', { job_id: job, code, name: `Code ${code}` }).id,
  )
  await h.refresh()
  for (const u of users)
    await h.api(
      'POST',
      `/v1/companies/${c}/links`,
      { type: 'user', procoreId: u.procore, erpId: u.erp },
      { 'idempotency-key': randomUUID() },
    )
  await h.api(
    'POST',
    `/v1/companies/${c}/links`,
    { type: 'project', procoreId: project, erpId: job, fix: true },
    { 'idempotency-key': randomUUID() },
  )
  await h.quiet()

  const entries = Array.from({ length: n }, (_, i) => ({
    externalId: `TC-${i}`,
    user: `erp:${users[i % USERS]!.erp}`,
    project: `erp:${job}`,
    costCode: `erp:${codes[i % codes.length]}`,
    date: `2026-${String(1 + (Math.floor(i / USERS) % 12)).padStart(2, '0')}-${String(1 + (i % 28)).padStart(2, '0')}`,
    hours: 8,
    description: `Work ${i}`,
    approvedAt: '2026-12-02T16:00:00Z',
  }))
  const submit = async (list: typeof entries) => {
    let accepted = 0
    for (let i = 0; i < list.length; i += BATCH) {
      const res = await h.api('POST', `/v1/companies/${c}/time-entries`, { entries: list.slice(i, i + BATCH) })
      if (res.status !== 202) throw new Error(`submit: ${res.status} ${JSON.stringify(res.body)}`)
      accepted += res.body.counts.accepted as number
    }
    return accepted
  }
  const phase = async (what: string, list: typeof entries, done: () => boolean) => {
    const before = h.procore.calls.length
    const started = process.hrtime.bigint()
    const accepted = await submit(list)
    const answered = Number(process.hrtime.bigint() - started) / 1e6
    await until(what, async () => done())
    await h.quiet()
    const total = Number(process.hrtime.bigint() - started) / 1e6
    const calls = h.procore.calls.slice(before)
    const byPath = new Map<string, number>()
    for (const call of calls) {
      const key = `${call.method} ${call.path.replace(/\/\d+(?=\/|$)/g, '/{id}')}`
      byPath.set(key, (byPath.get(key) ?? 0) + 1)
    }
    console.log(`${what}: ${list.length} entries, ${accepted} accepted`)
    console.log(`  ${Math.ceil(list.length / BATCH)} POSTs answered in ${answered.toFixed(0)} ms`)
    console.log(`  in Procore and every background job done after ${total.toFixed(0)} ms`)
    console.log(`  Procore calls: ${calls.length}`)
    for (const [key, count] of [...byPath].sort()) console.log(`    ${String(count).padStart(6)}  ${key}`)
  }

  await phase('first submission', entries, () => h.procore.list(c, 'timecard_entries').length === n)
  await phase('resubmitted unchanged', entries, () => true)
  const changed = entries.slice(0, 100).map((e) => ({ ...e, hours: 7.5 }))
  await phase(
    '100 changed',
    changed,
    () => h.procore.list(c, 'timecard_entries').filter((e) => e.hours === '7.5').length === 100,
  )
  const count = h.procore.list(c, 'timecard_entries').length
  console.log(`timecard entries in Procore at the end: ${count} (of ${n} submitted)`)
}

try {
  await main()
} finally {
  for (const fn of teardowns.reverse()) await fn()
}
