// The ERP Connector Protocol conformance kit: checks an agent against openapi/erp-connector.json
// rule by rule over real HTTP, so an agent team can see what to fix before connecting it. The
// service's own client (src/erp/client.ts) retries and hides what an agent did; this kit talks
// to the wire on purpose, one request at a time, and reads status codes and headers as sent.
import { randomBytes, randomUUID } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { fitCode, fitsFormat, patternRegExp, type CodeFormat } from '../erp/formats.js'
import {
  ErpResources,
  parseInfo,
  parsePage,
  parsePaymentPage,
  parseRecord,
  parseRecordChanged,
  type ErpInfo,
  type ErpRecordJson,
  type ErpResource,
} from '../erp/protocol.js'
import { verify } from '../erp/signature.js'

export interface ConformanceOptions {
  url: string
  token: string
  /** A second token of the same connection: checks that Idempotency-Keys outlive a token rotation. */
  nextToken?: string | undefined
  /** The resource written to (a vendor or department is created, changed and deactivated). Default vendors. */
  resource?: 'vendors' | 'departments'
  /** Only read: skip every check that creates or changes a record. */
  readOnly?: boolean
  /**
   * Check signed notifications: listen on this port (0: any) for the agent's notification of the
   * record created, signed with `secret`. `onListening` gets the URL to configure in the agent.
   */
  notifications?: { port: number; host?: string; secret: string; waitMs?: number; onListening?: (url: string) => void }
}

export type RuleStatus = 'pass' | 'fail' | 'skip'
export interface RuleResult {
  rule: string
  status: RuleStatus
  /** What was seen. */
  detail: string
  /** What to change in the agent (on fail) or how to run the check (on skip). */
  fix?: string
}

interface Answer {
  status: number
  headers: Record<string, string | undefined>
  body: unknown
}

/** The rules, in the order they run, with the fix printed when one fails. */
export const RULES: Record<string, string> = {
  'auth.bearer': 'Answer a request without a valid bearer token with 401 problem+json and WWW-Authenticate: Bearer.',
  'info.shape':
    'Serve GET /v1/info with protocol_version "1.<minor>", system, company_name, capabilities and limits ' +
    '(max_page_size, idempotency_key_ttl_seconds ≥ 86400, max_lengths) as in the Info schema.',
  'info.formats':
    'Give each limits.formats entry a mask (9 digit, A letter, X letter or digit) and/or a pattern that compiles ' +
    'as an ECMAScript regular expression, and an example that fits both.',
  'records.shape':
    'Send every field of each record (id, version ≥ 1, updated_at RFC 3339, "" for empty text, null only where ' +
    'nullable) as in the record schemas.',
  'records.formats': 'Declare only formats your existing codes fit, or correct the codes in the ERP.',
  'records.trimmed': 'Trim trailing spaces of padded CHAR columns before answering (protocol 1.1).',
  'payments.shape':
    'Serve GET /v1/payments as in the Payment schema: amount a decimal string with two decimals (never a number), ' +
    'status paid or voided when sent (protocol 1.2), in (updated_at, id) order.',
  'lists.order':
    'Order lists by (updated_at, id) ascending with a keyset cursor, send each record once when nothing changes, ' +
    'and end with next_cursor null.',
  'lists.updated_since': 'Keep records with updated_at >= updated_since (inclusive).',
  'lists.invalid_cursor': 'Answer a cursor you did not issue with 400 problem+json, code invalid_cursor.',
  'lists.unknown_query': 'Ignore query parameters you do not know (minor versions add them).',
  'records.not_found': 'Answer GET of an unknown id with 404 problem+json, code not_found.',
  'create.idempotency_key_required': 'Refuse a POST without Idempotency-Key with 400, code idempotency_key_missing.',
  'create.idempotent':
    'Answer the first POST with 201, ETag and Location; the same key and body again with 200, ' +
    'Idempotent-Replayed: true and the same record.',
  'create.key_reused': 'Answer the same Idempotency-Key with another body with 422, code idempotency_key_reused.',
  'create.token_rotation':
    'Scope Idempotency-Keys to the connection, not the token: a retry sent with the next token must replay.',
  'update.if_match_required': 'Refuse a PATCH without If-Match with 428, code if_match_required.',
  'update.conditional':
    'Apply a PATCH whose If-Match is the current version (200, ETag "<version+1>") and refuse a stale one with ' +
    '412, code version_mismatch and current_version.',
  'update.read_only': 'Refuse read-only fields (id, version, updated_at) in a PATCH with 422 validation_failed.',
  'errors.problem_json': 'Send every error as application/problem+json with type, title, status, detail and code.',
  'headers.request_id': 'Answer every request with X-Request-Id, the id of the request in your logs.',
  'notifications.signature':
    'POST a recordChanged notification signed per Standard Webhooks (webhook-id, webhook-timestamp, ' +
    'webhook-signature v1,<base64 HMAC-SHA256 of id.timestamp.body>) when a record is created.',
}

