import { isIP } from 'node:net'
import { badRequest } from '../errors.js'

const LOOPBACK_NAMES = new Set(['localhost', 'localhost.'])

/** 127.0.0.0/8, ::1 (and ::ffff:127.x), or the name localhost. */
export function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase()
  if (LOOPBACK_NAMES.has(host)) return true
  if (isIP(host) === 4) return host.startsWith('127.')
  if (isIP(host) === 6) return host === '::1' || /^::ffff:127\./.test(host) || /^::ffff:7f[0-9a-f]{2}:/.test(host)
  return false
}

/**
 * Checks a caller-supplied agent base URL and returns it normalised (no trailing slash).
 * https only — plain http just on loopback, or anywhere when `allowHttp` — without credentials,
 * query or fragment: the token goes in a header, never in the URL. Redirects are never followed
 * (the HTTP layer pins every request to this origin), so the URL cannot be bounced elsewhere.
 */
export function validateBaseUrl(raw: string, allowHttp: boolean): string {
  const refuse = (message: string) =>
    badRequest(
      'invalid_base_url',
      `baseUrl ${message}. Give the agent's root URL, e.g. https://erp-agent.example.com (the service adds /v1/...).`,
      [{ pointer: '/body/baseUrl', message }],
    )
  const url = URL.parse(raw.trim())
  if (url === null) throw refuse('is not an absolute URL')
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw refuse(`must use https (got ${url.protocol.replace(/:$/, '')})`)
  if (url.username !== '' || url.password !== '')
    throw refuse('must not contain credentials; send the token in the token field')
  if (url.search !== '' || url.hash !== '') throw refuse('must not have a query string or fragment')
  if (url.hostname === '') throw refuse('has no host')
  if (url.protocol === 'http:' && !allowHttp && !isLoopback(url.hostname)) {
    throw refuse(
      'must use https: plain http is accepted only for loopback addresses (set ERP_ALLOW_HTTP=true ' +
        'for private test networks)',
    )
  }
  const path = url.pathname.replace(/\/+$/, '')
  if (/\/v\d+$/.test(path)) throw refuse('must not end with the protocol version (/v1): the service adds it')
  return `${url.origin}${path}`
}
