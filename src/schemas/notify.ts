import { Type, type Static } from 'typebox'
import { NotifyEventNames, NotifyEvents } from '../notify/events.js'
import { DateTime, Nullable } from './common.js'

export const NotifyEventParam = Type.Enum([...NotifyEventNames], {
  description: Object.entries(NotifyEvents)
    .map(([name, what]) => `\`${name}\`: ${what}`)
    .join(' '),
})

export const NewSubscription = Type.Object(
  {
    url: Type.String({
      minLength: 1,
      maxLength: 2000,
      description: 'Where events are POSTed, signed per Standard Webhooks 1.0.',
      examples: ['https://hooks.example.com/erp-sync'],
    }),
    events: Type.Array(NotifyEventParam, {
      minItems: 1,
      maxItems: 50,
      examples: [['export.rejected', 'exports.digest']],
    }),
  },
  { additionalProperties: false },
)

export const Subscription = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    url: Type.String(),
    events: Type.Array(NotifyEventParam),
    createdBy: Type.String(),
    createdAt: DateTime,
  },
  {
    examples: [
      {
        id: '0f7c1d1e-2f7a-4b0e-9d55-3c1de1a5b6f1',
        url: 'https://hooks.example.com/erp-sync',
        events: ['export.rejected', 'exports.digest'],
        createdBy: 'api-key:4b1f0c3a-8a8e-4d4e-9a39-1c7d2b9f0e11',
        createdAt: '2026-12-04T15:00:00.000Z',
      },
    ],
  },
)
export type Subscription = Static<typeof Subscription>

export const CreatedSubscription = Type.Intersect([
  Subscription,
  Type.Object({
    secret: Type.String({
      description:
        'The signing secret (whsec_…), shown only in this answer: verify webhook-signature over ' +
        '"{webhook-id}.{webhook-timestamp}.{body}" with it.',
    }),
  }),
])

export const Delivery = Type.Object(
  {
    id: Type.String({ format: 'uuid', description: 'The webhook-id is `msg_` + this id.' }),
    event: NotifyEventParam,
    status: Type.Enum(['pending', 'delivered', 'failed']),
    attempts: Type.Integer(),
    lastStatus: Nullable(Type.Integer()),
    lastError: Nullable(Type.String()),
    payload: Type.Record(Type.String(), Type.Unknown()),
    createdAt: DateTime,
    finishedAt: Nullable(DateTime),
  },
  {
    examples: [
      {
        id: '6a1d2f3e-1b2c-4d5e-8f90-0a1b2c3d4e5f',
        event: 'export.rejected',
        status: 'delivered',
        attempts: 1,
        lastStatus: 204,
        lastError: null,
        payload: {
          type: 'export.rejected',
          timestamp: '2026-12-04T15:02:00.000Z',
          data: { companyId: '5358233', exportId: '…', status: 'rejected', reason: 'Use the existing vendor V-100' },
        },
        createdAt: '2026-12-04T15:02:00.000Z',
        finishedAt: '2026-12-04T15:02:01.000Z',
      },
    ],
  },
)
export type Delivery = Static<typeof Delivery>
