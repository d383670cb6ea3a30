import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { expectedVersion } from '../../src/api/etag.js'
import { CompanyParams, IfMatchHeaders, problems } from '../../src/schemas/common.js'
import { SyncSettings, SyncSettingsInput } from '../../src/schemas/sync-settings.js'
import { apiActor } from '../../src/sync/audit.js'
import { getSettings, putSettings } from '../../src/sync/settings.js'

const tags = ['sync-settings']

const syncSettings: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/companies/:companyId/sync-settings',
    {
      schema: {
        tags,
        summary: 'Get sync settings',
        description:
          'Per record type: direction, the owner of every compared field, auto-link and auto-create. ' +
          'Defaults: both, every field manual, no auto-import.',
        params: CompanyParams,
        response: { 200: SyncSettings, ...problems(401, 404) },
      },
    },
    async (request, reply) => {
      const { settings, etag } = await getSettings(app.db, request.params.companyId)
      return reply.header('etag', etag).send({ types: settings })
    },
  )

  app.put(
    '/companies/:companyId/sync-settings',
    {
      config: { permission: 'admin' },
      schema: {
        tags,
        summary: 'Change sync settings',
        description:
          'Replaces the settings of each type given (types left out keep theirs). Contradictions are refused with ' +
          'the field to fix, e.g. an ERP-owned field under direction procore_to_erp. Every record of a changed type ' +
          'is evaluated again (owners propagate, auto-import runs). Send If-Match with the ETag of your GET.',
        params: CompanyParams,
        headers: IfMatchHeaders,
        body: SyncSettingsInput,
        response: { 200: SyncSettings, ...problems(400, 401, 403, 404, 412, 428) },
      },
    },
    async (request, reply) => {
      const body = request.body
      const { settings, etag } = await putSettings(
        app.db,
        request.params.companyId,
        expectedVersion(request),
        body.types,
        apiActor(request.principal.keyId, request.id),
      )
      return reply.header('etag', etag).send({ types: settings })
    },
  )
}

export default syncSettings
