import { createHmac } from 'node:crypto'

/**
 * The sender's side of Standard Webhooks 1.0: `v1,` + base64 HMAC-SHA256, keyed with the
 * base64-decoded secret after `whsec_`, over `{id}.{timestamp}.{body}` where body is the exact
 * bytes sent. Returns one signature; a sender rotating secrets joins several with spaces.
 */
export function signStandardWebhook(
  secret: string,
  id: string,
  timestamp: number | string,
  body: string | Buffer,
): string {
  const key = Buffer.from(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret, 'base64')
  const mac = createHmac('sha256', key)
  mac.update(`${id}.${timestamp}.`)
  mac.update(body)
  return `v1,${mac.digest('base64')}`
}
