// Standard Webhooks 1.0 (symmetric `v1,` signatures), both ways: the ERP agent signs every
// notification with the company's secret and we verify the raw bytes before anything else; our
// own outbound webhooks are signed the same way (`headers`).
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

/** Accepted distance between `webhook-timestamp` and our clock, both ways. */
export const TIMESTAMP_TOLERANCE_SECONDS = 5 * 60
const PREFIX = 'whsec_'
const MESSAGE_ID = /^[\x21-\x7e]{1,255}$/
const TIMESTAMP = /^\d{1,12}$/
const MAX_SIGNATURE_HEADER = 4096

/** A new notification secret: `whsec_` + base64 of 32 random bytes (the spec asks for 24–64). */
export function newNotificationSecret(): string {
  return `${PREFIX}${randomBytes(32).toString('base64')}`
}

function keyOf(secret: string): Buffer {
  return Buffer.from(secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret, 'base64')
}

/** HMAC-SHA256 of `{id}.{timestamp}.{body}` with the decoded secret. */
export function signatureBytes(secret: string, id: string, timestamp: string, body: Buffer | string): Buffer {
  return createHmac('sha256', keyOf(secret)).update(`${id}.${timestamp}.`).update(body).digest()
}

/** The `webhook-signature` value a sender would put for this secret (one entry). */
export function sign(secret: string, id: string, timestamp: string, body: Buffer | string): string {
  return `v1,${signatureBytes(secret, id, timestamp, body).toString('base64')}`
}

/** The three Standard Webhooks headers for one attempt of a message, signed now. */
export function headers(secret: string, id: string, body: string, now = Date.now()): Record<string, string> {
  const timestamp = String(Math.floor(now / 1000))
  return { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': sign(secret, id, timestamp, body) }
}

export type VerifyFailure =
  'headers_missing' | 'headers_invalid' | 'timestamp_too_old' | 'timestamp_too_new' | 'signature_invalid'

export type VerifyResult =
  { ok: true; id: string; timestamp: number } | { ok: false; failure: VerifyFailure; message: string }

export interface VerifyInput {
  id: string | undefined
  timestamp: string | undefined
  signature: string | undefined
  /** The exact bytes received. */
  body: Buffer
  /** Every secret currently valid (current, and the previous one during its grace period). */
  secrets: readonly string[]
  /** Our clock, epoch ms. */
  now: number
}

/**
 * Verifies a delivery. One valid `v1,` signature among the space-separated list, for any of the
 * secrets, is enough (senders rotating secrets send one per secret). Comparison is constant-time
 * per candidate; `v1a,` (asymmetric) entries are not ours and are ignored.
 */
export function verify(input: VerifyInput): VerifyResult {
  const { id, timestamp, signature } = input
  if (!id || !timestamp || !signature) {
    return {
      ok: false,
      failure: 'headers_missing',
      message: 'Send the webhook-id, webhook-timestamp and webhook-signature headers (Standard Webhooks 1.0).',
    }
  }
  if (!MESSAGE_ID.test(id) || !TIMESTAMP.test(timestamp) || signature.length > MAX_SIGNATURE_HEADER) {
    return {
      ok: false,
      failure: 'headers_invalid',
      message: 'webhook-id must be 1–255 visible ASCII characters and webhook-timestamp Unix seconds.',
    }
  }
  const seconds = Number(timestamp)
  const skew = seconds - Math.floor(input.now / 1000)
  if (skew < -TIMESTAMP_TOLERANCE_SECONDS) {
    return {
      ok: false,
      failure: 'timestamp_too_old',
      message:
        `webhook-timestamp is more than ${TIMESTAMP_TOLERANCE_SECONDS} s in the past: ` +
        "sign each attempt afresh with the current time, and check the agent's clock.",
    }
  }
  if (skew > TIMESTAMP_TOLERANCE_SECONDS) {
    return {
      ok: false,
      failure: 'timestamp_too_new',
      message:
        `webhook-timestamp is more than ${TIMESTAMP_TOLERANCE_SECONDS} s in the future: ` + "check the agent's clock.",
    }
  }
  const given = signature.split(' ').flatMap((entry) => {
    const [version, value] = entry.split(',', 2)
    if (version !== 'v1' || !value) return []
    const bytes = Buffer.from(value, 'base64')
    return bytes.length === 32 ? [bytes] : []
  })
  for (const secret of input.secrets) {
    const expected = signatureBytes(secret, id, timestamp, input.body)
    for (const candidate of given) {
      if (timingSafeEqual(expected, candidate)) return { ok: true, id, timestamp: seconds }
    }
  }
  return {
    ok: false,
    failure: 'signature_invalid',
    message:
      'No webhook-signature matches: sign "{webhook-id}.{webhook-timestamp}.{body}" over the exact bytes sent, with ' +
      'the secret the service gave (see openapi/README.md).',
  }
}
