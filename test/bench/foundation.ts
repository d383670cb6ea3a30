/**
 * Foundation figures: cold start to ready (embedded first start, embedded restart, server
 * PostgreSQL) and authenticated GET /v1/companies throughput with autocannon.
 *
 *   npx tsx test/bench/foundation.ts            # uses postgres://postgres@127.0.0.1:5432/test for the server case
 *   BENCH_PG=postgres://… npx tsx test/bench/foundation.ts
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import autocannon from 'autocannon'
import pg from 'pg'

const serverPg = process.env.BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/test'
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

async function startToReady(
  env: Record<string, string>,
  port: number,
): Promise<{ ms: number; key: string | undefined; stop: () => Promise<void> }> {
  const started = performance.now()
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: { ...process.env, LOG_LEVEL: 'warn', PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString()
  })
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${port}/health/ready`).then(
      (r) => r.ok,
      () => false,
    )
    if (ok) break
    if (child.exitCode !== null) throw new Error(`server exited: ${out}`)
    await new Promise((r) => setTimeout(r, 20))
  }
  const ms = performance.now() - started
  return {
    ms,
    key: /esk_\w+_[\w-]+/.exec(out)?.[0],
    stop: () =>
      new Promise<void>((resolve) => {
        child.on('exit', () => resolve())
        child.kill('SIGTERM')
      }),
  }
}

async function freshDatabase(name: string): Promise<string> {
  const admin = new pg.Client(serverPg)
  await admin.connect()
  await admin.query(`drop database if exists ${name} with (force)`)
  await admin.query(`create database ${name}`)
  await admin.end()
  const url = new URL(serverPg)
  url.pathname = `/${name}`
  return url.toString()
}

const dataDir = await mkdtemp(path.join(tmpdir(), 'bench-embedded-'))
const embeddedFirst = await startToReady({ DATA_DIR: dataDir, DATABASE_URL: '' }, 3301)
await embeddedFirst.stop()
const embeddedAgain: number[] = []
for (let i = 0; i < 3; i++) {
  const s = await startToReady({ DATA_DIR: dataDir, DATABASE_URL: '' }, 3301)
  embeddedAgain.push(s.ms)
  await s.stop()
}
await rm(dataDir, { recursive: true, force: true })

const url = await freshDatabase('bench_foundation')
const serverRuns: number[] = []
let key: string | undefined
for (let i = 0; i < 3; i++) {
  const s = await startToReady(
    { DATABASE_URL: url, ENCRYPTION_KEYS: `bench:${Buffer.alloc(32, 1).toString('base64')}` },
    3302,
  )
  serverRuns.push(s.ms)
  key ??= s.key
  if (i < 2) await s.stop()
  else {
    for (let c = 1; c <= 50; c++) {
      await fetch('http://127.0.0.1:3302/v1/companies', {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ id: String(1000 + c), name: `Company ${c}`, erpSystem: 'vista' }),
      })
    }
    const result = await autocannon({
      url: 'http://127.0.0.1:3302/v1/companies?limit=50',
      headers: { authorization: `Bearer ${key}` },
      connections: 10,
      duration: 10,
    })
    console.log(
      `GET /v1/companies (50 companies, 1 page, API key auth), autocannon -c 10 -d 10: ` +
        `${Math.round(result.requests.average)} req/s mean, latency p50 ${result.latency.p50} ms, ` +
        `p99 ${result.latency.p99} ms, non-2xx ${result.non2xx}`,
    )
    await s.stop()
  }
}
console.log(`cold start to ready, embedded PostgreSQL, first start (initdb): ${Math.round(embeddedFirst.ms)} ms`)
console.log(
  `cold start to ready, embedded PostgreSQL, existing data: median ${Math.round(median(embeddedAgain))} ms of ` +
    `${embeddedAgain.map(Math.round).join(', ')}`,
)
console.log(
  `cold start to ready, server PostgreSQL: median ${Math.round(median(serverRuns))} ms of ` +
    `${serverRuns.map(Math.round).join(', ')}`,
)
