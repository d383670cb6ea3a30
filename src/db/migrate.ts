import { sql } from 'kysely'
import { DEFAULT_MIGRATION_TABLE, Migrator, NO_MIGRATIONS, type MigrationResultSet } from 'kysely/migration'
import { migrations } from '../../migrations/index.js'
import type { Db } from './database.js'

/** Kysely's migrator takes its own lock, so instances starting together migrate once. */
export function migrator(db: Db): Migrator {
  return new Migrator({ db, provider: { getMigrations: () => Promise.resolve(migrations) } })
}

/**
 * Throws when any migration failed. Kysely reports earlier steps as Success even when the batch rolled back, so check
 * `error`.
 */
function unwrap(result: MigrationResultSet): string[] {
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error')?.migrationName
    // No migration ran (no connection, an unknown target): the cause alone says what to fix.
    if (!failed && result.error instanceof Error) throw result.error
    const cause = result.error instanceof Error ? result.error.message : JSON.stringify(result.error)
    throw new Error(`Migration ${failed ?? '(unknown)'} failed, nothing was applied: ${cause}`)
  }
  return (result.results ?? []).map((r) => `${r.direction === 'Up' ? 'applied' : 'reverted'} ${r.migrationName}`)
}

/**
 * True when exactly the known migrations are applied, the latest last: one SELECT, no lock. Anything else (no table
 * yet, one missing, one this build does not know) is for the migrator to apply or to refuse.
 */
export async function isMigrated(db: Db): Promise<boolean> {
  const names = Object.keys(migrations)
  try {
    const { rows } = await sql<{ applied: string[] }>`
      select coalesce(array_agg(name order by name), '{}') as applied
      from ${sql.table(DEFAULT_MIGRATION_TABLE)}`.execute(db)
    const applied = rows[0]?.applied ?? []
    return applied.length === names.length && [...names].sort().every((name, i) => applied[i] === name)
  } catch {
    return false
  }
}

export async function migrateToLatest(db: Db): Promise<string[]> {
  return unwrap(await migrator(db).migrateToLatest())
}

export async function migrateDown(db: Db): Promise<string[]> {
  return unwrap(await migrator(db).migrateDown())
}

/** Migrates up or down to exactly `name`; `none` reverts everything. */
export async function migrateTo(db: Db, name: string): Promise<string[]> {
  return unwrap(await migrator(db).migrateTo(name === 'none' ? NO_MIGRATIONS : name))
}
