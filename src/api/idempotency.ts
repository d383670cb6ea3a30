import { createHash } from 'node:crypto'
import { sql } from 'kysely'
import type { Db } from '../db/database.js'
import { executePrepared } from '../db/pool.js'

/** How long a request may hold a key before a retry may take it over (the first was presumably lost). */
const LEASE_SECONDS = 300

export type Claim =
  | { kind: 'claimed' }
  | { kind: 'replay'; status: number; headers: Record<string, string>; body: string }
  | { kind: 'mismatch' }
  | { kind: 'in_flight' }

export interface KeyRef {
  apiKeyId: string
  key: string
}

/** SHA-256 over method, path with query, and the body with object keys sorted. */
export function fingerprint(method: string, url: string, body: unknown): string {
  return createHash('sha256')
    .update(`${method} ${url}\n${canonicalJson(body)}`)
    .digest('hex')
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
  }
  return JSON.stringify(value) ?? 'null'
}

/**
 * Claims (api key, Idempotency-Key) with one atomic INSERT … ON CONFLICT; exactly one of any
 * number of concurrent requests wins. Keys older than the retention are treated as unused.
 */
export async function claimKey(
  db: Db,
  ref: KeyRef,
  request: { method: string; route: string; fingerprint: string },
  ttlHours: number,
): Promise<Claim> {
  for (let attempt = 0; attempt < 2; attempt++) {
    const {
      rows: [inserted],
    } = await executePrepared(
      db,
      db
        .insertInto('idempotency_keys')
        .values({
          api_key_id: ref.apiKeyId,
          key: ref.key,
          method: request.method,
          route: request.route,
          fingerprint: request.fingerprint,
          locked_until: sql<Date>`now() + make_interval(secs => ${LEASE_SECONDS})`,
          response_status: null,
          response_headers: null,
          response_body: null,
          completed_at: null,
        })
        .onConflict((oc) => oc.columns(['api_key_id', 'key']).doNothing())
        .returning('key'),
    )
    if (inserted) return { kind: 'claimed' }

    const existing = await db
      .selectFrom('idempotency_keys')
      .select(['fingerprint', 'completed_at', 'response_status', 'response_headers', 'response_body'])
      .select(sql<boolean>`created_at < now() - make_interval(hours => ${ttlHours})`.as('expired'))
      .select(sql<boolean>`locked_until > now()`.as('locked'))
      .where('api_key_id', '=', ref.apiKeyId)
      .where('key', '=', ref.key)
      .executeTakeFirst()
    if (!existing) continue // released between our insert and select: try once more
    if (existing.expired) {
      await release(db, ref)
      continue
    }
    if (existing.fingerprint !== request.fingerprint) return { kind: 'mismatch' }
    if (existing.completed_at !== null && existing.response_status !== null) {
      return {
        kind: 'replay',
        status: existing.response_status,
        headers: existing.response_headers ?? {},
        body: existing.response_body ?? '',
      }
    }
    if (existing.locked) return { kind: 'in_flight' }
    // The holder's lease ran out without a response (crash): take it over, if nobody else just did.
    const taken = await db
      .updateTable('idempotency_keys')
      .set({ locked_until: sql<Date>`now() + make_interval(secs => ${LEASE_SECONDS})` })
      .where('api_key_id', '=', ref.apiKeyId)
      .where('key', '=', ref.key)
      .where('completed_at', 'is', null)
      .where('locked_until', '<=', sql<Date>`now()`)
      .returning('key')
      .executeTakeFirst()
    return taken ? { kind: 'claimed' } : { kind: 'in_flight' }
  }
  return { kind: 'in_flight' }
}

export async function complete(
  db: Db,
  ref: KeyRef,
  response: { status: number; headers: Record<string, string>; body: string },
) {
  await executePrepared(
    db,
    db
      .updateTable('idempotency_keys')
      .set({
        response_status: response.status,
        response_headers: JSON.stringify(response.headers),
        response_body: response.body,
        completed_at: new Date(),
        locked_until: null,
      })
      .where('api_key_id', '=', ref.apiKeyId)
      .where('key', '=', ref.key),
  )
}

/** Forgets an unfinished claim so that the caller may retry (after a 5xx, or an aborted request). */
export async function release(db: Db, ref: KeyRef) {
  await db.deleteFrom('idempotency_keys').where('api_key_id', '=', ref.apiKeyId).where('key', '=', ref.key).execute()
}

export async function purgeExpiredKeys(db: Db, ttlHours: number): Promise<number> {
  const result = await db
    .deleteFrom('idempotency_keys')
    .where(sql<boolean>`created_at < now() - make_interval(hours => ${ttlHours})`)
    .executeTakeFirst()
  return Number(result.numDeletedRows)
}
