import { pino } from 'pino'
import { ConfigError, loadConfig } from '../config.js'
import type { Db } from '../db/database.js'
import { createDb } from '../db/pool.js'

/**
 * Runs a command-line task against the service's database: DATABASE_URL, or the embedded
 * PostgreSQL under DATA_DIR (used as it is when the service is running, started briefly otherwise).
 */
export async function withDatabase<T>(task: (db: Db, url: string) => Promise<T>): Promise<T> {
  let config
  try {
    config = loadConfig(process.env)
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message)
      process.exit(78)
    }
    throw error
  }
  const log = pino({ level: 'warn' })
  const embedded = config.databaseUrl
    ? undefined
    : await (await import('../db/embedded.js')).startEmbeddedPostgres(config.dataDir, log, { attach: true })
  const url = config.databaseUrl ?? embedded!.url
  const { db } = createDb({ url, ...config.db }, log)
  try {
    return await task(db, url)
  } finally {
    await db.destroy()
    await embedded?.stop()
  }
}

export function fail(message: string): never {
  console.error(message)
  process.exit(2)
}
