import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { ensureFirstAdminKey } from './auth/bootstrap.js'
import { codeCache } from './code-cache.js'
import { ConfigError, loadConfig, redactedConfig, type Config } from './config.js'
import { localKeyRing } from './crypto/keyfile.js'
import type { EmbeddedDatabase } from './db/embedded.js'
import { isMigrated, migrateToLatest } from './db/migrate.js'
import { createDb } from './db/pool.js'
import { installQueueSchema } from './jobs/queue.js'
import { createLogger } from './logger.js'

/** The process: config from the environment → database → migrations → app → listen → graceful shutdown. */
async function main() {
  // Start-up phases in ms, logged with `ready`: `imports` is the process start through loading this module's imports;
  // the app's own modules (`appModules`, the wait for the rest of them) load while the database is prepared.
  const phases: Record<string, number> = { imports: Math.round(performance.now()) }
  let lapStart = performance.now()
  const lap = (phase: string) => {
    const now = performance.now()
    phases[phase] = Math.round(now - lapStart)
    lapStart = now
  }
  let config: Config
  try {
    config = loadConfig(process.env)
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message)
      process.exit(78) // EX_CONFIG
    }
    throw error
  }
  const log = createLogger(config)
  log.info({ config: redactedConfig(config) }, 'configuration loaded')
  lap('config')
  const started = performance.now()
  let embedded: EmbeddedDatabase | undefined
  let app: FastifyInstance | undefined

  let closing = false
  const shutdown = async (signal: string) => {
    if (closing) return
    closing = true
    const stopping = performance.now()
    log.info({ signal }, 'shutting down: finishing in-flight requests and jobs')
    // Well within the 10 s that process managers (Docker, systemd, Kubernetes) commonly wait before SIGKILL.
    const force = setTimeout(() => {
      log.error('shutdown took longer than 9 s; exiting anyway')
      process.exit(1)
    }, 9_000)
    force.unref()
    let code = 0
    try {
      await starting // a signal during start: let the current step finish, the next one sees `closing`
      await app?.close() // stops accepting, drains requests, stops workers, closes the pool
      await embedded?.stop()
      log.info({ ms: Math.round(performance.now() - stopping) }, 'stopped')
    } catch (error) {
      log.error({ err: error }, 'stopped, with an error while shutting down')
      code = 1
    } finally {
      process.exit(code)
    }
  }
  // `on`, not `once`: Ctrl-C under npm delivers SIGINT twice (from the terminal and forwarded by npm), and a second
  // one without a listener would kill the process mid-shutdown.
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
  process.on('SIGINT', () => void shutdown('SIGINT'))

  let starting: Promise<void> = Promise.resolve()
  const stopRequested = new Error('stop requested during start')
  const unlessClosing = () => {
    if (closing) throw stopRequested
  }
  starting = (async () => {
    try {
      if (!config.databaseUrl) {
        // Imported only when needed: containers run without the embedded binaries.
        const { startEmbeddedPostgres } = await import('./db/embedded.js')
        embedded = await startEmbeddedPostgres(config.dataDir, log)
        lap('embeddedDatabase')
      }
      unlessClosing()
      const databaseUrl = (config.databaseUrl ?? embedded?.url) as string
      if (!config.encryptionKeys) {
        log.warn(
          { file: `${config.dataDir}/encryption.key` },
          'ENCRYPTION_KEYS is not set: using a key file under DATA_DIR (set ENCRYPTION_KEYS in production)',
        )
      }
      // Independent of each other: the key file is read and the database prepared (its schema before buildApp: the
      // routes and the job runner expect it) while the app's modules load, one waiting on PostgreSQL, the other on the
      // CPU. They load once the database has been asked: evaluating them holds the event loop for a while.
      const preparing = Promise.all([
        config.encryptionKeys ?? localKeyRing(config.dataDir),
        prepareDatabase(databaseUrl, config, log),
      ])
      const loading = new Promise((resolve) => setImmediate(resolve)).then(() => import('./app.js'))
      loading.catch(() => {}) // awaited below, unless preparing failed first
      const [encryptionKeys, firstKey] = await preparing
      lap('keysAndDatabase')
      const { buildApp } = await loading
      lap('appModules')
      unlessClosing()

      app = await buildApp({ ...config, databaseUrl, encryptionKeys }, { logger: log, phases })
      lapStart = performance.now()
      unlessClosing()
      await app.listen({ port: config.port, host: config.host })
      lap('listen')
      const base = config.publicUrl
      const cache = codeCache() // the built service's (src/start.ts)
      app.log.info(
        {
          readyMs: Math.round(performance.now() - started),
          sinceProcessStartMs: Math.round(performance.now()),
          phases,
          ...(cache && { codeCache: cache.status }),
        },
        `ready: Swagger UI at ${base}/docs`,
      )
      // Now that the functions a start compiles have been compiled: the next start reads them from the cache.
      cache?.ready()
      if (firstKey) {
        // After the lines above: on a terminal they are written by a worker thread, which could fall behind.
        await new Promise((resolve) => log.flush(resolve))
        // Printed once, on stdout only; it is stored as a hash and cannot be shown again.
        process.stdout.write(
          `\nFirst start: an admin API key was created. Store it now, it is not shown again:\n\n  ${firstKey}\n\n` +
            `Try: curl -H "Authorization: Bearer ${firstKey}" ${base}/v1/companies\n\n`,
        )
      }
    } catch (error) {
      if (error === stopRequested) return // shutdown() closes what was started
      const code = (error as { code?: string }).code
      if (code === 'EADDRINUSE' || code === 'EACCES')
        log.fatal(`could not listen on ${config.host}:${config.port} (${code}): stop what uses it, or set PORT`)
      else if ((error as Error).name === 'EmbeddedPostgresError')
        log.fatal(`could not start: ${(error as Error).message}`)
      else log.fatal({ err: error }, 'could not start')
      await app?.close().catch(() => {})
      await embedded?.stop().catch(() => {})
      process.exit(1)
    }
  })()
}

/**
 * The database as the app expects it, on a connection of its own: the app's migrations and the job queue's schema
 * side by side (neither refers to the other; on a database already migrated one SELECT stands in for the migrator,
 * which otherwise takes its lock and reads its tables), then the first admin key. Resolves with that key when it was
 * created here.
 */
async function prepareDatabase(url: string, config: Config, log: Logger): Promise<string | undefined> {
  if (!config.migrateOnStart && !config.bootstrapAdminKey) return undefined
  const { db } = createDb({ url, ...config.db, poolMax: 1 }, log)
  try {
    if (config.migrateOnStart) {
      await Promise.all([
        (async () => {
          if (await isMigrated(db)) return
          for (const line of await migrateToLatest(db)) log.info({ component: 'db' }, line)
        })(),
        installQueueSchema(url),
      ])
    }
    return config.bootstrapAdminKey ? await ensureFirstAdminKey(db) : undefined
  } finally {
    await db.destroy()
  }
}

// Not awaited at the top level: the built service is a CommonJS bundle (src/cli/build.ts). A failure before the
// start proper (the logger) rejects, which ends the process.
void main()
