import { pageOf } from '../../src/api/pagination.js'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { createApiKey, getApiKey, listApiKeys, revokeApiKey } from '../../src/auth/api-keys.js'
import { forbidden } from '../../src/errors.js'
import { ApiKey, CreatedApiKey, NewApiKey } from '../../src/schemas/api-keys.js'
import { IdempotencyHeaders, Page, PageQuery, problems } from '../../src/schemas/common.js'

const KeyParams = Type.Object({ keyId: Type.String({ format: 'uuid' }) })
const tags = ['api-keys']

/** Managing keys is for admins whose own key reaches every company: a scoped admin cannot mint wider keys. */
const apiKeys: FastifyPluginAsyncTypebox = async (app) => {
  app.addHook('preHandler', async (request) => {
    if (request.principal.companyIds !== null)
      throw forbidden('Managing API keys needs an admin key scoped to all companies.')
  })

  app.post(
    '/api-keys',
    {
      config: { permission: 'admin' },
      schema: {
        tags,
        summary: 'Create an API key',
        description:
          'Creates a key with a role and a company scope. The key itself is in the response once ' +
          'and never again: store it now.',
        headers: IdempotencyHeaders,
        body: NewApiKey,
        response: { 201: CreatedApiKey, ...problems(400, 401, 403, 409, 422) },
      },
    },
    async (request, reply) => {
      const created = await createApiKey(app.db, request.body)
      return reply.code(201).header('location', `/v1/api-keys/${created.apiKey.id}`).send(created)
    },
  )

  app.get(
    '/api-keys',
    {
      config: { permission: 'admin' },
      schema: {
        tags,
        summary: 'List API keys',
        description: 'All keys, revoked ones included, without their secrets.',
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: { 200: Page(ApiKey), ...problems(400, 401, 403) },
      },
    },
    async (request) => listApiKeys(app.db, pageOf(request.query)),
  )

  app.get(
    '/api-keys/:keyId',
    {
      config: { permission: 'admin' },
      schema: {
        tags,
        summary: 'Get an API key',
        description: 'One key, without its secret.',
        params: KeyParams,
        response: { 200: ApiKey, ...problems(400, 401, 403, 404) },
      },
    },
    async (request) => getApiKey(app.db, request.params.keyId),
  )

  app.delete(
    '/api-keys/:keyId',
    {
      config: { permission: 'admin' },
      schema: {
        tags,
        summary: 'Revoke an API key',
        description:
          'Revokes the key at once; requests with it get 401 from now on. Revoking twice is harmless. ' +
          'The record is kept for history.',
        params: KeyParams,
        response: { 200: ApiKey, ...problems(400, 401, 403, 404) },
      },
    },
    async (request) => revokeApiKey(app.db, request.params.keyId),
  )
}

export default apiKeys
