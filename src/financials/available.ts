import { sql } from 'kysely'
import type { Db } from '../db/database.js'

/** Whether Procore is connected and the company's ERP agent serves these resources: a financial sync can run. */
export async function financialSyncAvailable(
  db: Db,
  companyId: string,
  resources: readonly string[],
): Promise<boolean> {
  const row = await db
    .selectFrom('companies as c')
    .leftJoin('procore_connections as p', 'p.company_id', 'c.id')
    .leftJoin('erp_connections as e', 'e.company_id', 'c.id')
    .select(['p.status', sql<string[] | null>`e.info->'capabilities'->'resources'`.as('resources')])
    .where('c.id', '=', companyId)
    .executeTakeFirst()
  return row?.status === 'connected' && resources.every((r) => (row.resources ?? []).includes(r))
}
