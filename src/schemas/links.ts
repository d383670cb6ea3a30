import { Type, type Static } from 'typebox'
import { OriginStates } from '../db/tables/sync.js'
import { UnmetPrerequisite } from '../sync/runs.js'
import { SideRecord } from './records.js'

export const Link = Type.Object({
  id: Type.String({ format: 'uuid' }),
  type: Type.String(),
  procoreId: Type.String(),
  erpId: Type.String(),
  active: Type.Boolean({ description: 'False once unlinked (the row stays as history).' }),
  origin: Type.Enum([...OriginStates], {
    description:
      "Procore's origin_id/origin_code: pending → set while linked; clearing → cleared after unlink; " +
      'failed: Procore refused the write (originError says why).',
  }),
  originError: Type.Union([Type.String(), Type.Null()]),
  discrepancyId: Type.Union([Type.String({ format: 'uuid' }), Type.Null()], {
    description: 'The open discrepancy of this pair, if its fields differ.',
  }),
  createdBy: Type.String({ description: 'api-key:<id> or system:<job>.' }),
  createdAt: Type.String({ format: 'date-time' }),
  unlinkedBy: Type.Union([Type.String(), Type.Null()]),
  unlinkedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
})
export type Link = Static<typeof Link>

export { UnmetPrerequisite }

export const LinkCandidate = Type.Object({
  id: Type.String({ description: 'The candidate on the other side.' }),
  score: Type.Number({ minimum: 0, maximum: 1, description: 'Match score; 0 for a record found only by `q`.' }),
  strong: Type.Boolean(),
  reasons: Type.Array(Type.String(), { examples: [['same project / job number']] }),
  record: SideRecord,
  eligible: Type.Boolean({ description: 'Every link prerequisite holds: POST …/links links it as it is.' }),
  unmet: Type.Array(UnmetPrerequisite),
})
export type LinkCandidate = Static<typeof LinkCandidate>

export const PrerequisiteFix = Type.Object(
  {
    code: Type.String(),
    changed: Type.Record(Type.String(), Type.Object({ before: Type.Unknown(), after: Type.Unknown() }), {
      description: 'The Procore fields written, before and after.',
    }),
  },
  {
    examples: [
      { code: 'procore_project_not_erp_integrated', changed: { is_erp_integrated: { before: false, after: true } } },
      {
        code: 'procore_project_not_on_erp_cost_code_list',
        changed: { standard_cost_code_list_id: { before: null, after: '4300000001' } },
      },
    ],
  },
)

export const LinkCreated = Type.Intersect([
  Link,
  Type.Object({
    fixed: Type.Array(PrerequisiteFix, {
      description: 'What fix: true changed in Procore so that the prerequisites hold (empty: nothing needed).',
    }),
    dependents: Type.Record(Type.String(), Type.Integer({ minimum: 0 }), {
      examples: [{ cost_code: 30 }],
      description:
        "Records inside the linked pair that now follow it, per type: the job's cost codes are linked to the " +
        "project's or created there through Procore's cost_codes/sync (see the create_in_procore run).",
    }),
  }),
])
