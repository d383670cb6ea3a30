/**
 * Every event a subscription can ask for, with what it means. Adding an event is one line here
 * and a call to `emit` where it happens; subscriptions, signing, retries and the delivery log
 * need nothing else.
 */
export const NotifyEvents = {
  'export.sent': 'A record was sent to the ERP and waits for an accounting approver.',
  'export.accepted': 'An approver accepted a request; the record is being created in the ERP.',
  'export.exported': 'The record was created in the ERP, linked, and its Procore origin fields set.',
  'export.failed': 'The ERP refused the record; the request shows its messages (failed_to_export).',
  'export.rejected': 'An approver rejected the request, with a reason for the sender.',
  'export.retrieved': 'The sender took the request back before a decision.',
  'export.withdrawn': 'The record was deleted or made inactive in Procore, or re-sent, while open.',
  'run.failed': 'A run (scheduled, on demand or a create, link or export) failed; the run shows why.',
  'exports.digest': 'Daily: how many requests wait for an approver, and the oldest.',
  'webhook.test': 'A test message sent on request (POST …/subscriptions/{id}/test).',
} as const

export type NotifyEvent = keyof typeof NotifyEvents
export const NotifyEventNames = Object.keys(NotifyEvents) as NotifyEvent[]
