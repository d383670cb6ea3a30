import { Type, type Static } from 'typebox'
import { Sides } from '../db/tables/records.js'
import { ExportSummary } from './exports.js'
import { RecordTypes } from '../sync/registry.js'
import { RecordStatuses, RecordViews, type RecordStatus, type RecordView } from '../sync/status.js'

export { RecordStatuses, RecordViews, type RecordStatus }

export const RecordTypeParam = Type.Enum([...RecordTypes], {
  description: 'Record type: department, user, project, cost_code or vendor.',
})
export const FieldValue = Type.Union([Type.String(), Type.Boolean(), Type.Null()])
/** Ids are opaque to us (the ERP Connector Protocol allows any non-empty text): only control characters are refused. */
export const EXTERNAL_ID_PATTERN = '^[^\\u0000-\\u001f\\u007f]+$'
export const ExternalId = Type.String({
  minLength: 1,
  maxLength: 255,
  pattern: EXTERNAL_ID_PATTERN,
  description:
    "The record's id on its side (Procore id, or the ERP's own id, which may contain spaces: percent-encode it " +
    'in paths, e.g. `D%2060`).',
})
export const SideParam = Type.Enum([...Sides], { description: 'procore or erp.' })

export const SideRecord = Type.Object({
  id: Type.String(),
  parentId: Type.Union([Type.String(), Type.Null()], {
    description: 'Project cost codes: the Procore project or ERP job they belong to.',
  }),
  fields: Type.Record(Type.String(), FieldValue, {
    description: 'Canonical fields, as the entity registry maps them.',
  }),
  updatedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  deleted: Type.Boolean(),
})
export type SideRecord = Static<typeof SideRecord>

export const RecordItem = Type.Object({
  key: Type.String({ description: 'Stable row id: link:<link id>, procore:<id> or erp:<id>.' }),
  status: Type.Enum([...RecordStatuses], {
    description:
      'linked: in sync; discrepancy: linked, fields differ (see discrepancyId); ' +
      'only_in_procore / only_in_erp: unlinked; ignored: set aside by a person; ' +
      'failed: the last action failed (see failure).',
  }),
  linkId: Type.Union([Type.String({ format: 'uuid' }), Type.Null()]),
  discrepancyId: Type.Union([Type.String({ format: 'uuid' }), Type.Null()]),
  procore: Type.Union([SideRecord, Type.Null()]),
  erp: Type.Union([SideRecord, Type.Null()]),
  failure: Type.Union([
    Type.Object({ action: Type.String(), reason: Type.String(), at: Type.String({ format: 'date-time' }) }),
    Type.Null(),
  ]),
  export: Type.Union([ExportSummary, Type.Null()], {
    description: "The Procore record's open or last export request (…/exports), with its icon colour.",
  }),
})
export type RecordItem = Static<typeof RecordItem>

export const RecordCounts = Type.Object(
  Object.fromEntries(RecordStatuses.map((s) => [s, Type.Integer({ minimum: 0 })])) as Record<
    RecordStatus,
    ReturnType<typeof Type.Integer>
  >,
  { description: 'Records per status among those `q` matches.' },
)

export const RecordViewCounts = Type.Object(
  Object.fromEntries(RecordViews.map((s) => [s, Type.Integer({ minimum: 0 })])) as Record<
    RecordView,
    ReturnType<typeof Type.Integer>
  >,
  {
    description:
      "Records per filter of Procore's ERP Integrations tool among those `q` matches: ready_to_import (ERP only, " +
      'active), ready_to_export (Procore only), ready_to_update (linked, with a discrepancy), failed, synced, ' +
      'archived (archived or ignored).',
  },
)

/** One page of records, and the count per status of everything the search matches. */
export const RecordPage = Type.Object({
  items: Type.Array(RecordItem),
  next: Type.Union([Type.String(), Type.Null()]),
  counts: RecordCounts,
  views: RecordViewCounts,
  countsEstimated: Type.Boolean({
    description:
      'True when `q` matches more than 10,000 records: `counts` and `views` then cover the first 10,000 ' +
      'matches in display order only (a lower bound). Without `q` the counts are exact.',
  }),
})
export type RecordPage = Static<typeof RecordPage>

export const Suggestion = Type.Object({
  id: Type.String({ description: 'The candidate on the other side.' }),
  score: Type.Number({ minimum: 0, maximum: 1 }),
  strong: Type.Boolean({
    description:
      'A strong key is equal (e-mail, code, tax id…) or the score is at least 0.95: ' +
      'creating instead of linking would make a duplicate.',
  }),
  reasons: Type.Array(Type.String(), { examples: [['same e-mail', 'name 0.92 similar']] }),
  record: SideRecord,
})
export type Suggestion = Static<typeof Suggestion>
