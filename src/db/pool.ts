import { createHash } from 'node:crypto'
import { CompiledQuery, Kysely, PostgresDialect, type Compilable, type QueryResult, type RawBuilder } from 'kysely'
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
    prepareMarked(client)
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
  pools.set(db, pool)
  return { db, pool }
}

/**
 * The opening of a statement that is prepared once per connection and then only bound and executed: PostgreSQL
 * skips parsing and planning it again (for the webhook intake's one statement, most of its cost). For hot statements
 * whose text is one of a few fixed shapes (values are parameters) and whose plan does not depend on the values: each
 * distinct text stays prepared on each connection for the connection's life. Write it first in a `sql` template, or
 * run a query builder through `executePrepared`.
 */
export const PREPARED = '/* prepared */ '

/** The pool under each handle createDb made: a preparedStatement run outside a transaction goes to it directly. */
const pools = new WeakMap<Db, pg.Pool>()
const WRITES = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE'])

const statementNames = new Map<string, string>()

function statementName(text: string): string {
  let name = statementNames.get(text)
  if (name === undefined) {
    name = `p_${createHash('sha256').update(text).digest('base64url').slice(0, 24)}`
    statementNames.set(text, name)
  }
  return name
}

/** Kysely (and pg's pool) send a statement as `client.query(text, values)`; a marked text goes as a named one. */
function prepareMarked(client: pg.PoolClient): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown
  client.query = ((text: unknown, values?: unknown, callback?: unknown) =>
    typeof text === 'string' && text.startsWith(PREPARED) && typeof callback !== 'function'
      ? query({ name: statementName(text), text, values })
      : query(text, values, callback)) as typeof client.query
}

/** Runs a query builder's statement as a prepared one (see PREPARED). */
export async function executePrepared<R>(db: Db, query: Compilable<R>): Promise<QueryResult<R>> {
  const compiled = query.compile()
  return db.executeQuery<R>({ ...compiled, sql: PREPARED + compiled.sql })
}

/** A named parameter of a preparedStatement: replaced by that argument's value on every call. */
class Parameter {
  constructor(readonly name: string) {}
  // Building a statement's text from a parameter's value would freeze the first call's value into every call.
  [Symbol.toPrimitive](): never {
    throw new Error(`preparedStatement: the parameter ${this.name} is only a placeholder while the statement is built`)
  }
}

const placeholders = new Proxy(
  {},
  {
    get: (_target, name) => (typeof name === 'string' ? new Parameter(name) : undefined),
  },
)

/**
 * A hot statement whose text is built and compiled once, at its first call, and then only executed with each call's
 * arguments, prepared (see PREPARED): no query building or compiling per call. `build` receives placeholders, one per
 * argument, and writes them where values go (`${p.companyId}::bigint`); it must not branch on them, so a statement
 * with several shapes is one preparedStatement per shape. Values written as literals in `build` are the same on
 * every call.
 */
export function preparedStatement<A extends object, R>(
  build: (params: A) => RawBuilder<R>,
): (db: Db, args: A) => Promise<QueryResult<R>> {
  let compiled: { name: string; sql: string; parameters: readonly unknown[] } | undefined
  return async (db, args) => {
    if (compiled === undefined) {
      const { sql, parameters } = build(placeholders as unknown as A).compile(db)
      compiled = { name: statementName(PREPARED + sql), sql: PREPARED + sql, parameters }
    }
    const { name, sql, parameters } = compiled
    const values = new Array<unknown>(parameters.length)
    for (let i = 0; i < parameters.length; i++) {
      const p = parameters[i]
      values[i] = p instanceof Parameter ? (args as Record<string, unknown>)[p.name] : p
    }
    // Outside a transaction, straight to the pool: Kysely's executor would add only promise hops here.
    const pool = pools.get(db)
    if (pool === undefined) return db.executeQuery<R>(CompiledQuery.raw(sql, values))
    const result = await pool.query<R & pg.QueryResultRow>({ name, text: sql, values })
    // As Kysely's PostgreSQL driver reports it.
    return WRITES.has(result.command)
      ? { rows: result.rows, numAffectedRows: BigInt(result.rowCount ?? 0) }
      : { rows: result.rows }
  }
}
