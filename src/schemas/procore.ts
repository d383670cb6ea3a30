import { Type, type Static } from 'typebox'
import { ProcoreModes } from '../db/tables/procore.js'
import { CompanyIdString, DateTime, Nullable } from './common.js'

export const ProcoreWebhook = Type.Object({
  hookId: Nullable(Type.String({ description: "Procore's id of our hook." })),
  namespace: Type.String(),
  apiVersion: Type.String({ description: 'Payload version Procore sends: v2.0, v3.0 or v4.0.' }),
  destinationUrl: Type.String(),
  installedAt: Nullable(DateTime),
  secretRotatedAt: DateTime,
  previousSecretValidUntil: Nullable(
    Type.String({
      format: 'date-time',
      description: 'Until then the secret before the last rotation is still accepted.',
    }),
  ),
  triggers: Type.Array(
    Type.Object({
      resourceName: Type.String(),
      eventType: Type.String(),
      status: Type.Enum(['active', 'unsupported'], {
        description: 'unsupported: Procore does not offer this event for the resource (see message).',
      }),
      message: Nullable(Type.String()),
    }),
  ),
})
export type ProcoreWebhook = Static<typeof ProcoreWebhook>

export const ProcoreConnection = Type.Object({
  companyId: CompanyIdString,
  status: Type.Enum(['not_connected', 'connected', 'needs_reauth', 'disconnected'], {
    description:
      'needs_reauth: Procore refused the stored credentials ' +
      '(e.g. a refresh token was reused or the app uninstalled); nothing is retried until someone connects again.',
  }),
  mode: Nullable(Type.Enum([...ProcoreModes])),
  clientId: Nullable(Type.String({ description: "The service account's client id (client_credentials mode)." })),
  apiUrl: Type.String({ description: 'The Procore API this service talks to (production, sandbox or a stand-in).' }),
  accessTokenExpiresAt: Nullable(DateTime),
  connectedAt: Nullable(DateTime),
  refreshedAt: Nullable(DateTime),
  reauthReason: Nullable(Type.String()),
  webhook: Nullable(ProcoreWebhook),
})
export type ProcoreConnection = Static<typeof ProcoreConnection>

export const ProcoreConnectBody = Type.Union([
  Type.Object(
    {
      mode: Type.Literal('client_credentials', {
        description: "A developer-managed service account: its client id and secret from Procore's Developer Portal.",
      }),
      clientId: Type.String({ minLength: 1, maxLength: 256 }),
      clientSecret: Type.String({ minLength: 1, maxLength: 1024 }),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      mode: Type.Literal('authorization_code', {
        description: 'A person authorizes this service in Procore (needs PROCORE_CLIENT_ID/SECRET).',
      }),
    },
    { additionalProperties: false },
  ),
])
export type ProcoreConnectBody = Static<typeof ProcoreConnectBody>
