import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import t from 'tap'
import { migrations } from '../../migrations/index.js'
import type { Database } from '../../src/db/database.js'
import { migrateTo, migrateToLatest, migrator } from '../../src/db/migrate.js'
import { testDatabase } from '../helpers/db.js'

/** A pool for a test database; the database is dropped (with force) at teardown, so idle-client errors are expected. */
function connect(url: string) {
  const pool = new pg.Pool({ connectionString: url, max: 2 })
  pool.on('error', () => {})
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) })
}

async function tables(db: Kysely<Database>) {
  const { rows } = await sql<{ t: string }>`select table_name as t from information_schema.tables
    where table_schema = 'public' and table_name not like 'kysely_%' order by 1`.execute(db)
  return rows.map((r) => r.t)
}

t.test('migrations build the schema from an empty database, and every down reverts its up', async (t) => {
  const db = connect(await testDatabase(t, { migrate: false }))
  t.teardown(() => db.destroy())
  t.same(await tables(db), [], 'empty to start with')

  const applied = await migrateToLatest(db)
  t.same(
    applied,
    Object.keys(migrations).map((name) => `applied ${name}`),
  )
  const full = await tables(db)
  t.ok(full.includes('companies') && full.includes('api_keys') && full.includes('idempotency_keys'))
  t.same(await migrateToLatest(db), [], 'running again does nothing')

  t.ok(
    (await migrator(db).getMigrations()).every((m) => m.executedAt),
    'all applied',
  )
  await migrateTo(db, 'none')
  t.same(await tables(db), [], 'all the way down leaves nothing behind')
  await migrateToLatest(db)
  t.same(await tables(db), full, 'and back up again')
})

t.test('a failing migration batch applies nothing and says which one failed', async (t) => {
  const db = connect(await testDatabase(t, { migrate: false }))
  t.teardown(() => db.destroy())
  await sql`create table companies (id int)`.execute(db) // collides with the first migration
  await t.rejects(migrateToLatest(db), /Migration 0001_foundation failed, nothing was applied/)
  t.notOk((await tables(db)).includes('api_keys'))
})
