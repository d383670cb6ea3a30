// Procore ids are 64-bit integers. The HTTP layer parses integers beyond 2^53 as bigint; here
// every id in a response becomes a decimal string, and back into a bare JSON integer on the way
// out, so no id is ever a JS number past 2^53 (and none is a number at all past this file).

/** `*_id` keys that hold external or opaque text, not Procore record ids. */
const NOT_IDS: ReadonlySet<string> = new Set([
  'origin_id',
  'employee_id',
  'business_id',
  'tax_id',
  'source_application_id',
  'source_operation_id',
  'client_id',
  'ulid',
])
const DIGITS = /^\d{1,19}$/

const isIdKey = (key: string): boolean => key === 'id' || (key.endsWith('_id') && !NOT_IDS.has(key))
const isIdListKey = (key: string): boolean => key.endsWith('_ids')

function idText(value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString()
  if (typeof value === 'number' && Number.isInteger(value)) return String(value)
  return value
}

/** A response as the rest of the service sees it: ids (own and foreign) as decimal strings. */
export function idsToStrings(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(idsToStrings)
  if (value === null || typeof value !== 'object') return value
  const out: Record<string, unknown> = {}
  for (const [key, v] of Object.entries(value)) {
    if (isIdKey(key)) out[key] = typeof v === 'object' && v !== null ? idsToStrings(v) : idText(v)
    else if (isIdListKey(key) && Array.isArray(v)) out[key] = v.map(idText)
    else out[key] = idsToStrings(v)
  }
  return out
}

function idWire(value: unknown): unknown {
  return typeof value === 'string' && DIGITS.test(value) ? BigInt(value) : value
}

/** A request body as Procore expects it: decimal-string ids become bare JSON integers (bigint). */
export function idsToWire(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(idsToWire)
  if (value === null || typeof value !== 'object') return value
  const out: Record<string, unknown> = {}
  for (const [key, v] of Object.entries(value)) {
    if (isIdKey(key)) out[key] = typeof v === 'object' && v !== null ? idsToWire(v) : idWire(v)
    else if (isIdListKey(key) && Array.isArray(v)) out[key] = v.map(idWire)
    else out[key] = idsToWire(v)
  }
  return out
}

/** An id from any source (string, number within 2^53, bigint) as a decimal string, or undefined. */
export function idOf(value: unknown): string | undefined {
  if (typeof value === 'bigint') return value >= 0n ? value.toString() : undefined
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? String(value) : undefined
  return typeof value === 'string' && DIGITS.test(value) ? value : undefined
}
