// Procore ids are 64-bit integers in JSON. The stand-in keeps every id as a decimal string
// internally and converts at the edges, so ids above 2^53 survive both directions intact.

/** `*_id` keys that carry external or opaque strings, not Procore record ids. */
const NOT_IDS = new Set(['origin_id', 'employee_id', 'business_id', 'source_application_id', 'source_operation_id'])
const DIGITS = /^\d+$/

export function isIdKey(key: string): boolean {
  return key === 'id' || (key.endsWith('_id') && !NOT_IDS.has(key))
}

function isIdListKey(key: string): boolean {
  return key.endsWith('_ids')
}

/** Text that `toJson` emits verbatim (e.g. a webhook body exactly as it was sent). */
export class RawJson {
  constructor(readonly text: string) {}
}

/** JSON.stringify, except that digit-string values under id keys are written as bare integers. */
export function toJson(value: unknown): string {
  return write(value, false)
}

function write(value: unknown, asId: boolean): string {
  if (value instanceof RawJson) return value.text
  if (asId && typeof value === 'string' && DIGITS.test(value)) return value
  if (typeof value === 'bigint') return value.toString()
  if (Array.isArray(value)) return `[${value.map((v: unknown) => write(v ?? null, asId)).join(',')}]`
  if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
    const parts: string[] = []
    for (const [key, v] of Object.entries(value)) {
      if (v === undefined || typeof v === 'function') continue
      parts.push(`${JSON.stringify(key)}:${write(v, isIdKey(key) || isIdListKey(key))}`)
    }
    return `{${parts.join(',')}}`
  }
  return JSON.stringify(value) ?? 'null'
}

/** JSON.parse that turns integers beyond 2^53 into digit strings instead of rounding them. */
export function parseJson(text: string): unknown {
  return JSON.parse(/\d{16}/.test(text) ? quoteUnsafeIntegers(text) : text)
}

function quoteUnsafeIntegers(text: string): string {
  let out = ''
  let copied = 0
  let i = 0
  while (i < text.length) {
    const c = text.charAt(i)
    if (c === '"') {
      i++
      while (i < text.length && text.charAt(i) !== '"') i += text.charAt(i) === '\\' ? 2 : 1
      i++
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      let j = i + 1
      while (j < text.length && /[\d.eE+-]/.test(text.charAt(j))) j++
      const token = text.slice(i, j)
      if (/^-?\d+$/.test(token) && !Number.isSafeInteger(Number(token))) {
        out += `${text.slice(copied, i)}"${token}"`
        copied = j
      }
      i = j
    } else {
      i++
    }
  }
  return out + text.slice(copied)
}

/** Id fields of an incoming body become decimal strings, whether they came as numbers or strings. */
export function normalizeIds(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalizeIds)
  if (value === null || typeof value !== 'object') return value
  const out: Record<string, unknown> = {}
  for (const [key, v] of Object.entries(value)) {
    if (isIdKey(key)) out[key] = idString(v)
    else if (isIdListKey(key) && Array.isArray(v)) out[key] = v.map(idString)
    else out[key] = normalizeIds(v)
  }
  return out
}

function idString(v: unknown): unknown {
  return typeof v === 'number' && Number.isInteger(v) ? String(v) : normalizeIds(v)
}
