import { Type, type Static } from 'typebox'
import { CheckFailureCodes } from '../erp/connections.js'
import { CompanyIdString } from './common.js'

export const ErpCheckReport = Type.Object({
  ok: Type.Boolean({
    description:
      'True when the agent answered /v1/info as protocol 1.x, accepted the token ' + "and serves the company's ERP.",
  }),
  checkedAt: Type.String({ format: 'date-time' }),
  failure: Type.Union([
    Type.Object({
      code: Type.Enum([...CheckFailureCodes], {
        description:
          'unreachable: no connection or timeout; unauthorized: the agent refused the token (401/403); ' +
          'not_an_agent: the URL does not answer as ' +
          'ERP Connector Protocol 1.x (404, redirect, not protocol JSON); ' +
          'protocol_version_unsupported: another major version; ' +
          'system_mismatch: the agent ' +
          "serves another ERP than the company's erpSystem; agent_unavailable: 429/5xx, the ERP is offline or busy.",
      }),
      message: Type.String({ description: 'What failed and what to do about it.' }),
    }),
    Type.Null(),
  ]),
  agent: Type.Union(
    [Type.Object({ system: Type.String(), companyName: Type.String(), protocolVersion: Type.String() }), Type.Null()],
    { description: 'What the agent said about itself, when it answered.' },
  ),
  warnings: Type.Array(Type.String(), {
    description:
      'What works but limits the sync: resources the agent does not serve or cannot write, ' + 'no notifications.',
  }),
})
export type ErpCheckReport = Static<typeof ErpCheckReport>

export const ErpConnection = Type.Object(
  {
    companyId: CompanyIdString,
    baseUrl: Type.String({ description: "The agent's base URL; the service calls <baseUrl>/v1/..." }),
    agent: Type.Object(
      {
        system: Type.String({
          description:
            'The ERP the agent reported (foundation, sage300, vista, spectrum, quickbooks_desktop, generic).',
        }),
        companyName: Type.String({ description: 'The ERP company (company file, database) the agent serves.' }),
        protocolVersion: Type.String({ examples: ['1.1'] }),
        resources: Type.Array(Type.String(), { description: 'Resources the agent serves.' }),
        writable: Type.Union([Type.Array(Type.String()), Type.Null()], {
          description: 'Resources that accept creates and updates; null: every resource served.',
        }),
        notifications: Type.Union([Type.Boolean(), Type.Null()], {
          description: 'Whether the agent sends change notifications.',
        }),
        maxPageSize: Type.Integer(),
        maxLengths: Type.Record(Type.String(), Type.Record(Type.String(), Type.Integer()), {
          description:
            'Text limits of this ERP by resource and field, e.g. {"vendors": {"name": 30}}; ' +
            'checked before anything is sent.',
        }),
      },
      { description: 'What the agent said about itself at the last successful connection test.' },
    ),
    notifications: Type.Object({
      url: Type.String({ description: "Enter this URL in the agent's notification settings." }),
      secretCreatedAt: Type.String({ format: 'date-time' }),
      previousSecretValidUntil: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
        description: 'After a rotation, the previous secret is accepted until then.',
      }),
    }),
    lastCheck: Type.Object({
      at: Type.String({ format: 'date-time' }),
      ok: Type.Boolean(),
      failure: Type.Union([Type.Object({ code: Type.String(), message: Type.String() }), Type.Null()]),
    }),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { description: "The company's ERP agent. Never shows the token or the notification secret." },
)
export type ErpConnection = Static<typeof ErpConnection>

export const ErpConnectionInput = Type.Object(
  {
    baseUrl: Type.String({
      minLength: 1,
      maxLength: 2048,
      description: "The agent's root URL, e.g. https://erp-agent.example.com. https, or http on loopback only.",
      examples: ['https://erp-agent.example.com'],
    }),
    token: Type.String({ minLength: 1, maxLength: 4096, description: "The bearer token from the agent's settings." }),
  },
  { additionalProperties: false },
)
export type ErpConnectionInput = Static<typeof ErpConnectionInput>

export const NotificationSecret = Type.String({
  pattern: '^whsec_[A-Za-z0-9+/=]+$',
  description:
    'The secret the agent signs notifications with (Standard Webhooks). ' +
    "Shown only in this response: store it in the agent's settings now.",
})
