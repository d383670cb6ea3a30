import { sql } from 'kysely'
import { pino } from 'pino'
import { ConfigError, loadConfig } from '../config.js'
import type { Db } from '../db/database.js'
import { migrateToLatest } from '../db/migrate.js'
import { createDb } from '../db/pool.js'
import { AppError } from '../errors.js'
import { installQueueSchema } from '../jobs/queue.js'

/** An error the user can fix; printed as its message alone, on one line. */
export class CliError extends Error {
  override name = 'CliError'
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message)
  }
}

export function fail(message: string, exitCode = 2): never {
  throw new CliError(message, exitCode)
}

/**
 * Runs a command-line task and turns every failure into one line on stderr that says what to do,
 * with a non-zero exit code; never a stack trace.
 */
export async function runCli(main: () => Promise<void>): Promise<void> {
  try {
    await main()
  } catch (error) {
    console.error(explain(error))
    // Exit here: the embedded PostgreSQL's exit hook would otherwise end the process with 0.
    process.exit(error instanceof CliError ? error.exitCode : 1)
  }
}

/**
 * Runs a command-line task against the service's database: DATABASE_URL, or the embedded
 * PostgreSQL under DATA_DIR (used as it is when the service is running, started briefly otherwise).
 * With `schema: true` the task needs the service's tables: pending migrations are applied first,
 * as the service does at start (unless MIGRATE_ON_START=false, which leaves that to `npm run migrate`).
 */
export async function withDatabase<T>(
  task: (db: Db, url: string) => Promise<T>,
  options: { schema?: boolean } = {},
): Promise<T> {
  let config
  try {
    config = loadConfig(process.env)
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message, 78)
    throw error
  }
  const log = pino({ level: 'warn' })
  const embedded = config.databaseUrl
    ? undefined
    : await (await import('../db/embedded.js')).startEmbeddedPostgres(config.dataDir, log, { attach: true })
  const url = config.databaseUrl ?? embedded!.url
  const { db } = createDb({ url, ...config.db }, log)
  try {
    if (options.schema) {
      if (config.migrateOnStart) {
        await migrateToLatest(db)
        await installQueueSchema(url)
      } else {
        const { rows } = await sql<{ found: string | null }>`select to_regclass('api_keys')::text as found`.execute(db)
        if (!rows[0]?.found) fail('The database has no tables yet: run `npm run migrate` first.')
      }
    }
    return await task(db, url)
  } finally {
    await db.destroy()
    await embedded?.stop()
  }
}

/** One line for any failure: what went wrong and what to do about it. */
function explain(error: unknown): string {
  if (error instanceof CliError) return error.message
  if (error instanceof AppError) return error.detail
  const e = error as { code?: string; message?: string; address?: string; port?: number } | undefined
  const message = e?.message?.split('\n')[0] ?? String(error)
  switch (e?.code) {
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'ETIMEDOUT':
    case 'EAI_AGAIN':
    case '28P01': // wrong password
    case '28000': // no such role / not allowed
    case '3D000': // no such database
      return `Could not reach the database (${message}): check DATABASE_URL, or unset it to use the embedded one.`
    case '42P01': // a table is missing
      return `The database schema is out of date (${message}): run \`npm run migrate\` first.`
  }
  return message
}
