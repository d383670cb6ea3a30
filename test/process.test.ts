// What a user starts — `npm start`, `npm run demo` — stops on SIGTERM or SIGINT: everything it started goes away
// within 10 s, it says "stopped" once, prints no error line, and leaves no temporary folder behind.
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { TEST_ENCRYPTION_KEYS } from './helpers/app.js'
import { testDatabase } from './helpers/db.js'

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** `npm run <script>` as a user runs it; resolves once `ready` matches its output. */
function npmRun(script: string, env: Record<string, string>, ready: RegExp) {
  const child = spawn('npm', ['run', script], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group, as a terminal would give it
  })
  let output = ''
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  const started = new Promise<void>((resolve, reject) => {
    const look = (d: Buffer) => {
      output += d.toString()
      if (ready.test(output)) resolve()
    }
    child.stdout.on('data', look)
    child.stderr.on('data', look)
    void exited.then((code) => reject(new Error(`npm run ${script} exited with ${code}: ${output}`)))
  })
  return { child, started, exited, output: () => output }
}

/** Pids of the processes whose command line mentions `needle` (the service, its embedded PostgreSQL). */
function processesWith(needle: string): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').replaceAll('\0', ' ').includes(needle)
      } catch {
        return false
      }
    })
    .map(Number)
}

async function stopAndCheck(
  t: Test,
  run: ReturnType<typeof npmRun>,
  signal: NodeJS.Signals,
  opts: { group: boolean; leftovers: string },
) {
  const began = Date.now()
  if (opts.group)
    process.kill(-run.child.pid!, signal) // Ctrl-C: the whole foreground group
  else run.child.kill(signal) // `kill <pid>` of npm itself
  const code = await run.exited
  // npm has exited; give its children the same 10 s.
  while (processesWith(opts.leftovers).length > 0 && Date.now() - began < 10_000) await sleepMs(100)
  t.equal(code, 0, `exit code 0 after ${signal}`)
  t.same(processesWith(opts.leftovers), [], `nothing left running (${Date.now() - began} ms)`)
  const lines = run.output().split('\n')
  t.equal(lines.filter((l) => /\bstopped\b/.test(l)).length, 1, 'one "stopped" line')
  t.same(
    lines.filter((l) => /"level":(50|60)|\bERROR\b|\bERR_|Error:|EADDRINUSE|^\s+at /.test(l)),
    [],
    'no error lines',
  )
}
const sleepMs = (ms: number) => new Promise((r) => setTimeout(r, ms))

t.test('npm start: SIGTERM to npm, and Ctrl-C, stop the service and its embedded PostgreSQL', async (t) => {
  t.setTimeout(180_000)
  const dataDir = await mkdtemp(path.join(tmpdir(), 'erp-sync-start-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  for (const [signal, group] of [
    ['SIGTERM', false],
    ['SIGINT', true],
  ] as const) {
    const run = npmRun(
      'start',
      { DATA_DIR: dataDir, PORT: String(await freePort()), ENCRYPTION_KEYS: TEST_ENCRYPTION_KEYS, DATABASE_URL: '' },
      /ready: Swagger UI/,
    )
    await run.started
    await stopAndCheck(t, run, signal, { group, leftovers: dataDir })
  }
})

t.test('npm run demo: SIGTERM stops it and removes its temporary database; a busy port is one line', async (t) => {
  t.setTimeout(180_000)
  const before = new Set(readdirSync(tmpdir()).filter((f) => f.startsWith('erp-sync-env-')))
  const port = await freePort()
  const run = npmRun('demo', { PORT: String(port), DATABASE_URL: '' }, /Ctrl-C stops everything/)
  await run.started
  t.match(run.output(), /starting an embedded PostgreSQL/, 'progress while it starts')
  const made = readdirSync(tmpdir()).filter((f) => f.startsWith('erp-sync-env-') && !before.has(f))
  t.equal(made.length, 1, 'one temporary database folder while it runs')

  const second = npmRun('demo', { PORT: String(port), DATABASE_URL: '' }, /$^/)
  second.started.catch(() => {}) // it is not meant to start
  const code = await second.exited
  t.equal(code, 1)
  const printed = second
    .output()
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('>'))
  t.same(printed, [
    `Port ${port} is already in use (the service or another demo?): stop it, or run PORT=${port + 1} npm run demo`,
  ])

  await stopAndCheck(t, run, 'SIGTERM', { group: false, leftovers: path.join(tmpdir(), made[0]!) })
  t.same(
    readdirSync(tmpdir()).filter((f) => made.includes(f)),
    [],
    'the temporary folder is gone',
  )
})

t.test('npm start on a busy port: one line naming the fix, no stack', async (t) => {
  const busy = createServer()
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => busy.close(() => resolve())))
  const port = (busy.address() as AddressInfo).port
  const run = npmRun(
    'start',
    {
      DATABASE_URL: await testDatabase(t, { migrate: false }),
      PORT: String(port),
      ENCRYPTION_KEYS: TEST_ENCRYPTION_KEYS,
    },
    /$^/,
  )
  run.started.catch(() => {}) // it is not meant to start
  t.equal(await run.exited, 1)
  const fatal = run
    .output()
    .split('\n')
    .filter((l) => /"level":(50|60)/.test(l))
  t.equal(fatal.length, 1, run.output())
  t.match(fatal[0], /could not listen on 127\.0\.0\.1:\d+ \(EADDRINUSE\): stop what uses it, or set PORT/)
  t.notMatch(run.output(), /"stack"|^\s+at /m)
})
