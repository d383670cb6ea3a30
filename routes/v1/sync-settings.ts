import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type, type TSchema } from 'typebox'
import { expectedVersion } from '../../src/api/etag.js'
import { CompanyParams, IfMatchHeaders, problems } from '../../src/api/schemas.js'
import { apiActor } from '../../src/sync/audit.js'
import { comparedFields, RecordTypes, type RecordType } from '../../src/sync/registry.js'
import { Directions, getSettings, Owners, putSettings } from '../../src/sync/settings.js'

const Direction = Type.Enum([...Directions], {
  description: 'Which way automatic changes flow: procore_to_erp, erp_to_procore, both, or off (nothing is written automatically; people can still apply).',
})
const Owner = Type.Enum([...Owners], { description: 'procore or erp: that side\'s value is propagated automatically; manual: a difference opens a discrepancy for a person.' })

// Built from the entity registry: a new record type or field appears here without code.
const owners = (type: RecordType, optional: boolean) => Type.Object(
  Object.fromEntries(comparedFields(type).map((f) => [f, optional ? Type.Optional(Owner) : Owner])),
  { additionalProperties: false, description: `Owner per compared field of ${type}.` },
)
const TypeSettings = (type: RecordType) => Type.Object({
  direction: Direction,
  fieldOwners: owners(type, false),
  autoLink: Type.Boolean({ description: 'Link strong, unambiguous matches automatically.' }),
  autoCreate: Type.Boolean({ description: 'Create records missing on the side the direction points to, automatically (with the duplicate guard).' }),
})
const TypeSettingsInput = (type: RecordType) => Type.Object({
  direction: Direction,
  fieldOwners: Type.Optional(owners(type, true)),
  autoLink: Type.Optional(Type.Boolean({ default: false })),
  autoCreate: Type.Optional(Type.Boolean({ default: false })),
}, { additionalProperties: false, description: `Replaces the settings of ${type}; fields left out of fieldOwners are manual.` })

const Settings = Type.Object({ types: Type.Object(Object.fromEntries(RecordTypes.map((t) => [t, TypeSettings(t)])) as Record<string, TSchema>) })
const SettingsInput = Type.Object({
  types: Type.Object(Object.fromEntries(RecordTypes.map((t) => [t, Type.Optional(TypeSettingsInput(t))])) as Record<string, TSchema>, { additionalProperties: false, minProperties: 1 }),
}, { additionalProperties: false })
const tags = ['sync-settings']

const syncSettings: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/companies/:companyId/sync-settings', {
    schema: {
      tags, summary: 'Get sync settings', description: 'Per record type: direction, the owner of every compared field, auto-link and auto-create. Defaults: both, every field manual, no auto-import.',
      params: CompanyParams, response: { 200: Settings, ...problems(401, 404) },
    },
  }, async (request, reply) => {
    const { settings, etag } = await getSettings(app.db, request.params.companyId)
    return reply.header('etag', etag).send({ types: settings })
  })

  app.put('/companies/:companyId/sync-settings', {
    config: { permission: 'admin' },
    schema: {
      tags, summary: 'Change sync settings',
      description: 'Replaces the settings of each type given (types left out keep theirs). Contradictions are refused with the field to fix, e.g. an ERP-owned field ' +
        'under direction procore_to_erp. Every record of a changed type is evaluated again (owners propagate, auto-import runs). Send If-Match with the ETag of your GET.',
      params: CompanyParams, headers: IfMatchHeaders, body: SettingsInput,
      response: { 200: Settings, ...problems(400, 401, 403, 404, 412, 428) },
    },
  }, async (request, reply) => {
    const body = request.body
    const { settings, etag } = await putSettings(app.db, request.params.companyId, expectedVersion(request), body.types, apiActor(request.principal.keyId, request.id))
    return reply.header('etag', etag).send({ types: settings })
  })
}

export default syncSettings
