import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { pino } from 'pino'
import tap, { type Test } from 'tap'
import type { Database } from '../../src/db/database.js'
import { startEmbeddedPostgres } from '../../src/db/embedded.js'
import { migrateToLatest } from '../../src/db/migrate.js'
import { installQueueSchema } from '../../src/jobs/queue.js'

let server: Promise<string> | undefined

/** The PostgreSQL server tests use: TEST_DATABASE_URL, or an embedded one for this process. */
function serverUrl(): Promise<string> {
  if (process.env.TEST_DATABASE_URL) return Promise.resolve(process.env.TEST_DATABASE_URL)
  server ??= (async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'erp-sync-pg-'))
    const embedded = await startEmbeddedPostgres(dir, pino({ level: 'warn' }))
    // The postgres child keeps the event loop alive: stop it when the file's last test is done.
    tap.teardown(async () => {
      await embedded.stop()
      await rm(dir, { recursive: true, force: true })
    })
    return embedded.url
  })()
  return server
}

/**
 * A fresh, empty database for one test file (so tap can run files in parallel), dropped at the
 * end. `migrate: false` leaves it without tables.
 */
export async function testDatabase(t: Test, options: { migrate?: boolean } = {}): Promise<string> {
  const base = await serverUrl()
  const name = `t_${path
    .basename(t.name || 'x')
    .replace(/\W+/g, '_')
    .slice(0, 30)}_${randomBytes(4).toString('hex')}`.toLowerCase()
  const admin = new pg.Client(base)
  await admin.connect()
  await admin.query(`create database "${name}"`)
  await admin.end()
  const url = new URL(base)
  url.pathname = `/${name}`
  t.teardown(async () => {
    const c = new pg.Client(base)
    await c.connect()
    await c.query(`drop database if exists "${name}" with (force)`)
    await c.end()
  })
  if (options.migrate !== false) {
    const db = new Kysely<Database>({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url.toString(), max: 1 }) }),
    })
    await migrateToLatest(db)
    await db.destroy()
    await installQueueSchema(url.toString())
  }
  return url.toString()
}
