import { Ajv, type ErrorObject, type Options, type ValidateFunction } from 'ajv'
import addFormats from 'ajv-formats'
import type { FastifySchemaCompiler } from 'fastify'
import { badRequest, type FieldError } from '../errors.js'

/** Deeper than any body this API defines; a deeper one is refused before it is parsed. */
export const MAX_JSON_DEPTH = 32

/**
 * The one JSON body parser for the API. Before JSON.parse: nesting depth is counted over the raw
 * text (so 5,000 nested arrays cost a scan, not a stack overflow further on). After it: text that
 * PostgreSQL cannot store (U+0000), numbers that lost precision on the way (integers beyond 2^53,
 * 1e400), and prototype keys are refused with a 400 naming the field.
 */
export function parseJsonBody(text: string): unknown {
  if (text === '') {
    throw badRequest(
      'empty_body',
      'Content-Type is application/json but the body is empty. Send a JSON body, or drop the Content-Type header.',
    )
  }
  if (nestingDepth(text) > MAX_JSON_DEPTH) {
    throw badRequest(
      'too_deeply_nested',
      `The JSON body nests objects and arrays more than ${MAX_JSON_DEPTH} levels deep; no operation takes that. ` +
        'Send the documented shape (see /openapi.json).',
      [{ pointer: '/body', message: `nests deeper than ${MAX_JSON_DEPTH} levels` }],
    )
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw badRequest(
      'invalid_json',
      'The body is not valid JSON. Check quoting and commas, and that Content-Length matches the body.',
    )
  }
  const errors: FieldError[] = []
  check(value, '/body', errors)
  if (errors.length > 0) {
    const summary = errors.map((e) => `${e.pointer} ${e.message}`).join('; ')
    throw badRequest('invalid_json_value', `Fix these fields and retry: ${summary}.`, errors.slice(0, 20))
  }
  return value
}

function nestingDepth(text: string): number {
  let depth = 0
  let max = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c)
        i++ // backslash: skip the escaped character
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x5b || c === 0x7b) max = Math.max(max, ++depth)
    else if (c === 0x5d || c === 0x7d) depth--
  }
  return max
}

const pointerOf = (base: string, key: string) => `${base}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`

function check(value: unknown, pointer: string, errors: FieldError[]): void {
  if (errors.length >= 20) return
  if (typeof value === 'string') {
    if (value.includes('\u0000')) errors.push({ pointer, message: 'must not contain the NUL character (U+0000)' })
  } else if (typeof value === 'number') {
    if (!Number.isFinite(value)) errors.push({ pointer, message: 'is out of range for a JSON number' })
    else if (Number.isInteger(value) && !Number.isSafeInteger(value)) {
      errors.push({ pointer, message: 'is an integer beyond 2^53 and lost precision; send it as a string' })
    }
  } else if (Array.isArray(value)) {
    value.forEach((item, i) => check(item, `${pointer}/${i}`, errors))
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      const at = pointerOf(pointer, key)
      if (key === '__proto__' || key === 'constructor' || key === 'prototype') {
        errors.push({ pointer: at, message: 'is not a property any operation takes; remove it' })
      } else if (key.includes('\u0000')) {
        errors.push({ pointer: pointer, message: 'has a property name containing the NUL character (U+0000)' })
      } else check(item, at, errors)
    }
  }
}

const ajvOptions: Options = {
  useDefaults: true,
  removeAdditional: false,
  allErrors: true,
  addUsedSchema: false,
}

/**
 * Validators for request parts. Query strings, path params and headers arrive as text and are
 * coerced to the schema's types (`?limit=20` → 20). Bodies are JSON and already typed: they are
 * never coerced, so `"name": true` or an id sent as a number is a 400 naming the field, not a
 * silently converted value.
 */
export function requestValidatorCompiler(): FastifySchemaCompiler<unknown> {
  const text = new Ajv({ ...ajvOptions, coerceTypes: 'array' })
  const json = new Ajv({ ...ajvOptions, coerceTypes: false })
  for (const ajv of [text, json]) addFormats.default(ajv)
  return ({ schema, httpPart }) =>
    httpPart === 'body'
      ? json.compile(schema as object)
      : numeric(schema)
        ? finiteOnly(text.compile(schema as object))
        : text.compile(schema as object)
}

/** Whether a schema types anything as a number: only then can coercion make an Infinity. */
function numeric(schema: unknown): boolean {
  if (Array.isArray(schema)) return schema.some(numeric)
  if (schema === null || typeof schema !== 'object') return false
  const type: unknown = (schema as { type?: unknown }).type
  if ([type].flat().some((t) => t === 'number' || t === 'integer')) return true
  return Object.values(schema).some(numeric)
}

/**
 * Text coerced to a number may become Infinity (`?limit=Infinity`, `?limit=1e400`), which Ajv's
 * `maximum` lets through; no parameter of this API is infinite.
 */
function finiteOnly(validate: ValidateFunction): ValidateFunction {
  const wrapped = ((data: unknown) => {
    const ok = validate(data)
    wrapped.errors = validate.errors ?? null
    if (!ok || data === null || typeof data !== 'object') return ok
    for (const [key, value] of Object.entries(data)) {
      if ([value].flat().some((v) => typeof v === 'number' && !Number.isFinite(v))) {
        const error: ErrorObject = {
          instancePath: `/${key}`,
          schemaPath: '#/type',
          keyword: 'type',
          params: { type: 'number' },
          message: 'must be a finite number',
        }
        wrapped.errors = [error]
        return false
      }
    }
    return true
  }) as ValidateFunction
  return wrapped
}
