// Processes the benchmark starts: PostgreSQL databases, the compiled service, the bare Fastify + pg baselines.
// The service is only ever talked to over HTTP, as a client or Procore would.
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { pino } from 'pino'

export const ENCRYPTION_KEYS = `bench:${Buffer.alloc(32, 7).toString('base64')}`
/** The built entry point (`npm run build`: src/cli/build.ts bundles the service into dist/). */
export const SERVER_ENTRY = 'dist/src/server.js'

export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

export function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] })
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}`))))
  })
}

/** A PostgreSQL server: the given one, or an embedded one for the run. Databases are created on it and dropped. */
export class Databases {
  private constructor(
    readonly serverUrl: string,
    private readonly stopServer: () => Promise<void>,
  ) {}
  private readonly created: string[] = []

  static async start(serverUrl: string | undefined): Promise<Databases> {
    if (serverUrl) return new Databases(serverUrl, async () => {})
    const dir = await mkdtemp(path.join(tmpdir(), 'erp-sync-bench-'))
    const { startEmbeddedPostgres } = await import('../../../src/db/embedded.js')
    const embedded = await startEmbeddedPostgres(dir, pino({ level: 'warn' }))
    return new Databases(embedded.url, async () => {
      await embedded.stop()
      await rm(dir, { recursive: true, force: true })
    })
  }

  async create(prefix: string): Promise<string> {
    const name = `${prefix}_${randomBytes(3).toString('hex')}`
    await this.admin((c) => c.query(`create database "${name}"`))
    this.created.push(name)
    const url = new URL(this.serverUrl)
    url.pathname = `/${name}`
    return url.toString()
  }

  async stop(): Promise<void> {
    for (const name of this.created.splice(0))
      await this.admin((c) => c.query(`drop database if exists "${name}" with (force)`)).catch(() => {})
    await this.stopServer()
  }

  private async admin(fn: (c: pg.Client) => Promise<unknown>) {
    const c = new pg.Client(this.serverUrl)
    await c.connect()
    try {
      await fn(c)
    } finally {
      await c.end()
    }
  }
}

export interface Started {
  child: ChildProcess
  url: string
  /** Everything the process wrote to stdout so far. */
  out(): string
  /** ms from spawn to the first 200 of GET /health/ready. */
  readyMs: number
  stop(): Promise<void>
}

/** Spawns a process and waits until GET <url>/health/ready answers 200. */
export async function startProcess(
  args: string[],
  env: Record<string, string>,
  port: number,
  opts: { readyPath?: string; timeoutMs?: number } = {},
): Promise<Started> {
  const t0 = performance.now()
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString()
    if (out.length > 2_000_000) out = out.slice(-1_000_000)
  })
  child.stderr.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-20_000)
  })
  const url = `http://127.0.0.1:${port}`
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve()
      const kill = setTimeout(() => child.kill('SIGKILL'), 15_000)
      child.once('exit', () => {
        clearTimeout(kill)
        resolve()
      })
      child.kill('SIGTERM')
    })
  const deadline = t0 + (opts.timeoutMs ?? 120_000)
  for (;;) {
    const ok = await fetch(`${url}${opts.readyPath ?? '/health/ready'}`).then(
      (r) => r.ok,
      () => false,
    )
    if (ok) break
    if (child.exitCode !== null || performance.now() > deadline) {
      await stop()
      throw new Error(`${args.join(' ')} did not become ready:\n${out.slice(-4000)}\n${err}`)
    }
    await sleep(10)
  }
  return { child, url, out: () => out, readyMs: performance.now() - t0, stop }
}

/** The compiled service. */
export function startService(env: Record<string, string>, port: number): Promise<Started> {
  return startProcess([SERVER_ENTRY], { PORT: String(port), HOST: '127.0.0.1', ...env }, port)
}

/**
 * The baselines' server: Fastify and pg only, with GET /health/ready (one `select 1`) and POST /webhooks/procore
 * that checks the Authorization header, parses the body and INSERTs it, one row per delivery; pool of 10.
 */
const BARE = `
import Fastify from 'fastify'
import pg from 'pg'
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 })
await pool.query(
  'create table if not exists bare_inbox (id bigserial primary key, body jsonb not null, ' +
    'received_at timestamptz not null default now())')
const app = Fastify()
app.get('/health/live', async () => ({ status: 'ok' }))
app.get('/health/ready', async () => { await pool.query('select 1'); return { status: 'ok' } })
app.post('/webhooks/procore', async (req, reply) => {
  if (req.headers.authorization !== process.env.BARE_AUTHORIZATION) return reply.code(401).send({ status: 401 })
  const { rows } = await pool.query('insert into bare_inbox (body) values ($1) returning id', [req.body])
  return reply.code(202).send({ id: rows[0].id })
})
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
`

export function startBare(databaseUrl: string, port: number, authorization = ''): Promise<Started> {
  return startProcess(
    ['--input-type=module', '-e', BARE],
    { DATABASE_URL: databaseUrl, PORT: String(port), BARE_AUTHORIZATION: authorization },
    port,
  )
}

/** An API client with a key, as any integration would use it. */
export class Api {
  constructor(
    readonly base: string,
    readonly key: string,
  ) {}
  private n = 0

  async call(
    method: string,
    url: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; etag: string | null; body: any }> {
    const res = await fetch(`${this.base}${url}`, {
      method,
      headers: {
        authorization: `Bearer ${this.key}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(method === 'POST' ? { 'idempotency-key': `bench-${process.pid}-${++this.n}-${Date.now()}` } : {}),
        ...headers,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    const text = await res.text()
    return { status: res.status, etag: res.headers.get('etag'), body: text ? JSON.parse(text) : null }
  }

  /** Like `call`, but a 503 (back-pressure) is retried after its Retry-After, as a client would; other errors throw. */
  async must(method: string, url: string, body?: unknown, headers?: Record<string, string>) {
    let res = await this.call(method, url, body, headers)
    for (let attempt = 0; res.status === 503 && attempt < 20; attempt++) {
      await sleep(1000)
      res = await this.call(method, url, body, headers)
    }
    if (res.status >= 300) throw new Error(`${method} ${url}: ${res.status} ${JSON.stringify(res.body)}`)
    return res
  }

  async waitRun(companyId: string, id: string, timeoutMs = 600_000): Promise<any> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const run = await this.must('GET', `/v1/companies/${companyId}/runs/${id}`)
      if (['succeeded', 'failed', 'cancelled'].includes(run.body.status)) return run.body
      if (Date.now() > deadline) throw new Error(`run ${id} still ${run.body.status}`)
      await sleep(100)
    }
  }
}

/** The admin key the service prints on its first start. */
export function printedKey(out: string): string {
  const key = /esk_\w+_[\w-]+/.exec(out)?.[0]
  if (!key) throw new Error(`no admin key printed:\n${out.slice(-2000)}`)
  return key
}

/** The `phases` of the service's `ready` log line (LOG_LEVEL info). */
export function readyPhases(out: string): Record<string, number> | undefined {
  for (const line of out.split('\n')) {
    if (!line.includes('"phases"')) continue
    try {
      return (JSON.parse(line) as { phases?: Record<string, number> }).phases
    } catch {
      // not a JSON log line
    }
  }
  return undefined
}
