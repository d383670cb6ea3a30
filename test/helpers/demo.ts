import { spawn } from 'node:child_process'
import { createServer, type AddressInfo } from 'node:net'
import type { Test } from 'tap'

/**
 * `npm run demo` as a person runs it, on a free port (on TEST_DATABASE_URL when set): resolves with
 * everything it printed once it is ready, and stops it (SIGTERM) when the test ends.
 */
export async function startDemo(t: Test): Promise<string> {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const port = (probe.address() as AddressInfo).port
  await new Promise<void>((resolve) => probe.close(() => resolve()))

  const demo = spawn(process.execPath, ['--import', 'tsx', 'test/demo.ts'], {
    env: { ...process.env, PORT: String(port), DATABASE_URL: process.env.TEST_DATABASE_URL ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let printed = ''
  const exited = new Promise<number | null>((resolve) => demo.on('exit', resolve))
  await new Promise<void>((resolve, reject) => {
    const look = (d: Buffer) => {
      printed += d.toString()
      if (printed.includes('Ctrl-C stops everything')) resolve()
    }
    demo.stdout.on('data', look)
    demo.stderr.on('data', look)
    void exited.then((code) => reject(new Error(`the demo exited with ${code}: ${printed}`)))
  })
  t.teardown(async () => {
    demo.kill('SIGTERM')
    await exited
  })
  return printed
}
