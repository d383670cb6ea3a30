import { sql, type Selectable } from 'kysely'
import { transaction, type Db } from '../db/database.js'
import type { CompaniesTable } from '../db/tables/companies.js'
import { conflict, notFound, preconditionFailed } from '../errors.js'
import { keyset, type Page, type PageRequest } from '../api/pagination.js'
import { etagOf } from '../api/etag.js'
import type { Company, CompanyPatch, NewCompany } from '../schemas/companies.js'

type Row = Pick<Selectable<CompaniesTable>, (typeof columns)[number]> & { procore_status?: string | null }

/**
 * A company id (Procore's company id) that fits the int8 column; a longer one names no company and must not reach
 * PostgreSQL.
 */
export const isCompanyId = (value: string): boolean =>
  /^\d{1,19}$/.test(value) && BigInt(value) <= 9_223_372_036_854_775_807n

function toCompany(row: Row): Company {
  return {
    id: row.id,
    name: row.name,
    erpSystem: row.erp_system,
    procoreConnection: (row.procore_status ?? 'not_connected') as Company['procoreConnection'],
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  }
}
export type { Company }
export type CompanyWithEtag = { company: Company; etag: string }

const columns = ['id', 'name', 'erp_system', 'version', 'created_at', 'updated_at'] as const
/** The Procore connection state shown on the company, so callers see `needs_reauth` where they look first. */
const procoreStatus = sql<
  string | null
>`(select p.status from procore_connections p where p.company_id = companies.id)`.as('procore_status')

export async function createCompany(db: Db, input: NewCompany): Promise<CompanyWithEtag> {
  const row = await db
    .insertInto('companies')
    .values({ id: input.id, name: input.name, erp_system: input.erpSystem })
    .onConflict((oc) => oc.column('id').doNothing())
    .returning(columns)
    .executeTakeFirst()
  if (!row)
    throw conflict(
      'company_exists',
      `Company ${input.id} already exists. GET /v1/companies/${input.id} to read it, or PATCH it to change it.`,
    )
  return { company: toCompany(row), etag: etagOf(row.version) }
}

export async function getCompany(db: Db, id: string): Promise<CompanyWithEtag> {
  const row = await db
    .selectFrom('companies')
    .select(columns)
    .select(procoreStatus)
    .where('id', '=', id)
    .executeTakeFirst()
  if (!row) throw notFound('company', id)
  return { company: toCompany(row), etag: etagOf(row.version) }
}

const companiesKeyset = keyset('companies', 'asc', [{ column: 'id', type: 'bigint' }])

export async function listCompanies(
  db: Db,
  scope: ReadonlySet<string> | null,
  page: PageRequest,
): Promise<Page<Company>> {
  let query = db.selectFrom('companies').select(columns).select(procoreStatus)
  if (scope !== null) {
    if (scope.size === 0) return { items: [], next: null }
    query = query.where('id', 'in', [...scope])
  }
  return companiesKeyset.page(query, page, toCompany)
}

/** Applies the patch only if the caller saw the current version (If-Match). */
export async function updateCompany(
  db: Db,
  id: string,
  expectedVersion: number,
  patch: CompanyPatch,
): Promise<CompanyWithEtag> {
  return transaction(db, async (tx) => {
    const current = await tx.selectFrom('companies').select(columns).where('id', '=', id).forUpdate().executeTakeFirst()
    if (!current) throw notFound('company', id)
    if (current.version !== expectedVersion) throw preconditionFailed(etagOf(current.version))
    const row = await tx
      .updateTable('companies')
      .set({
        ...(patch.name !== undefined && { name: patch.name }),
        ...(patch.erpSystem !== undefined && { erp_system: patch.erpSystem }),
        version: sql`version + 1`,
        updated_at: new Date(),
      })
      .where('id', '=', id)
      .returning(columns)
      .returning(procoreStatus)
      .executeTakeFirstOrThrow()
    return { company: toCompany(row), etag: etagOf(row.version) }
  })
}

/**
 * Deletes a company only while nothing refers to it: every table that holds company data
 * references companies with ON DELETE RESTRICT, so the database itself refuses.
 */
export async function deleteCompany(db: Db, id: string, expectedVersion: number): Promise<void> {
  await transaction(db, async (tx) => {
    const current = await tx
      .selectFrom('companies')
      .select('version')
      .where('id', '=', id)
      .forUpdate()
      .executeTakeFirst()
    if (!current) throw notFound('company', id)
    if (current.version !== expectedVersion) throw preconditionFailed(etagOf(current.version))
    await tx
      .deleteFrom('companies')
      .where('id', '=', id)
      .execute()
      .catch((error: unknown) => {
        // foreign_key_violation up to PostgreSQL 17; 18 reports ON DELETE RESTRICT as restrict_violation.
        const code = (error as { code?: string }).code
        if (code === '23503' || code === '23001') {
          throw conflict(
            'company_has_data',
            `Company ${id} still has data (API keys, links, records or history) and is kept. ` +
              'Revoke or remove what refers to it first.',
          )
        }
        throw error
      })
  })
}
