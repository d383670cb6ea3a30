import { Type, type Static, type TSchema } from 'typebox'
import { comparedFields, RecordTypes, Registry, type RecordType } from '../sync/registry.js'
import { Directions, Owners } from '../sync/settings.js'

export const Direction = Type.Enum([...Directions], {
  description:
    'Which way automatic changes flow: procore_to_erp, erp_to_procore, both, or off ' +
    '(nothing is written automatically; people can still apply).',
})
export const Owner = Type.Enum([...Owners], {
  description:
    "procore or erp: that side's value is propagated automatically; " +
    'manual: a difference opens a discrepancy for a person.',
})

// Built from the entity registry: a new record type or field appears here without code.
const owners = (type: RecordType) =>
  Type.Object(Object.fromEntries(comparedFields(type).map((f) => [f, Owner])), {
    additionalProperties: false,
    description: `Owner per compared field of ${type}.`,
  })
const optionalOwners = (type: RecordType) => {
  // Typed as a record of owners: a field left out is absent, never undefined.
  const fields: Record<string, typeof Owner> = Object.fromEntries(
    comparedFields(type).map((f) => [f, Type.Optional(Owner)]),
  )
  return Type.Object(fields, { additionalProperties: false, description: `Owner per compared field of ${type}.` })
}

// Only types whose registry entry is archivable (ERP jobs) take it; for the others it must be false.
const AutoArchive = (type: RecordType) =>
  Type.Boolean({
    description: Registry[type].archivable
      ? `Archive inactive ${Registry[type].label} of the ` +
        `${Registry[type].archivable.side === 'erp' ? 'ERP' : 'Procore'} ` +
        'automatically when a refresh or notification brings them: they leave the ready-to-import list.'
      : `Not available for ${Registry[type].label} (always false).`,
  })

/** How one record type syncs in one company. */
export const TypeSettings = (type: RecordType) =>
  Type.Object({
    direction: Direction,
    fieldOwners: owners(type),
    autoLink: Type.Boolean({ description: 'Link strong, unambiguous matches automatically.' }),
    autoCreate: Type.Boolean({
      description:
        'Create records missing on the side the direction points to, ' + 'automatically (with the duplicate guard).',
    }),
    autoArchive: Type.Optional(AutoArchive(type)),
  })
export type TypeSettings = Static<ReturnType<typeof TypeSettings>>

export const TypeSettingsInput = (type: RecordType) =>
  Type.Object(
    {
      direction: Direction,
      fieldOwners: Type.Optional(optionalOwners(type)),
      autoLink: Type.Optional(Type.Boolean({ default: false })),
      autoCreate: Type.Optional(Type.Boolean({ default: false })),
      autoArchive: Type.Optional(AutoArchive(type)),
    },
    {
      additionalProperties: false,
      description: `Replaces the settings of ${type}; fields left out of fieldOwners are manual.`,
    },
  )
export type TypeSettingsInput = Static<ReturnType<typeof TypeSettingsInput>>

export const SyncSettings = Type.Object({
  types: Type.Object(Object.fromEntries(RecordTypes.map((t) => [t, TypeSettings(t)])) as Record<string, TSchema>),
})
export const SyncSettingsInput = Type.Object(
  {
    types: Type.Object(
      Object.fromEntries(RecordTypes.map((t) => [t, Type.Optional(TypeSettingsInput(t))])) as Record<string, TSchema>,
      { additionalProperties: false, minProperties: 1 },
    ),
  },
  { additionalProperties: false },
)
