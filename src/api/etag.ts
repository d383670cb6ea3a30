import type { FastifyRequest } from 'fastify'
import { badRequest, preconditionRequired } from '../errors.js'

/** Strong ETag from a row version. */
export const etagOf = (version: number): string => `"${version}"`

/**
 * Reads If-Match and returns the version the caller last saw; the domain function compares it
 * with the row it locks (412 when stale). Missing header → 428.
 */
export function expectedVersion(request: FastifyRequest): number {
  const header = request.headers['if-match']
  if (header === undefined || header === '') throw preconditionRequired()
  const match = /^\s*"(\d{1,9})"\s*$/.exec(header)
  if (!match?.[1]) {
    throw badRequest(
      'invalid_if_match',
      'If-Match must be one ETag exactly as returned by GET, quotes included, e.g. If-Match: "3".',
      [{ pointer: '/headers/if-match', message: 'not an ETag issued by this API' }],
    )
  }
  return Number(match[1])
}
