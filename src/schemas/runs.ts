import { Type, type Static } from 'typebox'
import { RunStatuses } from '../db/tables/records.js'
import { CompanyIdString } from './common.js'

const Count = Type.Integer({ minimum: 0 })

const REFUSED_EXAMPLE =
  'No AP invoice INV-404 of vendor V000001 on job J000001 is known; refresh the ERP invoices, then link it.'

/** Background work a caller can poll: scheduled and on-demand syncs, refreshes, reconciliations, bulk creates. */
export const Run = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    companyId: CompanyIdString,
    kind: Type.String({ description: 'What the run does, e.g. erp_refresh.' }),
    syncType: Type.Union([Type.String(), Type.Null()], {
      description: 'The sync type of the schedule it serves (see sync-schedule); null for other runs.',
    }),
    trigger: Type.String({
      description: 'What started it: schedule, manual, webhook, accept…',
      examples: ['schedule'],
    }),
    status: Type.String({
      description:
        `One of ${RunStatuses.join(', ')}: queued → running → succeeded | failed | cancelled, or interrupted ` +
        'when the instance performing it stopped. A running run that hit a transient failure says so in ' +
        'result.lastError and is retried.',
      examples: ['succeeded'],
    }),
    params: Type.Record(Type.String(), Type.Unknown(), { description: 'What was asked for.' }),
    result: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()], {
      description: 'Progress while running, the outcome when finished (counts per record type).',
    }),
    error: Type.Union([Type.String(), Type.Null()], { description: 'Why the run failed.' }),
    progress: Type.Object({ done: Count, total: Count }, { description: 'Steps done of the total (record types).' }),
    counts: Type.Object(
      { listed: Count, changed: Count, created: Count, linked: Count, failed: Count },
      { description: 'Records listed, changed (or found deleted), created, linked; failed steps or records.' },
    ),
    errors: Type.Array(
      Type.Object({
        type: Type.Union([Type.String(), Type.Null()]),
        recordId: Type.Union([Type.String(), Type.Null()], { description: 'The record it concerns, when one.' }),
        message: Type.String(),
      }),
    ),
    apiCalls: Type.Object(
      { procore: Count, erp: Count },
      { description: 'Requests spent per side: pages listed plus records re-read one by one.' },
    ),
    durationMs: Type.Union([Count, Type.Null()], { description: 'From start to finish (or to now while running).' }),
    cancelRequestedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    requestedBy: Type.String(),
    createdAt: Type.String({ format: 'date-time' }),
    startedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    finishedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  },
  {
    examples: [
      {
        id: '0b6f3c1e-8f1e-4a53-9d1c-3f2a4b5c6d7e',
        companyId: '562949953421312',
        kind: 'erp_refresh',
        syncType: 'erp_vendor_list',
        trigger: 'schedule',
        status: 'succeeded',
        params: { full: false, types: ['vendor'] },
        result: null,
        error: null,
        progress: { done: 1, total: 1 },
        counts: { listed: 21, changed: 20, created: 1, linked: 0, failed: 0 },
        errors: [],
        apiCalls: { procore: 0, erp: 1 },
        durationMs: 840,
        cancelRequestedAt: null,
        requestedBy: 'schedule',
        createdAt: '2026-12-04T14:07:00.000Z',
        startedAt: '2026-12-04T14:07:00.120Z',
        finishedAt: '2026-12-04T14:07:00.960Z',
      },
      {
        id: '7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f',
        companyId: '562949953421312',
        kind: 'job_costs',
        syncType: 'project_job_costs',
        trigger: 'manual',
        status: 'succeeded',
        params: { full: false },
        result: {
          type: 'job_cost',
          counts: { sent: 1, unchanged: 2, refused: 1 },
          progress: { done: 1, total: 1 },
          apiCalls: { procore: 2, erp: 1 },
          projects: [
            {
              procoreProjectId: '562949953425001',
              erpJobId: 'J000001',
              jobNumber: 'J-100',
              sent: 1,
              unchanged: 2,
              refused: 1,
            },
          ],
          items: [
            {
              status: 'refused',
              sourceId: 'J-100 09-900 L',
              procoreProjectId: '562949953425001',
              erpJobId: 'J000001',
              costCode: '09-900',
              costType: 'L',
              reason: 'Cost code 09-900 of job J-100 is not linked to a Procore cost code.',
              fix:
                'Link cost code 09-900 first (POST /v1/companies/562949953421312/links, type cost_code), ' +
                'then run project_job_costs again.',
            },
          ],
          truncated: false,
        },
        error: null,
        progress: { done: 1, total: 1 },
        counts: { listed: 4, changed: 1, created: 0, linked: 0, failed: 0 },
        errors: [
          {
            type: 'job_cost',
            recordId: 'J-100 09-900 L',
            message: 'Cost code 09-900 of job J-100 is not linked to a Procore cost code.',
          },
        ],
        apiCalls: { procore: 2, erp: 1 },
        durationMs: 412,
        cancelRequestedAt: null,
        requestedBy: 'manual',
        createdAt: '2026-12-04T14:43:00.000Z',
        startedAt: '2026-12-04T14:43:00.080Z',
        finishedAt: '2026-12-04T14:43:00.492Z',
      },
      {
        id: '5d1a7e20-3c4b-4f6a-8e9d-0a1b2c3d4e5f',
        companyId: '562949953421312',
        kind: 'payments_for_synced_invoices',
        syncType: 'payments_for_synced_invoices',
        trigger: 'manual',
        status: 'succeeded',
        params: { full: false },
        result: {
          counts: { listed: 3, sent: 2, unchanged: 0, refused: 1 },
          items: [
            {
              sourceId: 'P000003',
              status: 'refused',
              reason: REFUSED_EXAMPLE,
              invoiceNumber: 'INV-404',
              vendorId: 'V000001',
              jobId: 'J000001',
            },
          ],
          truncated: false,
          apiCalls: { procore: 1, erp: 1 },
          since: '2026-12-03T02:05:00.000Z',
        },
        error: null,
        progress: { done: 1, total: 1 },
        counts: { listed: 3, changed: 2, created: 0, linked: 0, failed: 0 },
        errors: [
          {
            type: null,
            recordId: 'P000003',
            message: REFUSED_EXAMPLE,
          },
        ],
        apiCalls: { procore: 1, erp: 1 },
        durationMs: 410,
        cancelRequestedAt: null,
        requestedBy: 'manual',
        createdAt: '2026-12-04T14:10:00.000Z',
        startedAt: '2026-12-04T14:10:00.050Z',
        finishedAt: '2026-12-04T14:10:00.460Z',
      },
    ],
  },
)
export type Run = Static<typeof Run>
