import assert from 'node:assert/strict'
import fc from 'fast-check'
import t from 'tap'
import { parseJson, stringifyJson } from '../../src/http/json.js'

// A 16-digit literal forces parseJson off its JSON.parse fast path onto its own tokenizer.
const forceTokenizer = (text: string): string => `[${text},1000000000000000]`

// JSON.parse rounds unsafe integers to the nearest double; Number(bigint) rounds the same way,
// so after this mapping parseJson must give exactly what JSON.parse gives, for any text.
const roundBigints = (value: unknown): unknown => {
  if (typeof value === 'bigint') {
    assert.ok(!Number.isSafeInteger(Number(value)), `${value} is safe, so it should have been a number`)
    return Number(value)
  }
  if (Array.isArray(value)) return value.map(roundBigints)
  if (typeof value === 'object' && value !== null) {
    const copy: Record<string, unknown> = {}
    for (const [key, member] of Object.entries(value)) {
      Object.defineProperty(copy, key, {
        value: roundBigints(member),
        enumerable: true,
        writable: true,
        configurable: true,
      })
    }
    return copy
  }
  return value
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: string }
const outcome = (parse: (text: string) => unknown, text: string): Outcome => {
  try {
    return { ok: true, value: roundBigints(parse(text)) }
  } catch (err) {
    return { ok: false, error: (err as Error).name }
  }
}

void t.test('integers beyond 2^53 come back as exact bigints', (t) => {
  const body = parseJson('{"id":9007199254740993,"ids":[-9007199254740993,18446744073709551615],"n":9007199254740991}')
  t.same(body, { id: 9007199254740993n, ids: [-9007199254740993n, 18446744073709551615n], n: 9007199254740991 })
  t.equal(parseJson('9007199254740992'), 9007199254740992n, '2^53 itself is ambiguous, so it is a bigint too')
  t.equal(parseJson('12345678901234567.5'), Number('12345678901234567.5'), 'fractions stay numbers, as with JSON.parse')
  t.equal(parseJson('12345678901234567e2'), Number('12345678901234567e2'), 'exponents stay numbers, as with JSON.parse')
  t.equal(parseJson('"9007199254740993"'), '9007199254740993', 'digits inside strings are untouched')
  t.end()
})

void t.test('bigint ids round-trip exactly through stringifyJson and parseJson', (t) => {
  const id = 9007199254740993n
  t.equal(stringifyJson({ id }), '{"id":9007199254740993}')
  t.same(parseJson(stringifyJson({ id, nested: [id, { id }] })), { id, nested: [id, { id }] })
  fc.assert(
    fc.property(fc.bigInt(), (n) => {
      const parsed = parseJson(stringifyJson({ n }))
      assert.deepEqual(parsed, { n: Number.isSafeInteger(Number(n)) ? Number(n) : n })
    }),
  )
  t.end()
})

void t.test('parseJson agrees with JSON.parse on any JSON value, up to the rounding of unsafe integers', (t) => {
  fc.assert(
    fc.property(fc.jsonValue(), fc.constantFrom('', ' ', '\n\t\r '), (value, space) => {
      const text = JSON.stringify(value, null, space)
      assert.deepStrictEqual(outcome(parseJson, text), outcome(JSON.parse, text))
      assert.deepStrictEqual(outcome(parseJson, forceTokenizer(text)), outcome(JSON.parse, forceTokenizer(text)))
    }),
    { numRuns: 500 },
  )
  t.end()
})

void t.test('parseJson accepts and rejects exactly what JSON.parse does', (t) => {
  const token = fc.constantFrom(
    '{',
    '}',
    '[',
    ']',
    ',',
    ':',
    '"',
    '\\',
    '\\u00e9',
    '\\x',
    'u',
    '0',
    '1',
    '-',
    '.',
    'e',
    'E',
    '+',
    ' ',
    '\n',
    '\u000b',
    '\u0001',
    'true',
    'tru',
    'null',
    'a',
    '"a"',
    '01',
    '1.',
    '.5',
    '\ud800',
    '__proto__',
  )
  fc.assert(
    fc.property(fc.array(token, { maxLength: 12 }), (tokens) => {
      const text = forceTokenizer(tokens.join(''))
      assert.deepStrictEqual(outcome(parseJson, text), outcome(JSON.parse, text))
    }),
    { numRuns: 3000 },
  )

  fc.assert(
    fc.property(fc.json(), fc.nat(), (json, at) => {
      const text = forceTokenizer(json)
      const cut = text.slice(0, at % text.length) + text.slice((at % text.length) + 1)
      assert.deepStrictEqual(outcome(parseJson, cut), outcome(JSON.parse, cut))
    }),
    { numRuns: 1000 },
  )
  t.end()
})

void t.test('edge cases are accepted or rejected exactly as JSON.parse does', (t) => {
  const cases = [
    '"\u0001"',
    '"\t"',
    '\u000b1',
    '\ufeff1',
    '01',
    '1.',
    '.5',
    '-',
    '+1',
    '"\\x"',
    '"\\u12"',
    '"\\u00E9"',
    'tru',
    '[1,]',
    '{"a":1,}',
    '{,}',
    '[,1]',
    'NaN',
    'Infinity',
    '"\ud800"',
    '"\\ud800"',
    '-0',
    '1E+2',
    '[] []',
    ' {} ',
  ]
  for (const text of cases) {
    t.strictSame(
      outcome(parseJson, forceTokenizer(text)),
      outcome(JSON.parse, forceTokenizer(text)),
      JSON.stringify(text),
    )
  }
  t.end()
})

void t.test('a "__proto__" key stays an own property and pollutes nothing', (t) => {
  const parsed = parseJson(forceTokenizer('{"__proto__":{"polluted":true}}')) as [Record<string, unknown>]
  const [object] = parsed
  t.equal(Object.getPrototypeOf(object), Object.prototype)
  t.ok(Object.hasOwn(object, '__proto__'))
  t.equal(({} as Record<string, unknown>).polluted, undefined)
  t.end()
})

void t.test('parseJson throws SyntaxError on invalid JSON on both paths', (t) => {
  t.throws(() => parseJson('{"a":1'), SyntaxError)
  t.throws(() => parseJson('{"a":12345678901234567'), SyntaxError)
  t.throws(() => parseJson('12345678901234567 x'), SyntaxError)
  t.throws(() => parseJson(''), SyntaxError)
  t.end()
})

void t.test('stringifyJson writes what JSON.stringify writes, for plain JSON values', (t) => {
  fc.assert(
    fc.property(fc.jsonValue(), (value) => {
      assert.equal(stringifyJson(value), JSON.stringify(value))
    }),
    { numRuns: 500 },
  )
  t.end()
})

void t.test('stringifyJson follows JSON.stringify for toJSON, undefined, holes and cycles', (t) => {
  // eslint-disable-next-line no-sparse-arrays
  const value = { at: new Date(0), skip: undefined, fn: () => 1, list: [undefined, 1, , NaN] }
  t.equal(stringifyJson(value), JSON.stringify(value))
  const cyclic: Record<string, unknown> = {}
  cyclic.self = cyclic
  t.throws(() => stringifyJson(cyclic), TypeError)
  t.throws(() => stringifyJson(undefined), TypeError)
  const shared = { a: 1 }
  t.equal(stringifyJson([shared, shared]), '[{"a":1},{"a":1}]', 'a repeated object is not a cycle')
  t.end()
})
