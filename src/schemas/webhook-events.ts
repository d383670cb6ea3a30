import { Type, type Static } from 'typebox'
import { InboxStatuses, Sides } from '../db/tables/records.js'

export const InboxEvent = Type.Object({
  id: Type.String(),
  source: Type.Enum([...Sides]),
  dedupeKey: Type.String({ description: "The sender's event id; a second delivery with it is ignored." }),
  receivedAt: Type.String({ format: 'date-time' }),
  eventType: Type.Union([Type.String(), Type.Null()]),
  recordType: Type.Union([Type.String(), Type.Null()]),
  resourceId: Type.Union([Type.String(), Type.Null()]),
  status: Type.Enum([...InboxStatuses], {
    description:
      'queued: waiting or retrying; processed; skipped: nothing to do (e.g. our own change echoing back); ' +
      'quarantined: authentic but unusable, kept for inspection; failed: gave up after retries, see lastError.',
  }),
  attempts: Type.Integer(),
  lastError: Type.Union([Type.String(), Type.Null()]),
  processedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  body: Type.String({ description: 'The raw body as received (cut at 20,000 characters).' }),
})
export type InboxEvent = Static<typeof InboxEvent>

/** What a Procore webhook delivery is answered with. */
export const ReceivedWebhook = Type.Object({
  id: Type.Union([Type.String(), Type.Null()], { description: 'Inbox event id (null for a repeated delivery).' }),
  status: Type.Enum([...InboxStatuses, 'duplicate'], {
    description:
      'queued: will be processed; quarantined: stored but unusable (see webhook-events); ' +
      'duplicate: this event was already stored.',
  }),
})
export type ReceivedWebhook = Static<typeof ReceivedWebhook>
