import { sql } from 'kysely'
import type { Db } from './database.js'

/** True when a trivial query completes within two seconds. */
export async function databaseReady(db: Db): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), 2000)
  })
  try {
    return await Promise.race([sql`select 1`.execute(db).then(() => true as const), timeout])
  } catch {
    return false
  } finally {
    clearTimeout(timer)
  }
}
