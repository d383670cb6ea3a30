// Hot statements marked PREPARED are parsed and planned once per connection, then only bound and executed;
// every other statement is sent as before (unnamed, planned each time).
import { sql } from 'kysely'
import { pino } from 'pino'
import t from 'tap'
import { claimKey, complete } from '../../src/api/idempotency.js'
import { createApiKey } from '../../src/auth/api-keys.js'
import { createDb, executePrepared, PREPARED } from '../../src/db/pool.js'
import { testDatabase } from '../helpers/db.js'

t.test('prepared statements', async (t) => {
  const url = await testDatabase(t)
  // One connection: every statement below runs on it, so its prepared statements are the ones listed.
  const { db } = createDb(
    { url, poolMax: 1, connectTimeoutMs: 5000, statementTimeoutMs: 15_000 },
    pino({ level: 'silent' }),
  )
  t.teardown(() => db.destroy())
  const preparedHere = async () =>
    (
      await sql<{ statement: string }>`select statement from pg_prepared_statements order by statement`.execute(db)
    ).rows.map((r) => r.statement)

  await t.test('a marked statement is prepared once and answers with each call’s values', async (t) => {
    const double = (n: number) => sql<{ twice: number }>`${sql.raw(PREPARED)}select ${n}::int * 2 as twice`.execute(db)
    t.same((await double(2)).rows, [{ twice: 4 }])
    t.same((await double(21)).rows, [{ twice: 42 }])
    const statements = await preparedHere()
    t.equal(statements.filter((s) => s.includes('* 2 as twice')).length, 1, 'one prepared statement for both calls')
    t.ok(
      statements.every((s) => s.startsWith(PREPARED)),
      'nothing unmarked was prepared',
    )
  })

  await t.test('a query builder runs prepared through executePrepared, with the same rows as unprepared', async (t) => {
    await db
      .insertInto('companies')
      .values([
        { id: '201', name: 'Alpha', erp_system: 'generic' },
        { id: '202', name: 'Beta', erp_system: 'vista' },
      ])
      .execute()
    const query = (id: string) => db.selectFrom('companies').select(['id', 'name']).where('id', '=', id)
    t.same((await executePrepared(db, query('202'))).rows, await query('202').execute())
    t.same((await executePrepared(db, query('201'))).rows, [{ id: '201', name: 'Alpha' }])
    t.equal((await preparedHere()).filter((s) => s.includes('from "companies"')).length, 1)
  })

  await t.test('two marked statements with different texts are two prepared statements', async (t) => {
    await sql`${sql.raw(PREPARED)}select 1 as one`.execute(db)
    await sql`${sql.raw(PREPARED)}select 2 as two`.execute(db)
    const statements = await preparedHere()
    t.ok(statements.some((s) => s.endsWith('select 1 as one')))
    t.ok(statements.some((s) => s.endsWith('select 2 as two')))
  })

  await t.test("an Idempotency-Key's claim and its completion, on every keyed write, are prepared", async (t) => {
    const { id } = (await createApiKey(db, { name: 'writer', role: 'operator', companyIds: null })).apiKey
    const request = { method: 'POST', route: '/v1/things', fingerprint: 'f1' }
    for (const key of ['k1', 'k2']) {
      t.same(await claimKey(db, { apiKeyId: id, key }, request, 24), { kind: 'claimed' })
      await complete(db, { apiKeyId: id, key }, { status: 201, headers: {}, body: '{}' })
    }
    t.match(await claimKey(db, { apiKeyId: id, key: 'k1' }, request, 24), { kind: 'replay', status: 201 })
    const statements = await preparedHere()
    t.equal(statements.filter((s) => s.includes('insert into "idempotency_keys"')).length, 1, 'the claim')
    t.equal(statements.filter((s) => s.includes('update "idempotency_keys"')).length, 1, 'the completion')
  })

  await t.test('a failing marked statement fails its caller only; the connection goes on', async (t) => {
    await t.rejects(sql`${sql.raw(PREPARED)}select 1 / ${0}::int as boom`.execute(db), /division by zero/)
    t.same((await sql<{ ok: number }>`${sql.raw(PREPARED)}select ${1}::int as ok`.execute(db)).rows, [{ ok: 1 }])
  })
})
