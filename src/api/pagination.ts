import { sql, type RawBuilder, type SelectQueryBuilder, type SqlBool } from 'kysely'
import { badRequest } from '../errors.js'

/**
 * Keyset pagination, the one way every list pages. A list declares its keyset once: its name,
 * its order and the typed columns of its sort key. The cursor handed to callers is base64url
 * JSON of `[list, ...the last row's key]`. Decoding checks the list and every component against
 * its declared type, so a forged, truncated, foreign or wrong-typed cursor answers 400 naming
 * `cursor` and never reaches PostgreSQL. Cursors are not signed: a forged one can only move the
 * position within rows the caller may read anyway.
 */

export interface PageRequest {
  limit: number
  cursor?: string | undefined
}

/** The page a list route's query asks for (its schema defaults `limit` to 50). */
export const pageOf = (query: { limit?: number | undefined; cursor?: string | undefined }): PageRequest => ({
  limit: query.limit ?? 50,
  cursor: query.cursor,
})

export interface Page<Item> {
  items: Item[]
  next: string | null
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
// Microseconds: PostgreSQL keeps them, and a key cut to milliseconds would skip rows at page ends.
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/
const MAX_INT8 = 9_223_372_036_854_775_807n

/** A real instant PostgreSQL accepts: the calendar checked (no 30 February), year 1 or later. */
function timestamp(v: string): boolean {
  const ms = Date.parse(v)
  return (
    TIMESTAMP.test(v) &&
    !v.startsWith('0000') &&
    !Number.isNaN(ms) &&
    new Date(ms).toISOString().slice(0, 19) === v.slice(0, 19)
  )
}
const bigint = (v: string) => /^\d{1,19}$/.test(v) && BigInt(v) <= MAX_INT8

type Column = RawBuilder<unknown>
const asText = (c: Column) => sql`${c}::text`

/** Types a key component can have: how it is checked, cast back in SQL, and read as exact text. */
const KeyTypes = {
  timestamp: {
    valid: timestamp,
    cast: sql`timestamptz`,
    text: (c: Column) => sql`to_char(${c} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`,
  },
  uuid: { valid: (v: string) => UUID.test(v), cast: sql`uuid`, text: asText },
  bigint: { valid: bigint, cast: sql`int8`, text: asText },
  // PostgreSQL text cannot hold NUL.
  text: { valid: (v: string) => !v.includes('\u0000'), cast: sql`text`, text: asText },
} as const
export type KeyType = keyof typeof KeyTypes

export interface KeyColumn {
  /** A column reference (`created_at`, `d.id`) or an SQL expression (`sort_key collate "C"`). */
  column: string | Column
  type: KeyType
}

const invalid = (why: string) =>
  badRequest(
    'invalid_cursor',
    'The `cursor` query parameter is not one this list issued: it is malformed, truncated or from another list. ' +
      'Start again from the first page: repeat the request without `cursor`, then follow `next`.',
    [{ pointer: '/query/cursor', message: `${why}; omit cursor to start from the first page` }],
  )

export class Keyset {
  readonly #columns: ReadonlyArray<{ expr: Column; type: KeyType }>

  /**
   * @param list names the list in its cursors, so a cursor of another list is refused.
   * @param order one direction for every column: the keyset is compared as one row value.
   */
  constructor(
    readonly list: string,
    readonly order: 'asc' | 'desc',
    columns: readonly KeyColumn[],
  ) {
    this.#columns = columns.map((c) => ({
      expr: typeof c.column === 'string' ? sql.ref(c.column) : c.column,
      type: c.type,
    }))
  }

  encode(key: readonly string[]): string {
    return Buffer.from(JSON.stringify([this.list, ...key])).toString('base64url')
  }

  /** The key after which the page starts (null: the first page); 400 for a cursor this list did not issue. */
  decode(cursor: string | undefined): string[] | null {
    if (cursor === undefined || cursor === '') return null
    let decoded: unknown
    try {
      decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
    } catch {
      throw invalid('not a cursor')
    }
    if (!Array.isArray(decoded) || !decoded.every((v) => typeof v === 'string') || decoded.length === 0) {
      throw invalid('not a cursor')
    }
    const [list, ...key] = decoded
    if (list !== this.list) throw invalid('a cursor of another list')
    if (key.length !== this.#columns.length) throw invalid('a cursor of another shape')
    key.forEach((value, i) => {
      const type = this.#columns[i]!.type
      if (!KeyTypes[type].valid(value)) throw invalid(`component ${i + 1} is not a ${type}`)
    })
    return key
  }

  /** `(a, b) < (…)` for a descending list, `>` for an ascending one: the rows after `key`. */
  after(key: readonly string[]): RawBuilder<SqlBool> {
    const columns = sql.join(this.#columns.map((c) => c.expr))
    const values = sql.join(key.map((v, i) => sql`${v}::${KeyTypes[this.#columns[i]!.type].cast}`))
    return sql<SqlBool>`(${columns}) ${sql.raw(this.order === 'desc' ? '<' : '>')} (${values})`
  }

  /** The ORDER BY list: every key column in the list's direction. */
  orderBy(): Column {
    return sql.join(this.#columns.map((c) => sql`${c.expr} ${sql.raw(this.order)}`))
  }

  /** Rows were fetched with `limit + 1`: the extra row only tells that another page exists. */
  toPage<Row, Item>(
    rows: readonly Row[],
    limit: number,
    keyOf: (row: Row) => readonly string[],
    map: (row: Row) => Item,
  ): Page<Item> {
    const page = rows.slice(0, limit)
    const last = page.at(-1)
    return { items: page.map(map), next: rows.length > limit && last !== undefined ? this.encode(keyOf(last)) : null }
  }

  /**
   * Runs a list query one page at a time: orders it by the key, starts after the cursor, fetches
   * `limit + 1` rows and maps them. The key is read back as exact text (timestamps to the
   * microsecond), so the next page starts exactly where this one ended.
   */
  async page<DB, TB extends keyof DB, O, Item>(
    query: SelectQueryBuilder<DB, TB, O>,
    request: PageRequest,
    map: (row: O) => Item,
  ): Promise<Page<Item>> {
    const key = this.decode(request.cursor)
    const keyText = sql<string[]>`array[${sql.join(this.#columns.map((c) => KeyTypes[c.type].text(c.expr)))}]`
    let q = query
      .select(keyText.as('page_key'))
      .orderBy(this.orderBy())
      .limit(request.limit + 1)
    if (key) q = q.where(this.after(key))
    const rows = (await q.execute()) as Array<O & { page_key: string[] }>
    return this.toPage(rows, request.limit, (r) => r.page_key, map)
  }
}

/** Declares a list's keyset: its cursor name, its direction and the typed columns of its sort key. */
export const keyset = (list: string, order: 'asc' | 'desc', columns: readonly KeyColumn[]) =>
  new Keyset(list, order, columns)
