import { sql } from 'kysely'
import { transaction, type Db } from '../db/database.js'
import { insertApiKey } from './api-keys.js'

/**
 * On first start there is no key to call the API with: create one admin key. Several instances
 * starting at once serialise on an advisory lock, so exactly one key is made. Returns the new
 * key, or undefined when keys already exist.
 */
export async function ensureFirstAdminKey(db: Db): Promise<string | undefined> {
  // Every start after the first finds a key: one SELECT, without the transaction and lock that making one takes.
  if (await anyKey(db)) return undefined
  return transaction(db, async (tx) => {
    await sql`select pg_advisory_xact_lock(hashtext('bootstrap-admin-key'))`.execute(tx)
    if (await anyKey(tx)) return undefined
    const { key } = await insertApiKey(tx, { name: 'bootstrap admin', role: 'admin', companyIds: null })
    return key
  })
}

async function anyKey(db: Db): Promise<boolean> {
  return (await db.selectFrom('api_keys').select('id').limit(1).executeTakeFirst()) !== undefined
}
