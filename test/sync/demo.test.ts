// `npm run demo -- --check`: the demo starts, prints its walkthrough and performs every step of
// it against the stand-ins; it exits 0 only when each step had the documented effect.
import { spawn } from 'node:child_process'
import { createServer, type AddressInfo } from 'node:net'
import path from 'node:path'
import t from 'tap'

t.test('the demo walks through linking, creating and resolving a discrepancy', async (t) => {
  t.setTimeout(180_000)
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => resolve()))

  const child = spawn(path.resolve('node_modules/.bin/tsx'), ['test/demo.ts', '--check'], {
    env: { ...process.env, PORT: String(port), DATABASE_URL: process.env.TEST_DATABASE_URL ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString()
  })
  child.stderr.on('data', (c: Buffer) => {
    out += c.toString()
  })
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  t.equal(code, 0, out)
  t.match(out, /Swagger UI/)
  t.match(out, /export API=http:\/\/127\.0\.0\.1:\d+ C=\d+ KEY=esk_/)
  t.match(
    out,
    /check: link set, create-in-procore \{[^}]*"created":1[^}]*\}, create-in-erp \{[^}]*"created":1[^}]*\}, apply resolved, audit entries \d+, send to ERP exported, onboarding users \{[^}]*"linked":1[^}]*\}, time entries in Procore 1: OK/,
  )
})
