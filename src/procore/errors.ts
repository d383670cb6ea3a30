import { AppError, NotConnectedError } from '../errors.js'

/** The company has no usable Procore connection: connect it first. */
export const notConnected = (companyId: string) =>
  new NotConnectedError(
    'procore',
    'procore_not_connected',
    'Procore not connected',
    `Company ${companyId} is not connected to Procore. ` +
      `POST /v1/companies/${companyId}/procore/connect with a service account, or start the OAuth flow there.`,
  )

/** Procore refused our credentials (refresh token reused or revoked, client secret changed). */
export const needsReauth = (companyId: string, reason: string | null) =>
  new AppError(
    409,
    'procore_needs_reauth',
    'Procore connection needs re-authorisation',
    `Procore no longer accepts this company's credentials${reason ? ` (${reason})` : ''}. ` +
      `Connect again: POST /v1/companies/${companyId}/procore/connect.`,
  )

/**
 * The human part of a Procore v1 error body: `{errors: "…"}`, `{errors: {field: [..]}}`, `{message}`,
 * `{error_description}`.
 */
export function procoreMessage(body: unknown): string | undefined {
  if (typeof body === 'string') return body.slice(0, 300)
  if (body === null || typeof body !== 'object') return undefined
  const b = body as Record<string, unknown>
  if (typeof b.error_description === 'string') return b.error_description
  if (typeof b.message === 'string') return b.message
  if (typeof b.errors === 'string') return b.errors
  if (b.errors && typeof b.errors === 'object')
    return fieldMessages(b.errors as Record<string, unknown>).join('; ') || undefined
  return undefined
}

/** `{name: ["can't be blank"]}` → `["name can't be blank"]`. */
export function fieldMessages(errors: Record<string, unknown>): string[] {
  return Object.entries(errors).flatMap(([field, messages]) =>
    (Array.isArray(messages) ? messages : [messages]).map((m) =>
      field === 'base' ? String(m) : `${field} ${String(m)}`,
    ),
  )
}
