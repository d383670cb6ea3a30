import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import type { Logger } from 'pino'
import type { Database, Db } from './database.js'

export interface DbOptions {
  url: string
  poolMax: number
  connectTimeoutMs: number
  statementTimeoutMs: number
}

/**
 * A pg pool with bounded waits (pg's default is to wait forever for a connection) and an error
 * handler (an idle client's error would otherwise crash the process), wrapped in Kysely.
 */
export function createDb(options: DbOptions, log: Pick<Logger, 'error' | 'warn'>): { db: Db; pool: pg.Pool } {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolMax,
    connectionTimeoutMillis: options.connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    statement_timeout: options.statementTimeoutMs,
    idle_in_transaction_session_timeout: Math.max(options.statementTimeoutMs * 2, 10_000),
    application_name: 'procore-erp-sync',
  })
  // An unhandled 'error' from an idle client (or one a library holds, like the job queue's LISTEN connection) would
  // crash the process.
  // An idle client's error reaches both handlers: it is reported once.
  const reported = new WeakSet<Error>()
  let serverStopping = false
  const report = (error: Error) => {
    if (reported.has(error)) return
    reported.add(error)
    if ((error as { code?: string }).code === '57P01') {
      // admin_shutdown: the server is stopping (Ctrl-C reaches an embedded PostgreSQL too); said once per pool.
      if (!serverStopping) log.warn({ component: 'db' }, 'the database server is shutting down')
      serverStopping = true
    } else log.error({ component: 'db', err: { message: error.message } }, 'database client failed')
  }
  pool.on('error', report)
  const open = new Set<pg.Client>()
  pool.on('connect', (client) => {
    open.add(client)
    client.once('end', () => open.delete(client))
    client.on('error', report)
  })
  // pg's pool.end() resolves before its connections have closed; an embedded PostgreSQL stopped right after
  // would still find them open and terminate them with errors. Kysely's destroy() calls this, so it waits too.
  const end = pool.end.bind(pool)
  pool.end = async () => {
    await end()
    await Promise.all([...open].map((client) => new Promise((resolve) => client.once('end', resolve))))
  }
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) })
  return { db, pool }
}
