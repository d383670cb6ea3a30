import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { sql, type Selectable } from 'kysely'
import { transaction, type Db, type Tx } from '../db/database.js'
import { executePrepared } from '../db/pool.js'
import type { ApiKeysTable, Role } from '../db/tables/api-keys.js'
import { badRequest, notFound } from '../errors.js'
import { keyset, type Page, type PageRequest } from '../api/pagination.js'
import type { ApiKey, CreatedApiKey, NewApiKey } from '../schemas/api-keys.js'

/** Who is calling: derived from the API key alone, never from the path or the body. */
export interface Principal {
  keyId: string
  role: Role
  /** null: every company. */
  companyIds: ReadonlySet<string> | null
}

export const Permissions = {
  read: ['admin', 'approver', 'operator', 'viewer'],
  sync: ['admin', 'operator'],
  approve: ['admin', 'approver'],
  admin: ['admin'],
} as const satisfies Record<string, readonly Role[]>
export type Permission = keyof typeof Permissions

export function can(principal: Principal, permission: Permission): boolean {
  return (Permissions[permission] as readonly Role[]).includes(principal.role)
}

export function inScope(principal: Principal, companyId: string): boolean {
  return principal.companyIds === null || principal.companyIds.has(companyId)
}

// Keys look like `esk_<lookup>_<secret>`: the lookup finds the row, only a hash of the secret is stored.
const KEY_PATTERN = /^esk_([a-z0-9]{16})_([A-Za-z0-9_-]{43})$/
const hashSecret = (secret: string) => createHash('sha256').update(secret).digest()

export type { NewApiKey }

export async function createApiKey(db: Db, input: NewApiKey): Promise<CreatedApiKey> {
  return transaction(db, (tx) => insertApiKey(tx, input))
}

/** The insert itself, for callers that already hold a transaction. */
export async function insertApiKey(tx: Tx, input: NewApiKey): Promise<CreatedApiKey> {
  const lookup = randomBytes(10).toString('hex').slice(0, 16)
  const secret = randomBytes(32).toString('base64url')
  const companyIds = input.companyIds === null ? null : [...new Set(input.companyIds)]
  if (companyIds !== null && companyIds.length > 0) {
    const found = await tx.selectFrom('companies').select('id').where('id', 'in', companyIds).execute()
    const missing = companyIds.filter((id) => !found.some((f) => f.id === id))
    if (missing.length > 0) {
      throw badRequest(
        'unknown_company',
        `No company with id ${missing.join(', ')} exists; create it first or fix the id.`,
        [{ pointer: '/body/companyIds', message: `unknown company ${missing.join(', ')}` }],
      )
    }
  }
  const row = await tx
    .insertInto('api_keys')
    .values({
      name: input.name,
      lookup,
      secret_hash: hashSecret(secret),
      role: input.role,
      all_companies: companyIds === null,
      last_used_at: null,
      revoked_at: null,
    })
    .returningAll()
    .executeTakeFirstOrThrow()
  if (companyIds !== null && companyIds.length > 0) {
    await tx
      .insertInto('api_key_companies')
      .values(companyIds.map((company_id) => ({ api_key_id: row.id, company_id })))
      .execute()
  }
  return { key: `esk_${lookup}_${secret}`, apiKey: toApiKey({ ...row, company_ids: companyIds }) }
}

/** Resolves a presented key to its principal; undefined for anything unknown, malformed or revoked. */
export async function authenticate(db: Db, presented: string): Promise<Principal | undefined> {
  const match = KEY_PATTERN.exec(presented)
  if (!match?.[1] || !match[2]) return undefined
  const { rows } = await executePrepared(
    db,
    db
      .selectFrom('api_keys')
      .select(['id', 'secret_hash', 'role', 'all_companies', 'revoked_at', 'last_used_at'])
      .select((eb) =>
        eb.fn
          .coalesce(
            eb
              .selectFrom('api_key_companies')
              .select(sql<string[]>`array_agg(company_id::text)`.as('ids'))
              .whereRef('api_key_id', '=', 'api_keys.id'),
            sql<string[]>`'{}'::text[]`,
          )
          .as('company_ids'),
      )
      .where('lookup', '=', match[1]),
  )
  const row = rows[0]
  if (!row || row.revoked_at !== null || !timingSafeEqual(row.secret_hash, hashSecret(match[2]))) return undefined
  // Coarse last-use tracking: at most one write per key per minute.
  if (row.last_used_at === null || Date.now() - row.last_used_at.getTime() > 60_000) {
    await db.updateTable('api_keys').set({ last_used_at: new Date() }).where('id', '=', row.id).execute()
  }
  return { keyId: row.id, role: row.role, companyIds: row.all_companies ? null : new Set(row.company_ids) }
}

type KeyRow = Omit<Selectable<ApiKeysTable>, 'secret_hash'> & { company_ids: string[] | null }

function toApiKey(row: KeyRow): ApiKey {
  return {
    id: row.id,
    name: row.name,
    prefix: `esk_${row.lookup}`,
    role: row.role,
    companyIds: row.all_companies ? null : (row.company_ids ?? []),
    createdAt: row.created_at.toISOString(),
    lastUsedAt: row.last_used_at?.toISOString() ?? null,
    revokedAt: row.revoked_at?.toISOString() ?? null,
  }
}
export type { ApiKey }

function selectKeys(db: Db) {
  return db
    .selectFrom('api_keys')
    .select(['id', 'name', 'lookup', 'role', 'all_companies', 'created_at', 'last_used_at', 'revoked_at'])
    .select(
      sql<string[]>`coalesce((select array_agg(company_id::text order by company_id) from api_key_companies k
        where k.api_key_id = api_keys.id), '{}')`.as('company_ids'),
    )
}

const apiKeysKeyset = keyset('api-keys', 'asc', [
  { column: 'created_at', type: 'timestamp' },
  { column: 'id', type: 'uuid' },
])

export async function listApiKeys(db: Db, page: PageRequest): Promise<Page<ApiKey>> {
  return apiKeysKeyset.page(selectKeys(db), page, toApiKey)
}

export async function getApiKey(db: Db, id: string): Promise<ApiKey> {
  const row = await selectKeys(db).where('id', '=', id).executeTakeFirst()
  if (!row) throw notFound('API key', id)
  return toApiKey(row)
}

/** Revoking is idempotent and immediate: the next request with the key gets 401. */
export async function revokeApiKey(db: Db, id: string): Promise<ApiKey> {
  await db
    .updateTable('api_keys')
    .set({ revoked_at: sql`coalesce(revoked_at, now())` })
    .where('id', '=', id)
    .execute()
  return getApiKey(db, id)
}