class Kit {
  readonly results: RuleResult[] = []
  readonly answers: Array<Answer & { method: string; path: string }> = []
  constructor(readonly opts: ConformanceOptions) {}

  record(rule: string, ok: boolean, detail: string): boolean {
    this.results.push({ rule, status: ok ? 'pass' : 'fail', detail, ...(!ok && { fix: RULES[rule] ?? '' }) })
    return ok
  }

  skip(rule: string, detail: string, how: string): void {
    this.results.push({ rule, status: 'skip', detail, fix: how })
  }

  async call(
    method: string,
    path: string,
    opts: { token?: string | null; headers?: Record<string, string>; body?: unknown } = {},
  ): Promise<Answer> {
    const token = opts.token === undefined ? this.opts.token : opts.token
    const res = await request(new URL(path, this.opts.url), {
      method: method as 'GET',
      headers: {
        accept: 'application/json',
        ...(token !== null && { authorization: `Bearer ${token}` }),
        ...(opts.body !== undefined && { 'content-type': 'application/json' }),
        ...opts.headers,
      },
      ...(opts.body !== undefined && { body: JSON.stringify(opts.body) }),
      headersTimeout: 15_000,
      bodyTimeout: 15_000,
    })
    const text = await res.body.text()
    let body: unknown = text
    try {
      body = text === '' ? undefined : JSON.parse(text)
    } catch {
      // left as text: the checks say it is not JSON
    }
    const headers: Record<string, string | undefined> = {}
    for (const [k, v] of Object.entries(res.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v
    const answer = { status: res.statusCode, headers, body }
    this.answers.push({ ...answer, method, path })
    return answer
  }
}

/** The problem code of an error answer. */
const code = (a: Answer): unknown =>
  a.status >= 400 && typeof a.body === 'object' && a.body !== null ? (a.body as Json).code : undefined
type Json = Record<string, unknown>
const seen = (a: Answer): string => `${a.status}${code(a) === undefined ? '' : ` ${String(code(a))}`}`

/** Compares two `updated_at id` keys by time, then id. */
function parseRfc3339Order(a: string, b: string): number {
  const [ta = '', ia = ''] = a.split(' ')
  const [tb = '', ib = ''] = b.split(' ')
  const d = Date.parse(ta) - Date.parse(tb)
  return d !== 0 ? d : ia < ib ? -1 : ia > ib ? 1 : 0
}

function compareKey(a: ErpRecordJson, b: ErpRecordJson): number {
  const ta = Date.parse(a.updated_at)
  const tb = Date.parse(b.updated_at)
  if (ta !== tb) return ta - tb
  // Same millisecond: the text (with its finer fraction) then the id decides.
  if (a.updated_at !== b.updated_at) return a.updated_at < b.updated_at ? -1 : 1
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

/** Runs every rule against the agent; never throws for what the agent does (a broken answer is a failed rule). */
export async function checkAgent(opts: ConformanceOptions): Promise<RuleResult[]> {
  const kit = new Kit(opts)
  let receiver: Receiver | undefined
  try {
    if (opts.notifications && opts.readOnly !== true) receiver = await Receiver.start(opts.notifications)
    await run(kit, receiver)
  } catch (error) {
    kit.results.push({
      rule: 'connection',
      status: 'fail',
      detail: `the checks stopped: ${error instanceof Error ? error.message : String(error)}`,
      fix: 'Make the agent reachable at --url and answer within 15 s.',
    })
  } finally {
    await receiver?.close()
  }
  return kit.results
}

async function run(kit: Kit, receiver: Receiver | undefined): Promise<void> {
  const { opts } = kit
  // auth.bearer
  const anonymous = await kit.call('GET', '/v1/info', { token: null })
  kit.record(
    'auth.bearer',
    anonymous.status === 401 && /bearer/i.test(anonymous.headers['www-authenticate'] ?? ''),
    `GET /v1/info without a token answered ${seen(anonymous)}` +
      `${anonymous.headers['www-authenticate'] ? `, WWW-Authenticate: ${anonymous.headers['www-authenticate']}` : ''}`,
  )

  // info.shape
  const infoAnswer = await kit.call('GET', '/v1/info')
  let info: ErpInfo
  try {
    if (infoAnswer.status !== 200) throw new Error(`GET /v1/info answered ${seen(infoAnswer)}`)
    info = parseInfo(infoAnswer.body)
    kit.record('info.shape', true, `protocol ${info.protocol_version}, ${info.system}, "${info.company_name}"`)
  } catch (error) {
    kit.record('info.shape', false, error instanceof Error ? error.message : String(error))
    return
  }

  // info.formats
  const formats = info.limits.formats ?? {}
  const formatErrors: string[] = []
  for (const [resource, fields] of Object.entries(formats)) {
    for (const [field, f] of Object.entries(fields)) {
      const where = `${resource}.${field}`
      if (f.mask === undefined && f.pattern === undefined) formatErrors.push(`${where} has neither mask nor pattern`)
      else if (f.pattern !== undefined && patternRegExp(f.pattern) === undefined)
        formatErrors.push(`${where} pattern does not compile`)
      else if (!fitsFormat(f.example, f)) formatErrors.push(`${where} example "${f.example}" does not fit`)
    }
  }
  const declared = Object.values(formats).reduce((n, fields) => n + Object.keys(fields).length, 0)
  kit.record(
    'info.formats',
    formatErrors.length === 0,
    formatErrors.length > 0 ? formatErrors.join('; ') : `${declared} format(s) declared, each with a fitting example`,
  )

  // records.shape, records.formats, records.trimmed: the first page of every served record list
  const served = ErpResources.filter((r) => info.capabilities.resources.includes(r))
  const shapeErrors: string[] = []
  const formatMisfits: string[] = []
  const padded: string[] = []
  for (const resource of served) {
    const page = await kit.call('GET', `/v1/${resource}?limit=20`)
    try {
      if (page.status !== 200) throw new Error(`GET /v1/${resource} answered ${seen(page)}`)
      for (const r of parsePage(resource, page.body).data) {
        for (const [field, f] of Object.entries(formats[resource] ?? {})) {
          const v = r[field]
          if (typeof v === 'string' && v !== '' && !fitsFormat(v, f))
            formatMisfits.push(`${resource} ${r.id} ${field} "${v}"`)
        }
        for (const [field, v] of Object.entries(r))
          if (typeof v === 'string' && /\s$/.test(v)) padded.push(`${resource} ${r.id} ${field}`)
      }
    } catch (error) {
      shapeErrors.push(error instanceof Error ? error.message : String(error))
    }
  }
  kit.record(
    'records.shape',
    shapeErrors.length === 0,
    shapeErrors.length > 0 ? shapeErrors.slice(0, 3).join('; ') : `first pages of ${served.join(', ')} match`,
  )
  kit.record(
    'records.formats',
    formatMisfits.length === 0,
    formatMisfits.length > 0
      ? `codes that break the declared format: ${formatMisfits.slice(0, 3).join('; ')}`
      : 'listed codes fit the declared formats',
  )
  kit.record(
    'records.trimmed',
    padded.length === 0,
    padded.length > 0 ? `trailing spaces in ${padded.slice(0, 3).join('; ')}` : 'no trailing spaces',
  )

  // payments.shape: money as decimal strings (AP invoices' amounts are checked by records.shape)
  if (!info.capabilities.resources.includes('payments')) {
    kit.skip('payments.shape', 'the agent does not serve payments', 'List payments in capabilities.resources.')
  } else {
    const page = await kit.call('GET', '/v1/payments?limit=20')
    let problem: string | undefined
    try {
      if (page.status !== 200) throw new Error(`GET /v1/payments answered ${seen(page)}`)
      const data = parsePaymentPage(page.body).data
      const keys = data.map((p) => `${p.updated_at} ${p.id}`)
      if (keys.some((k, i) => i > 0 && parseRfc3339Order(keys[i - 1]!, k) > 0))
        throw new Error('payments are not in (updated_at, id) order')
    } catch (error) {
      problem = error instanceof Error ? error.message : String(error)
    }
    kit.record('payments.shape', problem === undefined, problem ?? 'the first page of payments matches')
  }

  const resource: ErpResource = opts.resource ?? 'vendors'
  if (!served.includes(resource)) {
    kit.record('lists.order', false, `the agent does not serve ${resource}; pass --resource with one it serves`)
    return
  }
  await checkLists(kit, resource)

  // records.not_found
  const missing = await kit.call('GET', `/v1/${resource}/agent-check-${randomUUID()}`)
  kit.record('records.not_found', missing.status === 404, `GET of an unknown id answered ${seen(missing)}`)

  if (opts.readOnly === true) {
    for (const rule of Object.keys(RULES).filter((r) => /^(create|update|notifications)\./.test(r)))
      kit.skip(rule, 'read-only run', 'Run without --read-only to check writes.')
  } else {
    await checkWrites(kit, info, resource, receiver)
  }

  // errors.problem_json and headers.request_id, over every answer seen
  const notProblems = kit.answers.filter((a) => {
    if (a.status < 400) return false
    const b = a.body as Json | undefined
    return (
      !(a.headers['content-type'] ?? '').startsWith('application/problem+json') ||
      typeof b !== 'object' ||
      b === null ||
      !['type', 'title', 'detail', 'code'].every((k) => typeof b[k] === 'string') ||
      typeof b['status'] !== 'number'
    )
  })
  kit.record(
    'errors.problem_json',
    notProblems.length === 0,
    notProblems.length > 0
      ? `not problem+json: ${notProblems
          .slice(0, 3)
          .map((a) => `${a.method} ${a.path.split('?')[0] ?? ''} → ${a.status}`)
          .join('; ')}`
      : `${kit.answers.filter((a) => a.status >= 400).length} errors, all problem+json`,
  )
  const unnamed = kit.answers.filter((a) => !a.headers['x-request-id'])
  kit.record(
    'headers.request_id',
    unnamed.length === 0,
    unnamed.length > 0
      ? `${unnamed.length} of ${kit.answers.length} answers without X-Request-Id`
      : `all ${kit.answers.length} answers carry X-Request-Id`,
  )
}

async function walk(kit: Kit, resource: ErpResource, query: string): Promise<ErpRecordJson[]> {
  const out: ErpRecordJson[] = []
  let cursor: string | null = null
  for (let pages = 0; pages < 50; pages++) {
    const a = await kit.call(
      'GET',
      `/v1/${resource}?limit=2${query}${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`,
    )
    if (a.status !== 200) throw new Error(`a page answered ${seen(a)}`)
    const page = parsePage(resource, a.body)
    out.push(...page.data)
    if (page.next_cursor === null) return out
    cursor = page.next_cursor
  }
  return out
}

async function checkLists(kit: Kit, resource: ErpResource): Promise<void> {
  let all: ErpRecordJson[] = []
  try {
    all = await walk(kit, resource, '')
    const ids = all.map((r) => r.id)
    const unordered = all.findIndex((r, i) => i > 0 && compareKey(all[i - 1]!, r) >= 0)
    const ok = unordered === -1 && new Set(ids).size === ids.length
    kit.record(
      'lists.order',
      ok,
      ok
        ? `${all.length} ${resource} in pages of 2, in (updated_at, id) order, each once`
        : unordered !== -1
          ? `record ${all[unordered]?.id} (${all[unordered]?.updated_at}) came after ` +
            `${all[unordered - 1]?.id} (${all[unordered - 1]?.updated_at})`
          : 'a record came twice while nothing changed',
    )
  } catch (error) {
    kit.record('lists.order', false, error instanceof Error ? error.message : String(error))
  }

  const middle = all[Math.floor(all.length / 2)]
  if (middle === undefined) {
    kit.skip('lists.updated_since', `no ${resource} to filter`, `Add a few ${resource} to the ERP company.`)
  } else {
    try {
      const since = await walk(kit, resource, `&updated_since=${encodeURIComponent(middle.updated_at)}`)
      const early = since.find((r) => Date.parse(r.updated_at) < Date.parse(middle.updated_at))
      const ok = early === undefined && since.some((r) => r.id === middle.id)
      kit.record(
        'lists.updated_since',
        ok,
        ok
          ? `updated_since=${middle.updated_at} kept ${since.length} records, ${middle.id} included`
          : early
            ? `record ${early.id} (${early.updated_at}) is older than updated_since`
            : `record ${middle.id} with updated_at equal to updated_since was left out`,
      )
    } catch (error) {
      kit.record('lists.updated_since', false, error instanceof Error ? error.message : String(error))
    }
  }

  const bad = await kit.call('GET', `/v1/${resource}?cursor=agent-check-not-a-cursor`)
  kit.record(
    'lists.invalid_cursor',
    bad.status === 400 && code(bad) === 'invalid_cursor',
    `a cursor the agent never issued answered ${seen(bad)}`,
  )
  const future = await kit.call('GET', `/v1/${resource}?limit=1&agent_check_future_parameter=1`)
  kit.record('lists.unknown_query', future.status === 200, `an unknown query parameter answered ${seen(future)}`)
}

/** A body the agent should accept: a name within its limits; a department code fitting its format. */
function newBody(info: ErpInfo, resource: 'vendors' | 'departments', tag: string): Json {
  const max = info.limits.max_lengths[resource]?.['name'] ?? 255
  const name = `Agent check ${tag}`.slice(0, Math.max(1, max))
  if (resource === 'vendors') return { name }
  const format: CodeFormat | undefined = info.limits.formats?.['departments']?.['code']
  const codeMax = info.limits.max_lengths['departments']?.['code'] ?? 255
  const code = format ? fitCode(tag, format, () => false) : `AC${tag}`.toUpperCase().slice(0, codeMax)
  return { name, code: code ?? format?.example ?? 'AC' }
}

async function checkWrites(
  kit: Kit,
  info: ErpInfo,
  resource: ErpResource,
  receiver: Receiver | undefined,
): Promise<void> {
  const { opts } = kit
  const writable = info.capabilities.writable ?? info.capabilities.resources
  if ((resource !== 'vendors' && resource !== 'departments') || !writable.includes(resource)) {
    for (const rule of Object.keys(RULES).filter((r) => /^(create|update|notifications)\./.test(r)))
      kit.skip(rule, `${resource} is not writable`, 'Pass --resource vendors or departments, writable in the agent.')
    return
  }
  const tag = randomBytes(3).toString('hex').toUpperCase()
  const body = newBody(info, resource, tag)
  const path = `/v1/${resource}`

  const noKey = await kit.call('POST', path, { body })
  kit.record(
    'create.idempotency_key_required',
    noKey.status === 400 && code(noKey) === 'idempotency_key_missing',
    `POST without Idempotency-Key answered ${seen(noKey)}`,
  )
  if (noKey.status < 300) kit.results.at(-1)!.detail += ' (and created a record)'

  const key = `agent-check-${randomUUID()}`
  const first = await kit.call('POST', path, { body, headers: { 'idempotency-key': key } })
  let created: ErpRecordJson | undefined
  try {
    created = parseRecord(resource, first.body)
  } catch {
    created = undefined
  }
  const again = await kit.call('POST', path, { body, headers: { 'idempotency-key': key } })
  const againId = (again.body as Json | undefined)?.['id']
  const idempotent =
    first.status === 201 &&
    first.headers['etag'] === `"${created?.version}"` &&
    first.headers['location'] !== undefined &&
    again.status === 200 &&
    again.headers['idempotent-replayed'] === 'true' &&
    againId === created?.id
  kit.record(
    'create.idempotent',
    idempotent,
    `first POST ${seen(first)}${first.headers['etag'] ? ` ETag ${first.headers['etag']}` : ' without ETag'}` +
      `${first.headers['location'] ? '' : ' without Location'}, same key again ${seen(again)}` +
      `${again.headers['idempotent-replayed'] === 'true' ? ' Idempotent-Replayed' : ''}` +
      `${againId === created?.id ? ' same id' : ` id ${String(againId)} (first ${created?.id ?? 'none'})`}`,
  )
  const other = newBody(info, resource, `${tag}B`)
  const reused = await kit.call('POST', path, { body: other, headers: { 'idempotency-key': key } })
  kit.record(
    'create.key_reused',
    reused.status === 422 && code(reused) === 'idempotency_key_reused',
    `the same key with another body answered ${seen(reused)}`,
  )

  if (opts.nextToken === undefined) {
    kit.skip('create.token_rotation', 'no second token', 'Pass --next-token with a second token of the agent.')
  } else {
    const rotated = await kit.call('POST', path, {
      body,
      token: opts.nextToken,
      headers: { 'idempotency-key': key },
    })
    const id = (rotated.body as Json | undefined)?.['id']
    kit.record(
      'create.token_rotation',
      rotated.status === 200 && id === created?.id,
      `the same key and body sent with the next token answered ${seen(rotated)}` +
        `${id === created?.id ? ' with the same record' : `, id ${String(id)} instead of ${created?.id ?? 'none'}`}`,
    )
  }

  if (created === undefined) {
    for (const rule of ['update.if_match_required', 'update.conditional', 'update.read_only'])
      kit.skip(rule, 'no record was created', 'Fix create.idempotent first.')
  } else {
    await checkUpdates(kit, resource, created)
  }

  if (receiver === undefined) {
    kit.skip(
      'notifications.signature',
      'no receiver',
      'Pass --receiver-port and --secret, and set the printed URL and the secret in the agent.',
    )
  } else if (created !== undefined) {
    const note = await receiver.waitFor((n) => n.event?.id === created.id)
    kit.record(
      'notifications.signature',
      note !== undefined && note.verified && note.event !== undefined,
      note === undefined
        ? `no notification of ${resource} ${created.id} arrived within ${receiver.waitMs / 1000} s`
        : !note.verified
          ? `the notification of ${created.id} is not validly signed: ${note.reason}`
          : `a ${note.event?.type ?? ''} notification of ${created.id}, validly signed`,
    )
  }
}

async function checkUpdates(kit: Kit, resource: ErpResource, created: ErpRecordJson): Promise<void> {
  const path = `/v1/${resource}/${encodeURIComponent(created.id)}`
  const noMatch = await kit.call('PATCH', path, { body: { active: false } })
  kit.record(
    'update.if_match_required',
    noMatch.status === 428 && code(noMatch) === 'if_match_required',
    `PATCH without If-Match answered ${seen(noMatch)}`,
  )
  const current = await kit.call('GET', path)
  const version = (current.body as Json | undefined)?.['version']
  const v = typeof version === 'number' ? version : created.version
  const readOnly = await kit.call('PATCH', path, { body: { id: 'agent-check' }, headers: { 'if-match': `"${v}"` } })
  kit.record(
    'update.read_only',
    readOnly.status === 422 && code(readOnly) === 'validation_failed',
    `PATCH of id answered ${seen(readOnly)}`,
  )
  // Deactivating also leaves nothing behind that a person would have to clean up.
  const applied = await kit.call('PATCH', path, { body: { active: false }, headers: { 'if-match': `"${v}"` } })
  const stale = await kit.call('PATCH', path, { body: { active: true }, headers: { 'if-match': `"${v}"` } })
  const staleBody = stale.status >= 400 ? (stale.body as Json | undefined) : undefined
  const ok =
    applied.status === 200 &&
    applied.headers['etag'] === `"${v + 1}"` &&
    stale.status === 412 &&
    code(stale) === 'version_mismatch' &&
    staleBody?.['current_version'] === v + 1
  kit.record(
    'update.conditional',
    ok,
    `PATCH with If-Match "${v}" answered ${seen(applied)} ETag ${applied.headers['etag'] ?? 'none'}; ` +
      `again with "${v}" answered ${seen(stale)}` +
      (staleBody?.['current_version'] === undefined
        ? ''
        : ` current_version ${JSON.stringify(staleBody['current_version'])}`),
  )
}

interface Received {
  verified: boolean
  reason: string
  event: { id: string; type: string } | undefined
}

/** A one-off receiver for the agent's notifications, verifying signatures like the service does. */
class Receiver {
  private constructor(
    private readonly server: Server,
    readonly waitMs: number,
    private readonly received: Received[],
  ) {}

  static async start(opts: NonNullable<ConformanceOptions['notifications']>): Promise<Receiver> {
    const received: Received[] = []
    const server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const body = Buffer.concat(chunks)
        const h = (name: string) => {
          const v = req.headers[name]
          return Array.isArray(v) ? v.join(' ') : v
        }
        const result = verify({
          id: h('webhook-id'),
          timestamp: h('webhook-timestamp'),
          signature: h('webhook-signature'),
          body,
          secrets: [opts.secret],
          now: Date.now(),
        })
        let parsed: unknown
        try {
          parsed = JSON.parse(body.toString('utf8'))
        } catch {
          parsed = undefined
        }
        const event = parseRecordChanged(parsed)
        received.push({
          verified: result.ok,
          reason: result.ok ? (event.ok ? '' : event.reason) : result.message,
          event: event.ok ? { id: event.event.id, type: event.event.type } : undefined,
        })
        res.writeHead(result.ok ? 204 : 401).end()
      })
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(opts.port, opts.host ?? '127.0.0.1', resolve)
    })
    const receiver = new Receiver(server, opts.waitMs ?? 10_000, received)
    const { port } = server.address() as AddressInfo
    opts.onListening?.(`http://${opts.host ?? '127.0.0.1'}:${port}/`)
    return receiver
  }

  async waitFor(match: (r: Received) => boolean): Promise<Received | undefined> {
    const deadline = Date.now() + this.waitMs
    for (;;) {
      const found = this.received.find(match) ?? this.received.find((r) => !r.verified)
      if (found !== undefined || Date.now() > deadline) return found
      await sleep(50)
    }
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

/** One line per rule: `PASS  rule  what was seen`, and for a failure the fix. */
export function formatResults(results: readonly RuleResult[]): string {
  const width = Math.max(...results.map((r) => r.rule.length))
  const lines = results.map((r) => {
    const head = `${r.status.toUpperCase().padEnd(4)}  ${r.rule.padEnd(width)}  ${r.detail}`
    return r.status === 'pass' ? head : `${head} — ${r.status === 'fail' ? 'fix' : 'to check it'}: ${r.fix ?? ''}`
  })
  const failed = results.filter((r) => r.status === 'fail').length
  const passed = results.filter((r) => r.status === 'pass').length
  lines.push(`${passed} passed, ${failed} failed, ${results.length - passed - failed} skipped`)
  return lines.join('\n')
}
