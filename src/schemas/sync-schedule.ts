import { Type, type Static } from 'typebox'
import { Intervals } from '../db/tables/schedules.js'

const intervals = `One of ${Intervals.join(', ')}.`

export const ScheduleEntry = Type.Object({
  syncType: Type.String({ examples: ['erp_vendor_list'] }),
  description: Type.String(),
  level: Type.Enum(['company', 'project']),
  interval: Type.String({ description: intervals, examples: ['hourly'] }),
  timeOfDay: Type.Union([Type.String(), Type.Null()], {
    description: 'For daily: HH:MM in the schedule time zone; null: 02:00–04:00, spread per company.',
  }),
  available: Type.Boolean({ description: "Whether this sync type can run for this company's connections and ERP." }),
  unavailableReason: Type.Union([Type.String(), Type.Null()], { description: 'Why not, when it is not available.' }),
  nextDueAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
    description: 'When it runs next; null for never or unavailable.',
  }),
  deferredReason: Type.Union([Type.String(), Type.Null()], {
    description: 'Why the current due time was put off (Procore rate-limit headroom), when it was.',
  }),
  lastRun: Type.Union([
    Type.Object({ id: Type.String({ format: 'uuid' }), status: Type.String(), createdAt: Type.String() }),
    Type.Null(),
  ]),
})
export type ScheduleEntry = Static<typeof ScheduleEntry>

export const SyncSchedule = Type.Object(
  {
    timeZone: Type.String({ description: 'IANA time zone of daily times.', examples: ['America/Chicago'] }),
    entries: Type.Array(ScheduleEntry),
  },
  {
    examples: [
      {
        timeZone: 'America/Chicago',
        entries: [
          {
            syncType: 'erp_vendor_list',
            description: 'Refresh the ERP companies (vendor) list',
            level: 'company',
            interval: 'hourly',
            timeOfDay: null,
            available: true,
            unavailableReason: null,
            nextDueAt: '2026-12-04T15:17:00.000Z',
            deferredReason: null,
            lastRun: {
              id: '0b6f3c1e-8f1e-4a53-9d1c-3f2a4b5c6d7e',
              status: 'succeeded',
              createdAt: '2026-12-04T14:17:00Z',
            },
          },
          {
            syncType: 'project_job_costs',
            description: "Sync project job costs (the ERP's cost totals per linked job to the Procore project)",
            level: 'project',
            interval: 'every_2_hours',
            timeOfDay: null,
            available: true,
            unavailableReason: null,
            nextDueAt: '2026-12-04T16:43:00.000Z',
            deferredReason: null,
            lastRun: {
              id: '7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f',
              status: 'succeeded',
              createdAt: '2026-12-04T14:43:00Z',
            },
          },
          {
            syncType: 'payments_for_synced_invoices',
            description: 'Sync payments for synced invoices',
            level: 'project',
            interval: 'daily',
            timeOfDay: null,
            available: false,
            unavailableReason: 'syncing payments is not built in this version of the service',
            nextDueAt: null,
            deferredReason: null,
            lastRun: null,
          },
        ],
      },
    ],
  },
)
export type SyncSchedule = Static<typeof SyncSchedule>

export const ScheduleEntryInput = Type.Object(
  {
    syncType: Type.String({ minLength: 1, maxLength: 64, examples: ['erp_vendor_list'] }),
    interval: Type.String({ minLength: 1, maxLength: 32, description: intervals, examples: ['every_4_hours'] }),
    timeOfDay: Type.Optional(
      Type.Union([Type.String({ maxLength: 5 }), Type.Null()], { description: 'Daily only: HH:MM (24-hour).' }),
    ),
  },
  { additionalProperties: false },
)
export type ScheduleEntryInput = Static<typeof ScheduleEntryInput>

export const SyncScheduleInput = Type.Object(
  {
    timeZone: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'IANA time zone.' })),
    entries: Type.Array(ScheduleEntryInput, {
      maxItems: 32,
      description: 'The entries to change; sync types left out keep their interval.',
    }),
  },
  {
    additionalProperties: false,
    examples: [
      {
        timeZone: 'America/Chicago',
        entries: [
          { syncType: 'erp_vendor_list', interval: 'every_4_hours' },
          { syncType: 'erp_job_list', interval: 'daily', timeOfDay: '02:30' },
          { syncType: 'procore_project_reconcile', interval: 'never' },
        ],
      },
    ],
  },
)

export const RunNowInput = Type.Object(
  {
    full: Type.Optional(
      Type.Boolean({
        description:
          'Listings: list everything and find vanished records (default: since the last run). ' +
          'project_job_costs: send every cost total, changed or not (default: only those changed since Procore ' +
          'last accepted them).',
      }),
    ),
  },
  { additionalProperties: false, examples: [{}, { full: true }] },
)
