// Procore webhook payloads: v2.0, v3.0 (= v2 + related_resources) and v4.0
// (string ids, `reason`, `resource_type`, ULID `id`, no metadata), read into one shape.
import { createHash } from 'node:crypto'
import { parseJson } from '../http/json.js'
import { idOf } from './ids.js'

export interface ProcoreEvent {
  payloadVersion: 'v2' | 'v3' | 'v4'
  /** Stable across redeliveries of one event: the ULID when there is one, else the event id. */
  dedupeKey: string
  companyId: string
  projectId: string | null
  eventType: string
  resourceName: string
  resourceId: string
  timestamp: string | null
  /** OAuth client id of the app that made the change (v2/v3 metadata; v4 does not carry it). */
  sourceApplicationId: string | null
}

export type ParsedEvent =
  | { ok: true; event: ProcoreEvent }
  | {
      ok: false
      reason: string
      dedupeKey: string
      companyId: string | null
      eventType: string | null
      resourceName: string | null
    }

const MAX_NAME = 200
const text = (v: unknown, max = MAX_NAME): string | null =>
  typeof v === 'string' && v !== '' && v.length <= max ? v : null
const obj = (v: unknown): Record<string, unknown> | null =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null

/** Dedupe key of a body we cannot read: the same bytes delivered twice are stored once. */
export const bodyKey = (body: string): string => `sha256:${createHash('sha256').update(body).digest('hex')}`

export function parseEvent(body: string): ParsedEvent {
  let json: Record<string, unknown> | null
  try {
    json = obj(parseJson(body))
  } catch {
    json = null
  }
  const unusable = (reason: string): ParsedEvent => ({
    ok: false,
    reason,
    dedupeKey: bodyKey(body),
    companyId: json ? (idOf(json.company_id) ?? null) : null,
    eventType: json ? text(json.event_type ?? json.reason, 100) : null,
    resourceName: json ? text(json.resource_name ?? json.resource_type) : null,
  })
  if (!json) return unusable(body.trim() === '' ? 'empty body' : 'body is not a JSON object')

  const v4 = 'resource_type' in json || 'reason' in json
  const companyId = idOf(json.company_id)
  const resourceId = idOf(json.resource_id)
  const eventType = text(v4 ? json.reason : json.event_type, 100)
  const resourceName = text(v4 ? json.resource_type : json.resource_name)
  const eventId = v4 ? text(json.id, 64) : (idOf(json.id) ?? text(json.id, 64))
  const ulid = v4 ? null : text(json.ulid, 64)
  if (!companyId) return unusable('company_id is missing or not an id')
  if (!resourceName) return unusable(`${v4 ? 'resource_type' : 'resource_name'} is missing`)
  if (!eventType) return unusable(`${v4 ? 'reason' : 'event_type'} is missing`)
  if (!resourceId) return unusable('resource_id is missing or not an id')
  if (!eventId && !ulid) return unusable('the event has no id or ulid')

  const metadata = obj(json.metadata)
  const payloadVersion = v4 ? 'v4' : 'related_resources' in json || json.api_version === 'v3.0' ? 'v3' : 'v2'
  return {
    ok: true,
    event: {
      payloadVersion,
      // v4's id is the ULID, and v2/v3 carry the same ULID, so a hook switched between versions still dedupes.
      dedupeKey: ulid ?? eventId!,
      companyId,
      projectId: idOf(json.project_id) ?? null,
      eventType,
      resourceName,
      resourceId,
      timestamp: text(json.timestamp, 64),
      sourceApplicationId: metadata
        ? (text(metadata.source_application_id, 200) ?? idOf(metadata.source_application_id) ?? null)
        : null,
    },
  }
}
