import { Type, type Static } from 'typebox'
import { Roles } from '../db/tables/api-keys.js'
import { CompanyIdString } from './common.js'

export const Role = Type.Enum([...Roles], {
  description:
    'admin: everything; approver: accept/reject exports and read; operator: sync actions and read; ' + 'viewer: read.',
})
export const CompanyScope = Type.Union(
  [Type.Array(CompanyIdString, { maxItems: 1000, uniqueItems: true }), Type.Null()],
  { description: 'Companies the key may see; null for every company.' },
)

export const ApiKey = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  prefix: Type.String({ description: 'The public start of the key, to recognise it.' }),
  role: Role,
  companyIds: CompanyScope,
  createdAt: Type.String({ format: 'date-time' }),
  lastUsedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  revokedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
})
export type ApiKey = Static<typeof ApiKey>

export const NewApiKey = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    role: Role,
    companyIds: CompanyScope,
  },
  { additionalProperties: false },
)
export type NewApiKey = Static<typeof NewApiKey>

/** What creating a key answers: the secret key, shown only then, and the key's record. */
export const CreatedApiKey = Type.Object({
  key: Type.String({ description: 'The secret key; shown only now.' }),
  apiKey: ApiKey,
})
export type CreatedApiKey = Static<typeof CreatedApiKey>
