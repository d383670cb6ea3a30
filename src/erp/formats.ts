// Code formats an agent declares in `/v1/info` `limits.formats` (ERP Connector Protocol 1.1): per
// resource and field a `mask` (`9` a digit, `A` a letter, `X` a letter or digit, anything else
// itself) and/or a `pattern` (an ECMAScript regular expression the whole value must match), with
// an `example` that fits. One reading of them for everyone: the client checks values before
// sending, the domain derives codes that fit, the conformance kit checks the agent's own records.

/** A declared format; at least one of `mask` and `pattern`. */
export interface CodeFormat {
  mask?: string | undefined
  pattern?: string | undefined
  example: string
  description?: string | undefined
}

/** resource → field → format, as in `limits.formats`. */
export type CodeFormats = Record<string, Record<string, CodeFormat>>

const MASK_CLASSES: Record<string, string> = { '9': '[0-9]', A: '[A-Za-z]', X: '[A-Za-z0-9]' }

/** The mask as an anchored regular expression: `99-999` → /^[0-9][0-9]-[0-9][0-9][0-9]$/. */
export function maskRegExp(mask: string): RegExp {
  const body = [...mask].map((c) => MASK_CLASSES[c] ?? c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('')
  return new RegExp(`^${body}$`, 'u')
}

/** The pattern as a whole-value regular expression, or undefined when it does not compile. */
export function patternRegExp(pattern: string): RegExp | undefined {
  try {
    return new RegExp(`^(?:${pattern})$`, 'u')
  } catch {
    return undefined
  }
}

/** Whether a value fits the format (an uncompilable pattern fits nothing). */
export function fitsFormat(value: string, format: CodeFormat): boolean {
  if (format.mask !== undefined && !maskRegExp(format.mask).test(value)) return false
  if (format.pattern !== undefined) {
    const re = patternRegExp(format.pattern)
    if (re === undefined || !re.test(value)) return false
  }
  return true
}

/** For a message: `4 digits (mask 9999, e.g. "0420")`. */
export function describeFormat(format: CodeFormat): string {
  const rule =
    format.description ??
    (format.mask !== undefined ? `the mask ${format.mask}` : `the pattern ${format.pattern ?? ''}`)
  return `${rule}, e.g. "${format.example}"`
}

/** `field must fit …` when the value breaks the format; undefined when it fits. */
export function formatProblem(field: string, value: string, format: CodeFormat): string | undefined {
  return fitsFormat(value, format) ? undefined : `${field} must fit ${describeFormat(format)}`
}

/**
 * What a format looks like as a mask: the declared mask, or one read from the example (digits
 * become `9`, letters `A`, anything else stays), which is then checked against the pattern.
 */
function templateOf(format: CodeFormat): string {
  if (format.mask !== undefined) return format.mask
  return [...format.example].map((c) => (/[0-9]/.test(c) ? '9' : /[A-Za-z]/.test(c) ? 'A' : c)).join('')
}

/**
 * A code that fits the format, made from a name: the letter positions (`A`, `X`) take the name's
 * letters and digits in order, the digit positions (`9`) a counter, so the first candidate not
 * `taken` is unique. Returns null when no candidate fits (the caller must supply the code).
 * `OPERATIONS` with `AAA99` → `OPE01`; with `9999` → `0001`, `0002`, …
 */
export function fitCode(name: string, format: CodeFormat, taken: (code: string) => boolean): string | null {
  const template = templateOf(format)
  const letters = [
    ...name
      .normalize('NFKD')
      .replace(/[\u0300-\u036f]/g, '')
      .toUpperCase()
      .replace(/[^A-Z0-9]/g, ''),
  ]
  const digitSlots = [...template].filter((c) => c === '9').length
  const last = digitSlots === 0 ? 0 : Math.min(10 ** digitSlots - 1, 10_000)
  for (let n = digitSlots === 0 ? 0 : 1; n <= last; n += 1) {
    const digits = [...String(n).padStart(digitSlots, '0')]
    let li = 0
    let di = 0
    let ok = true
    const code = [...template]
      .map((c) => {
        if (c === '9') return digits[di++] ?? '0'
        if (c === 'A' || c === 'X') {
          while (li < letters.length && c === 'A' && !/[A-Z]/.test(letters[li] ?? '')) li += 1
          const next = letters[li++]
          if (next === undefined) ok = false
          return next ?? ''
        }
        return c
      })
      .join('')
    if (ok && fitsFormat(code, format) && !taken(code)) return code
  }
  return null
}
