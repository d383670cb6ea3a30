import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { getOnboarding, companyOptions, performOnboardingStep } from '../../src/onboarding/onboarding.js'
import { CompanyIdString, CompanyParams, IdempotencyHeaders, problems } from '../../src/schemas/common.js'
import {
  CompanyOptions,
  Onboarding,
  OnboardingStepAnswer,
  OnboardingStepBody,
  OnboardingStepName,
} from '../../src/schemas/onboarding.js'
import { apiActor } from '../../src/sync/audit.js'

const tags = ['onboarding']
const StepParams = Type.Object({ companyId: CompanyIdString, step: OnboardingStepName })

const onboarding: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/companies/:companyId/onboarding',
    {
      config: { permission: 'admin' },
      schema: {
        tags,
        summary: 'Where the set-up stands',
        description:
          'The five steps in order — company, users, projects, cost_codes, settings — each todo, in_progress, done ' +
          'or skipped, with counts for the import steps (in Procore, in the ERP, linked, to create, to review), ' +
          'the last run and what blocks it; `next` says what to do. Admin keys only.',
        params: CompanyParams,
        response: { 200: Onboarding, ...problems(401, 403, 404) },
      },
    },
    async (request) => getOnboarding(app.ctx, request.params.companyId),
  )

  app.get(
    '/companies/:companyId/onboarding/steps/company/options',
    {
      config: { permission: 'admin' },
      schema: {
        tags,
        summary: 'Procore companies and cost code lists to choose from',
        description:
          'The Procore companies the connection can see (Procore GET /rest/v1.0/companies) and the standard cost ' +
          'code lists of one of them: `procoreCompanyId`, else the chosen one (the company itself at first).',
        params: CompanyParams,
        querystring: Type.Object(
          {
            procoreCompanyId: Type.Optional(
              Type.String({
                pattern: '^\\d{1,19}$',
                description: 'Whose lists to show (default: the chosen company).',
                examples: ['5358233'],
              }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: CompanyOptions, ...problems(400, 401, 403, 404, 409, 422, 502) },
      },
    },
    async (request) => companyOptions(app.ctx, request.params.companyId, request.query.procoreCompanyId),
  )

  app.post(
    '/companies/:companyId/onboarding/steps/:step',
    {
      config: { permission: 'admin', idempotency: 'required' },
      schema: {
        tags,
        summary: 'Perform a step',
        description:
          'company `{procoreCompanyId, costCodeListId}`: every later Procore call acts for that company and reads ' +
          'and writes standard cost codes in that list. users, projects, cost_codes `{mode: "auto"}` links strong ' +
          'unambiguous matches and creates the rest on the target side (Procore unless `target: "erp"`; users ' +
          'made in Procore get no permission template); `{mode: "manual", decisions}` links, creates (with field ' +
          'edits) or skips record by record. These start a run (202, `run`); creating projects in Procore without ' +
          'the address fields is refused (422) naming each project and field. settings `{directions}` sets the ' +
          'sync direction per type. `{skip: true}` skips a step. Steps go in order (409 names the step before); ' +
          'any step can be asked again: an import step cut short (a crash, a stopped run) resumes where it stopped.',
        params: StepParams,
        headers: IdempotencyHeaders,
        body: OnboardingStepBody,
        response: {
          200: OnboardingStepAnswer,
          202: OnboardingStepAnswer,
          ...problems(400, 401, 403, 404, 409, 412, 422, 502),
        },
      },
    },
    async (request, reply) => {
      const answer = await performOnboardingStep(
        app.ctx,
        request.params.companyId,
        request.params.step,
        request.body,
        apiActor(request.principal.keyId, request.id),
      )
      if (answer.run)
        reply.code(202).header('location', `/v1/companies/${request.params.companyId}/runs/${answer.run.id}`)
      return answer
    },
  )
}

export default onboarding
