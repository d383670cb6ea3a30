import { sql } from 'kysely'
import { etagOf } from '../api/etag.js'
import { transaction, type Db } from '../db/database.js'
import { badRequest, preconditionFailed, type FieldError } from '../errors.js'
import type { TypeSettings, TypeSettingsInput } from '../schemas/sync-settings.js'
import { audit, type Actor } from './audit.js'
import { comparedFields, RecordTypes, Registry, type RecordType } from './registry.js'
import { scheduleEvaluation } from './snapshots.js'

export const Directions = ['procore_to_erp', 'erp_to_procore', 'both', 'off'] as const
export type Direction = (typeof Directions)[number]
export const Owners = ['procore', 'erp', 'manual'] as const
export type Owner = (typeof Owners)[number]

export type { TypeSettings, TypeSettingsInput }
export type SyncSettings = Record<RecordType, TypeSettings>

export function defaultTypeSettings(type: RecordType): TypeSettings {
  return {
    direction: 'both',
    fieldOwners: Object.fromEntries(comparedFields(type).map((f) => [f, 'manual'])),
    autoLink: false,
    autoCreate: false,
  }
}

/** Stored settings over the defaults: fields added to the registry later start as `manual`. */
function complete(stored: Record<string, unknown> | undefined): SyncSettings {
  const out = {} as SyncSettings
  for (const type of RecordTypes) {
    const d = defaultTypeSettings(type)
    const s = (stored?.[type] ?? {}) as Partial<TypeSettings>
    const owners = { ...d.fieldOwners }
    for (const [f, o] of Object.entries(s.fieldOwners ?? {}))
      if (f in owners && (Owners as readonly string[]).includes(o)) owners[f] = o
    out[type] = {
      direction: (Directions as readonly string[]).includes(s.direction ?? '') ? s.direction! : d.direction,
      fieldOwners: owners,
      autoLink: s.autoLink === true,
      autoCreate: s.autoCreate === true,
      ...(Registry[type].archivable ? { autoArchive: s.autoArchive === true } : {}),
    }
  }
  return out
}

export async function getSettings(db: Db, companyId: string): Promise<{ settings: SyncSettings; etag: string }> {
  const row = await db
    .selectFrom('sync_settings')
    .select(['settings', 'version'])
    .where('company_id', '=', companyId)
    .executeTakeFirst()
  return { settings: complete(row?.settings), etag: etagOf(row?.version ?? 0) }
}

/** Every rule that makes a type's settings inconsistent, each with the field to fix. */
export function validateTypeSettings(type: RecordType, input: TypeSettingsInput, pointer: string): FieldError[] {
  const errors: FieldError[] = []
  const fields = comparedFields(type)
  for (const [field, owner] of Object.entries(input.fieldOwners ?? {})) {
    if (!fields.includes(field)) {
      errors.push({
        pointer: `${pointer}/fieldOwners/${field}`,
        message: `${field} is not compared for ${type}; fields with an owner: ${fields.join(', ')}`,
      })
    } else if (owner === 'procore' && input.direction === 'erp_to_procore') {
      errors.push({
        pointer: `${pointer}/fieldOwners/${field}`,
        message:
          'owner procore needs direction procore_to_erp or both (it is erp_to_procore): ' +
          'change the direction, or make the field erp or manual',
      })
    } else if (owner === 'erp' && input.direction === 'procore_to_erp') {
      errors.push({
        pointer: `${pointer}/fieldOwners/${field}`,
        message:
          'owner erp needs direction erp_to_procore or both (it is procore_to_erp): ' +
          'change the direction, or make the field procore or manual',
      })
    }
  }
  if (input.autoArchive === true && !Registry[type].archivable) {
    errors.push({
      pointer: `${pointer}/autoArchive`,
      message: `${Registry[type].label} cannot be archived; autoArchive is for ${RecordTypes.filter(
        (t) => Registry[t].archivable,
      )
        .map((t) => Registry[t].label)
        .join(', ')}`,
    })
  }
  if (input.autoCreate === true && input.direction === 'off') {
    errors.push({
      pointer: `${pointer}/autoCreate`,
      message: 'autoCreate needs a direction other than off: it creates records on the side the direction points to',
    })
  }
  return errors
}

/**
 * Replaces the settings of the types given (others keep theirs) if the caller saw the current
 * version. Audited per type changed; every record of a changed type is re-evaluated, so new
 * owners and auto-import apply to what already exists.
 */
export async function putSettings(
  db: Db,
  companyId: string,
  expectedVersion: number,
  input: Partial<Record<RecordType, TypeSettingsInput>>,
  actor: Actor,
) {
  const errors = RecordTypes.flatMap((type) =>
    input[type] ? validateTypeSettings(type, input[type], `/body/types/${type}`) : [],
  )
  if (errors.length > 0)
    throw badRequest(
      'invalid_sync_settings',
      `These settings contradict each other: ${errors.map((e) => `${e.pointer}: ${e.message}`).join('; ')}.`,
      errors,
    )

  return transaction(db, async (tx) => {
    // Serialise writers per company: the row may not exist yet, so lock the company row.
    await tx.selectFrom('companies').select('id').where('id', '=', companyId).forUpdate().executeTakeFirstOrThrow()
    const row = await tx
      .selectFrom('sync_settings')
      .select(['settings', 'version'])
      .where('company_id', '=', companyId)
      .executeTakeFirst()
    const version = row?.version ?? 0
    if (version !== expectedVersion) throw preconditionFailed(etagOf(version))
    const before = complete(row?.settings)
    const after = complete(row?.settings)
    for (const type of RecordTypes) {
      const given = input[type]
      if (!given) continue
      const d = defaultTypeSettings(type)
      after[type] = {
        direction: given.direction,
        fieldOwners: { ...d.fieldOwners, ...given.fieldOwners },
        autoLink: given.autoLink ?? false,
        autoCreate: given.autoCreate ?? false,
        ...(Registry[type].archivable ? { autoArchive: given.autoArchive ?? false } : {}),
      }
    }
    const changed = RecordTypes.filter((t) => JSON.stringify(before[t]) !== JSON.stringify(after[t]))
    const saved = await tx
      .insertInto('sync_settings')
      .values({ company_id: companyId, settings: JSON.stringify(after), updated_by: actor.id })
      .onConflict((oc) =>
        oc.column('company_id').doUpdateSet({
          settings: JSON.stringify(after),
          updated_by: actor.id,
          updated_at: new Date(),
          version: sql<number>`sync_settings.version + 1`,
        }),
      )
      .returning('version')
      .executeTakeFirstOrThrow()
    await audit(
      tx,
      companyId,
      actor,
      changed.map((type) => ({ action: 'settings' as const, type, before: before[type], after: after[type] })),
    )
    for (const type of changed) {
      await sql`
        insert into sync_dirty (company_id, type, side, external_id)
        select company_id, type, side, external_id from record_snapshots
        where company_id = ${companyId} and type = ${type} and deleted_at is null
      `.execute(tx)
      await scheduleEvaluation(tx, companyId, type)
    }
    return { settings: after, etag: etagOf(saved.version) }
  })
}
