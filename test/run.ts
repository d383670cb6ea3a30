/**
 * `npm test`: runs tap against a real PostgreSQL. With TEST_DATABASE_URL set, that server is
 * used (each test file creates its own database on it); otherwise one embedded PostgreSQL is
 * started for the whole run. Ends with one plain line `N passed, N failed`.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pino } from 'pino'
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../src/db/embedded.js'

let embedded: EmbeddedDatabase | undefined
let dataDir: string | undefined
if (!process.env.TEST_DATABASE_URL) {
  dataDir = await mkdtemp(path.join(tmpdir(), 'erp-sync-test-'))
  embedded = await startEmbeddedPostgres(dataDir, pino({ level: 'warn' }))
  process.env.TEST_DATABASE_URL = embedded.url
  console.log(`# using an embedded PostgreSQL (set TEST_DATABASE_URL to use another server)`)
}

const tap = spawn(path.resolve('node_modules/.bin/tap'), process.argv.slice(2), {
  stdio: ['ignore', 'pipe', 'inherit'],
  env: process.env,
})
let tail = ''
tap.stdout.on('data', (chunk: Buffer) => {
  process.stdout.write(chunk)
  tail = (tail + chunk.toString()).slice(-4096)
})
const code: number = await new Promise((resolve) => tap.on('close', (c) => resolve(c ?? 1)))

await embedded?.stop()
if (dataDir) await rm(dataDir, { recursive: true, force: true })

// tap's closing summary looks like `# { total: 12, pass: 11, fail: 1 }`.
const summary = /# \{ total: (\d+), pass: (\d+)(?:, fail: (\d+))?/.exec(tail)
const passed = Number(summary?.[2] ?? 0)
const failed = Number(summary?.[3] ?? 0) + (code !== 0 && !summary?.[3] ? 1 : 0)
console.log(`${passed} passed, ${failed} failed`)
process.exit(code)
