import { Type, type Static } from 'typebox'
import { ErpSystems } from '../db/tables/companies.js'
import { CompanyIdString } from './common.js'

export const ProcoreConnectionStates = ['not_connected', 'connected', 'needs_reauth', 'disconnected'] as const

export const ErpSystem = Type.Enum([...ErpSystems], { description: 'The accounting ERP this company runs.' })
export const CompanyName = Type.String({
  minLength: 1,
  maxLength: 200,
  description: 'Display name, usually as in Procore.',
})

export const Company = Type.Object({
  id: CompanyIdString,
  name: Type.String(),
  erpSystem: ErpSystem,
  procoreConnection: Type.Enum([...ProcoreConnectionStates], {
    description:
      'needs_reauth: Procore refused our credentials; connect again (POST …/procore/connect). ' +
      'Details at GET …/procore.',
  }),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
})
export type Company = Static<typeof Company>

export const NewCompany = Type.Object(
  { id: CompanyIdString, name: CompanyName, erpSystem: ErpSystem },
  {
    additionalProperties: false,
  },
)
export type NewCompany = Static<typeof NewCompany>

export const CompanyPatch = Type.Object(
  { name: Type.Optional(CompanyName), erpSystem: Type.Optional(ErpSystem) },
  {
    additionalProperties: false,
    minProperties: 1,
  },
)
export type CompanyPatch = Static<typeof CompanyPatch>
