import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ProcoreModes } from '../src/db/tables/procore.js'
import { completeAuthorization } from '../src/procore/connect.js'
import { CompanyIdString, problems } from '../src/schemas/common.js'

/**
 * Where Procore sends the person back after they authorize the app (outside /v1: the browser
 * carries no API key; the signed, single-use `state` is the credential).
 */
const oauth: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/oauth/procore/callback',
    {
      // The query carries a one-time code: keep it out of request logs.
      logLevel: 'warn',
      schema: {
        tags: ['procore'],
        summary: 'OAuth callback from Procore',
        description:
          'Procore redirects here with `code` and `state` after a person approves the app ' +
          '(see POST /v1/companies/{companyId}/procore/connect). The code is exchanged for tokens, which are stored ' +
          'encrypted. 400 when the state is invalid, expired or used, or the person denied access.',
        querystring: Type.Object({
          code: Type.Optional(Type.String({ maxLength: 512 })),
          state: Type.Optional(Type.String({ maxLength: 512 })),
          error: Type.Optional(Type.String({ maxLength: 200 })),
          error_description: Type.Optional(Type.String({ maxLength: 1000 })),
        }),
        response: {
          200: Type.Object({
            companyId: CompanyIdString,
            status: Type.String({ examples: ['connected'] }),
            mode: Type.Enum([...ProcoreModes]),
            connectedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
          }),
          ...problems(400, 409, 422, 503),
        },
      },
    },
    async (request) => completeAuthorization(app.ctx, request.query),
  )
}

export default oauth
