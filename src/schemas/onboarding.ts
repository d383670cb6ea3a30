import { Type } from 'typebox'
import { OnboardingSteps } from '../db/tables/onboarding.js'
import { Directions } from '../sync/settings.js'
import { CompanyIdString, DateTime, Nullable } from './common.js'
import { Run } from './runs.js'

const Count = Type.Integer({ minimum: 0 })
const FieldValue = Type.Union([Type.String(), Type.Boolean(), Type.Null()])

export const OnboardingStepName = Type.Enum([...OnboardingSteps], {
  description: '1 company, 2 users, 3 projects, 4 cost_codes, 5 settings — in this order.',
})

export const StepCounts = Type.Object(
  {
    inProcore: Count,
    inErp: Count,
    linked: Count,
    toCreate: Type.Integer({
      minimum: 0,
      description: 'Records on the side imported from with no twin linked: auto import links or creates them.',
    }),
    toReview: Type.Integer({
      minimum: 0,
      description: 'Records on the target side with no twin linked: link them (manual) or leave them.',
    }),
  },
  { description: 'Top-level records (cost codes inside a project follow it), ignored ones left out.' },
)

export const OnboardingStepView = Type.Object({
  step: OnboardingStepName,
  position: Type.Integer({ minimum: 1, maximum: 5 }),
  status: Type.Enum(['todo', 'in_progress', 'done', 'skipped'], {
    description:
      'in_progress also covers a run that stopped (failed, interrupted): `blockedBy` then says to POST the step again.',
  }),
  options: Nullable(Type.Record(Type.String(), Type.Unknown(), { description: 'What the step was last asked.' })),
  counts: Nullable(StepCounts),
  run: Nullable(Run),
  result: Nullable(Type.Record(Type.String(), Type.Unknown())),
  blockedBy: Nullable(Type.String({ description: 'What keeps this step from running now.' })),
  updatedAt: Nullable(DateTime),
})

export const Onboarding = Type.Object(
  {
    companyId: CompanyIdString,
    steps: Type.Array(OnboardingStepView),
    next: Nullable(Type.Object({ step: OnboardingStepName, action: Type.String() })),
    complete: Type.Boolean(),
  },
  {
    examples: [
      {
        companyId: '5358233',
        steps: [
          {
            step: 'company',
            position: 1,
            status: 'done',
            options: { procoreCompanyId: '5358233', costCodeListId: '562949953421399' },
            counts: null,
            run: null,
            result: { procoreCompany: { id: '5358233', name: 'Riverside Builders' } },
            blockedBy: null,
            updatedAt: '2026-03-02T10:00:00.000Z',
          },
          {
            step: 'users',
            position: 2,
            status: 'todo',
            options: null,
            counts: { inProcore: 120, inErp: 95, linked: 90, toCreate: 5, toReview: 30 },
            run: null,
            result: null,
            blockedBy: null,
            updatedAt: null,
          },
        ],
        next: { step: 'users', action: 'POST /v1/companies/5358233/onboarding/steps/users.' },
        complete: false,
      },
    ],
  },
)

export const OnboardingDecision = Type.Object(
  {
    id: Type.String({ description: 'A record on the side imported from (the ERP unless target is erp).' }),
    action: Type.Enum(['link', 'create', 'skip']),
    to: Type.Optional(Type.String({ description: 'With link: the id of its twin on the target side.' })),
    fields: Type.Optional(
      Type.Record(Type.String(), FieldValue, {
        description: 'With create: canonical field values to use instead of the record’s (e.g. an address).',
      }),
    ),
  },
  { additionalProperties: false },
)

export const OnboardingStepBody = Type.Object(
  {
    skip: Type.Optional(Type.Boolean({ description: 'Mark the step skipped and go on (nothing else is taken).' })),
    procoreCompanyId: Type.Optional(
      Type.String({
        pattern: '^\\d{1,19}$',
        description: 'company: one of the options’ companies (the company itself when left out).',
        examples: ['5358233'],
      }),
    ),
    costCodeListId: Type.Optional(
      Type.String({
        pattern: '^\\d{1,19}$',
        description: 'company: one of the chosen company’s cost code lists.',
        examples: ['562949953421399'],
      }),
    ),
    mode: Type.Optional(
      Type.Enum(['auto', 'manual'], {
        description:
          'users, projects, cost_codes. auto: link strong unambiguous matches, create the rest on the target side ' +
          '(users in Procore with the least access); manual: carry out `decisions`.',
      }),
    ),
    target: Type.Optional(
      Type.Enum(['procore', 'erp'], { description: 'The side records are created on: procore when left out.' }),
    ),
    decisions: Type.Optional(Type.Array(OnboardingDecision, { minItems: 1, maxItems: 10_000 })),
    directions: Type.Optional(
      Type.Object(
        {
          user: Type.Optional(Type.Enum([...Directions])),
          project: Type.Optional(Type.Enum([...Directions])),
          cost_code: Type.Optional(Type.Enum([...Directions])),
        },
        { additionalProperties: false, description: 'settings: the sync direction per type.' },
      ),
    ),
  },
  {
    additionalProperties: false,
    examples: [
      { procoreCompanyId: '5358233', costCodeListId: '562949953421399' },
      { mode: 'auto' },
      {
        mode: 'manual',
        decisions: [
          { id: 'E-1001', action: 'link', to: '562949953421312' },
          { id: 'E-1002', action: 'create', fields: { jobTitle: 'Foreman' } },
          { id: 'E-1003', action: 'skip' },
        ],
      },
      { directions: { user: 'erp_to_procore', project: 'both', cost_code: 'erp_to_procore' } },
      { skip: true },
    ],
  },
)

export const OnboardingStepAnswer = Type.Object({
  step: OnboardingStepView,
  run: Nullable(Run),
})

export const CompanyOptions = Type.Object(
  {
    companies: Type.Array(Type.Object({ id: Type.String(), name: Nullable(Type.String()) })),
    procoreCompanyId: Type.String({ description: 'The company whose lists follow.' }),
    costCodeLists: Type.Array(
      Type.Object({ id: Type.String(), name: Nullable(Type.String()), isErpList: Type.Boolean() }),
    ),
    chosen: Type.Object({ procoreCompanyId: Type.String(), costCodeListId: Nullable(Type.String()) }),
  },
  {
    examples: [
      {
        companies: [{ id: '5358233', name: 'Riverside Builders' }],
        procoreCompanyId: '5358233',
        costCodeLists: [{ id: '562949953421399', name: 'ERP cost codes', isErpList: true }],
        chosen: { procoreCompanyId: '5358233', costCodeListId: null },
      },
    ],
  },
)
