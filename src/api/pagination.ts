import { badRequest } from '../errors.js'

/** Cursors are opaque to callers: base64url of the JSON array of the last row's sort key. */
export function encodeCursor(key: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url')
}

export function decodeCursor(cursor: string, arity: number): string[] {
  try {
    const key: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
    if (Array.isArray(key) && key.length === arity && key.every((v) => typeof v === 'string' || typeof v === 'number')) {
      return key.map(String)
    }
  } catch {
    // fall through to the error below
  }
  throw badRequest('invalid_cursor', 'The cursor is not one this API issued. Use the `next` value of the previous page, or omit it to start over.', [
    { pointer: '/query/cursor', message: 'unrecognised cursor' },
  ])
}

/** Rows were fetched with `limit + 1`; the extra row only tells whether another page exists. */
export function toPage<Row, Item>(rows: Row[], limit: number, keyOf: (row: Row) => (string | number)[], map: (row: Row) => Item) {
  const page = rows.slice(0, limit)
  const last = page.at(-1)
  return { items: page.map(map), next: rows.length > limit && last !== undefined ? encodeCursor(keyOf(last)) : null }
}
