import { spawn } from 'node:child_process'
import t from 'tap'
import { TEST_ENCRYPTION_KEYS } from './helpers/app.js'
import { testDatabase } from './helpers/db.js'

/** Starts the real entry point; resolves with its address and everything it printed so far. */
function startServer(databaseUrl: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      ENCRYPTION_KEYS: TEST_ENCRYPTION_KEYS,
      PORT: '0',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const ready = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString()
      const address = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1]
      if (address && output.includes('ready: Swagger UI')) resolve(address)
    })
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString()
    })
    child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${output}`)))
  })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  return {
    ready,
    exited,
    output: () => output,
    stop: (signal: NodeJS.Signals = 'SIGTERM') => {
      child.kill(signal)
      return exited
    },
  }
}

t.test(
  'the server migrates an empty database, prints the first admin key once, and stops cleanly on SIGTERM',
  async (t) => {
    const databaseUrl = await testDatabase(t, { migrate: false })

    const first = startServer(databaseUrl)
    const address = await first.ready
    await new Promise((r) => setTimeout(r, 200)) // the key is written right after the ready line
    const keys = first.output().match(/esk_[a-z0-9]{16}_[\w-]{43}/g) ?? []
    t.ok(keys.length >= 1, 'an admin key was printed')
    t.equal(new Set(keys).size, 1, 'one key')
    const key = keys[0]!
    const res = await fetch(`${address}/v1/companies`, { headers: { authorization: `Bearer ${key}` } })
    t.equal(res.status, 200, 'the printed key works, on a schema the server migrated itself')
    t.equal(res.headers.get('x-request-id')?.length, 36)
    t.equal(await first.stop('SIGTERM'), 0, 'SIGTERM: drains and exits 0')
    t.match(first.output(), /shutting down/)

    const second = startServer(databaseUrl)
    await second.ready
    await new Promise((r) => setTimeout(r, 200))
    t.notMatch(second.output(), /esk_/, 'no key printed once keys exist')
    t.equal(await second.stop('SIGINT'), 0)
  },
)
