// Benchmark of Send to ERP with accounting acceptance. Prints figures; asserts nothing about time.
//
//   npx tsx test/bench/exports.ts            # on TEST_DATABASE_URL / DATABASE_URL or an embedded PostgreSQL
//   npx tsx test/bench/exports.ts --n=100
//
// N Procore vendors are sent, one after another, and accepted; for each, the time from the accept
// answer to the request reading `exported` (created in the ERP stand-in, linked, Procore's origin
// fields written). Then the ERP calls the accepted requests caused, per request.
import { setTimeout as sleep } from 'node:timers/promises'
import { startEnvironment } from '../sync/fixtures/environment.js'

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1]
const n = Number(arg('n') ?? 100)
const since = (t: bigint) => Number(process.hrtime.bigint() - t) / 1e6
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!

const env = await startEnvironment({
  serverUrl: process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL,
  seed: (procore, _erp, c) => {
    for (let i = 0; i < n; i++) procore.seed(c, 'vendors', { name: `Bench Export ${i}` })
  },
})
try {
  const c = env.companyId
  const ids = env.procore.list(c, 'vendors').map((v) => String(v.id))
  const erpCallsBefore = env.erp.calls.length
  const times: number[] = []
  const queued: number[] = []
  const running: number[] = []
  const settling: number[] = []
  for (const [i, procoreId] of ids.entries()) {
    const sent = await env.call('POST', `/v1/companies/${c}/exports`, {
      type: 'vendor',
      procoreId,
      sentBy: { name: 'Bench Sender' },
    })
    if (sent.status !== 201) throw new Error(`send: ${sent.status} ${JSON.stringify(sent.body)}`)
    const accepted = await env.call(
      'POST',
      `/v1/companies/${c}/exports/${sent.body.id}/accept`,
      { erpId: `BX${i}` },
      { 'if-match': sent.etag! },
    )
    if (accepted.status !== 200) throw new Error(`accept: ${accepted.status} ${JSON.stringify(accepted.body)}`)
    const t0 = process.hrtime.bigint()
    for (;;) {
      const r = await env.call('GET', `/v1/companies/${c}/exports/${sent.body.id}`)
      if (r.body.status === 'exported') break
      if (r.body.status !== 'exporting') throw new Error(`request ended ${r.body.status}: ${JSON.stringify(r.body)}`)
      await sleep(5)
    }
    times.push(since(t0))
    const done = await env.call('GET', `/v1/companies/${c}/exports/${sent.body.id}`)
    const run = await env.call('GET', `/v1/companies/${c}/runs/${done.body.runId}`)
    const at = (x: string) => Date.parse(x)
    const acceptedAt = at(done.body.history.find((h: any) => h.to === 'exporting').at)
    queued.push(at(run.body.startedAt) - acceptedAt)
    running.push(at(run.body.finishedAt) - at(run.body.startedAt))
    settling.push(at(done.body.history.at(-1).at) - at(run.body.finishedAt))
  }
  const calls = env.erp.calls.slice(erpCallsBefore)
  const creates = calls.filter((x) => x.method === 'POST' && x.path === '/v1/vendors').length
  console.log(`accepted requests: ${ids.length}`)
  console.log(
    `accept → exported: median ${pct(times, 0.5).toFixed(0)} ms, p95 ${pct(times, 0.95).toFixed(0)} ms ` +
      `(polled every 5 ms over HTTP)`,
  )
  console.log(
    `of which, medians: waiting for a worker ${pct(queued, 0.5)} ms, the create run ${pct(running, 0.5)} ms, ` +
      `settling the request ${pct(settling, 0.5)} ms`,
  )
  const kinds = new Map<string, number>()
  for (const x of calls) {
    const k = `${x.method} ${x.path.replace(/\/[A-Z]\d+$/, '/{id}')}`
    kinds.set(k, (kinds.get(k) ?? 0) + 1)
  }
  console.log(`ERP calls by kind: ${[...kinds].map(([k, v]) => `${k} ×${v}`).join(', ')}`)
  console.log(
    `ERP calls per accepted request: ${(calls.length / ids.length).toFixed(2)} in all, ` +
      `${(creates / ids.length).toFixed(2)} creates; ERP records created: ${env.erp.stats().records.vendors}`,
  )
} finally {
  await env.stop()
}
