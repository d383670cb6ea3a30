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

/** `{name: ["can't be blank"]}` → `["name can't be blank"]`. */
export function fieldMessages(errors: Record<string, unknown>): string[] {
  return Object.entries(errors).flatMap(([field, messages]) =>
    (Array.isArray(messages) ? messages : [messages]).map((m) =>
      field === 'base' ? String(m) : `${field} ${String(m)}`,
    ),
  )
}
