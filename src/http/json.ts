// JSON that keeps integers beyond ±2^53 exact: Procore ids can exceed Number.MAX_SAFE_INTEGER,
// and JSON.parse would silently round them. Such integers become `bigint`.

/**
 * Parses JSON like JSON.parse, except that integer literals outside the safe range become bigint.
 * Throws SyntaxError on invalid JSON.
 */
export function parseJson(text: string): unknown {
  // Integers of at most 15 digits are always safe, so without a 16-digit run JSON.parse is exact.
  if (!/\d{16}/.test(text)) return JSON.parse(text)
  return new Parser(text).document()
}

/** Serialises like JSON.stringify, except that bigint is written as a bare integer. */
export function stringifyJson(value: unknown): string {
  const out = write(value, '', new Set())
  if (out === undefined) throw new TypeError(`cannot serialise ${typeof value} as JSON`)
  return out
}

const WHITESPACE = /[ \t\n\r]*/y
// JSON forbids raw control characters inside strings, so they end a plain run.
// eslint-disable-next-line no-control-regex
const PLAIN_CHARS = /[^"\\\u0000-\u001f]*/y
const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y
const HEX4 = /^[0-9a-fA-F]{4}$/
const ESCAPES: Readonly<Record<string, string>> = {
  '"': '"',
  '\\': '\\',
  '/': '/',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
}

class Parser {
  #pos = 0
  readonly #text: string

  constructor(text: string) {
    this.#text = text
  }

  document(): unknown {
    const value = this.#value()
    this.#skipWhitespace()
    if (this.#pos < this.#text.length) this.#fail('unexpected data after the JSON value')
    return value
  }

  #value(): unknown {
    this.#skipWhitespace()
    switch (this.#text[this.#pos]) {
      case '{':
        return this.#object()
      case '[':
        return this.#array()
      case '"':
        return this.#string()
      case 't':
        return this.#literal('true', true)
      case 'f':
        return this.#literal('false', false)
      case 'n':
        return this.#literal('null', null)
      default:
        return this.#number()
    }
  }

  #object(): Record<string, unknown> {
    this.#pos++
    const object: Record<string, unknown> = {}
    this.#skipWhitespace()
    if (this.#eat('}')) return object
    for (;;) {
      this.#skipWhitespace()
      if (this.#text[this.#pos] !== '"') this.#fail('expected a property name')
      const key = this.#string()
      this.#skipWhitespace()
      this.#expect(':')
      // defineProperty, not assignment: a "__proto__" key must stay an own property, as with JSON.parse.
      Object.defineProperty(object, key, { value: this.#value(), enumerable: true, writable: true, configurable: true })
      this.#skipWhitespace()
      if (this.#eat(',')) continue
      this.#expect('}')
      return object
    }
  }

  #array(): unknown[] {
    this.#pos++
    const array: unknown[] = []
    this.#skipWhitespace()
    if (this.#eat(']')) return array
    for (;;) {
      array.push(this.#value())
      this.#skipWhitespace()
      if (this.#eat(',')) continue
      this.#expect(']')
      return array
    }
  }

  #string(): string {
    this.#pos++
    let out = ''
    for (;;) {
      PLAIN_CHARS.lastIndex = this.#pos
      PLAIN_CHARS.test(this.#text)
      out += this.#text.slice(this.#pos, PLAIN_CHARS.lastIndex)
      this.#pos = PLAIN_CHARS.lastIndex
      const char = this.#text[this.#pos++]
      if (char === '"') return out
      if (char !== '\\') this.#fail(char === undefined ? 'unterminated string' : 'control character in string')
      const escape = this.#text[this.#pos++] ?? ''
      if (escape === 'u') {
        const hex = this.#text.slice(this.#pos, this.#pos + 4)
        if (!HEX4.test(hex)) this.#fail('bad \\u escape')
        out += String.fromCharCode(parseInt(hex, 16))
        this.#pos += 4
      } else {
        const decoded = ESCAPES[escape]
        if (decoded === undefined) this.#fail('bad escape')
        out += decoded
      }
    }
  }

  #number(): number | bigint {
    NUMBER.lastIndex = this.#pos
    const match = NUMBER.exec(this.#text)
    if (match === null) this.#fail('unexpected token')
    const literal = match[0]
    this.#pos += literal.length
    const value = Number(literal)
    const isInteger = match[1] === undefined && match[2] === undefined
    return isInteger && !Number.isSafeInteger(value) ? BigInt(literal) : value
  }

  #literal<V>(word: string, value: V): V {
    if (!this.#text.startsWith(word, this.#pos)) this.#fail('unexpected token')
    this.#pos += word.length
    return value
  }

  #skipWhitespace(): void {
    WHITESPACE.lastIndex = this.#pos
    WHITESPACE.test(this.#text)
    this.#pos = WHITESPACE.lastIndex
  }

  #eat(char: string): boolean {
    if (this.#text[this.#pos] !== char) return false
    this.#pos++
    return true
  }

  #expect(char: string): void {
    if (!this.#eat(char)) this.#fail(`expected '${char}'`)
  }

  #fail(message: string): never {
    throw new SyntaxError(`${message} at position ${this.#pos} in JSON`)
  }
}

function write(value: unknown, key: string, seen: Set<object>): string | undefined {
  if (typeof value === 'object' && value !== null && 'toJSON' in value && typeof value.toJSON === 'function') {
    value = (value.toJSON as (key: string) => unknown)(key)
  }
  switch (typeof value) {
    case 'bigint':
      return value.toString()
    case 'string':
    case 'number':
    case 'boolean':
      return JSON.stringify(value)
    case 'object':
      break
    default:
      return undefined // undefined, functions and symbols are skipped, as by JSON.stringify
  }
  if (value === null) return 'null'
  if (seen.has(value)) throw new TypeError('cannot serialise a cyclic structure as JSON')
  seen.add(value)
  try {
    if (Array.isArray(value)) {
      // Array.from visits holes too; each unserialisable item becomes null, as with JSON.stringify.
      return `[${Array.from(value as unknown[], (item, i) => write(item, String(i), seen) ?? 'null').join(',')}]`
    }
    const members: string[] = []
    for (const [name, member] of Object.entries(value)) {
      const written = write(member, name, seen)
      if (written !== undefined) members.push(`${JSON.stringify(name)}:${written}`)
    }
    return `{${members.join(',')}}`
  } finally {
    seen.delete(value)
  }
}
