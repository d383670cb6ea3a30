import type { FastifyReply, FastifyRequest } from 'fastify'

/** An error rendered as Procore renders it: the status plus a v1-style JSON body. */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly body: Record<string, unknown>,
  ) {
    super(typeof body.errors === 'string' ? body.errors : `HTTP ${statusCode}`)
  }
}

export const notFound = (what: string): ApiError => new ApiError(404, { errors: `${what} not found` })
export const badRequest = (message: string): ApiError => new ApiError(400, { errors: message })
export const forbidden = (message: string): ApiError => new ApiError(403, { errors: message })
export const invalid = (errors: FieldErrors, status = 422): ApiError => new ApiError(status, { errors })

export type FieldErrors = Record<string, string[]>

export type Query = Record<string, unknown>

export function str(value: unknown): string | undefined {
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'bigint') return String(value)
  return undefined
}

export function obj(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined
}

export const queryOf = (request: FastifyRequest): Query => (request.query ?? {}) as Query
export const paramsOf = (request: FastifyRequest): Record<string, string> =>
  (request.params ?? {}) as Record<string, string>
export const bodyOf = (request: FastifyRequest): Record<string, unknown> => obj(request.body) ?? {}

/** The query-string format Procore's SDKs send: `filters[updated_at]=a...b`, `filters[id][]=1&filters[id][]=2`. */
export function parseQuery(raw: string): Query {
  const out: Query = {}
  for (const part of raw.split('&')) {
    if (part === '') continue
    const eq = part.indexOf('=')
    const key = decode(eq < 0 ? part : part.slice(0, eq))
    const value = eq < 0 ? '' : decode(part.slice(eq + 1))
    assign(out, keyPath(key), value)
  }
  return out
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '))
  } catch {
    return s
  }
}

function keyPath(key: string): string[] {
  const m = /^([^[\]]+)((?:\[[^\]]*\])*)$/.exec(key)
  if (!m?.[1]) return [key]
  return [m[1], ...[...(m[2] ?? '').matchAll(/\[([^\]]*)\]/g)].map((s) => s[1] ?? '')]
}

const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype'])

function assign(target: Query, path: string[], value: string): void {
  if (path.some((seg) => UNSAFE_KEYS.has(seg))) return
  let node: Record<string, unknown> = target
  for (let i = 0; i < path.length - 1; i++) {
    const seg = path[i] ?? ''
    const wantsArray = path[i + 1] === ''
    if (seg === '') return // `a[][b]` (arrays of objects) is not needed here
    const child = node[seg]
    if (wantsArray ? !Array.isArray(child) : obj(child) === undefined) node[seg] = wantsArray ? [] : {}
    node = node[seg] as Record<string, unknown>
  }
  const last = path.at(-1) ?? ''
  if (Array.isArray(node)) {
    ;(node as unknown[]).push(value)
  } else {
    const prev = node[last]
    node[last] = prev === undefined ? value : [...(Array.isArray(prev) ? prev : [prev]), value]
  }
}

export const DEFAULT_PER_PAGE = 100
export const MAX_PER_PAGE = 1000

/**
 * Page/per_page pagination with Procore's response headers (Total, Per-Page, Link). Link
 * follows the api-pagination convention: first/prev only after page 1, next/last only before
 * the last page, absolute URLs that keep the caller's other query parameters.
 */
export function paginate<T>(request: FastifyRequest, reply: FastifyReply, baseUrl: string, items: readonly T[]): T[] {
  const query = queryOf(request)
  const perPage = Math.min(positiveInt(query.per_page) ?? DEFAULT_PER_PAGE, MAX_PER_PAGE)
  const page = positiveInt(query.page) ?? 1
  const lastPage = Math.max(1, Math.ceil(items.length / perPage))

  const [path, search = ''] = request.url.split('?', 2) as [string, string | undefined]
  const kept = search.split('&').filter((p) => p !== '' && !/^(page|per_page)=/.test(p))
  const url = (n: number): string => `${baseUrl}${path}?${[...kept, `page=${n}`, `per_page=${perPage}`].join('&')}`
  const links: string[] = []
  if (page > 1) links.push(`<${url(1)}>; rel="first"`, `<${url(Math.min(page - 1, lastPage))}>; rel="prev"`)
  if (page < lastPage) links.push(`<${url(page + 1)}>; rel="next"`, `<${url(lastPage)}>; rel="last"`)

  reply.header('total', String(items.length)).header('per-page', String(perPage))
  if (links.length > 0) reply.header('link', links.join(', '))
  return items.slice((page - 1) * perPage, page * perPage)
}

function positiveInt(value: unknown): number | undefined {
  const n = Number(str(value))
  return Number.isInteger(n) && n >= 1 ? n : undefined
}
