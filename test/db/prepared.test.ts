// Hot statements marked PREPARED are parsed and planned once per connection, then only bound and executed;
// every other statement is sent as before (unnamed, planned each time).
import { sql } from 'kysely'
import { pino } from 'pino'
import t from 'tap'
import { claimKey, complete } from '../../src/api/idempotency.js'
import { createApiKey } from '../../src/auth/api-keys.js'
import { createDb, executePrepared, PREPARED, preparedStatement } from '../../src/db/pool.js'
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
  await t.test('a preparedStatement is built once, runs prepared, and takes each call’s arguments', async (t) => {
    let builds = 0
    const sum = preparedStatement<{ a: number; b: number | null }, { total: number | null; label: string }>((p) => {
      builds++
      return sql`select ${p.a}::int + ${p.b}::int as total, ${'fixed'}::text as label`
    })
    t.same((await sum(db, { a: 2, b: 3 })).rows, [{ total: 5, label: 'fixed' }])
    t.same((await sum(db, { a: 40, b: 2 })).rows, [{ total: 42, label: 'fixed' }])
    t.same((await sum(db, { a: 1, b: null })).rows, [{ total: null, label: 'fixed' }], 'null is a value too')
    t.equal(builds, 1, 'the text was built and compiled at the first call only')
    const statements = (await preparedHere()).filter((s) => s.includes('as total'))
    t.equal(statements.length, 1, 'one prepared statement for every call')
    t.ok(statements[0]!.startsWith(PREPARED))
  })

  await t.test('a preparedStatement runs in the transaction it is given', async (t) => {
    const insert = preparedStatement<{ id: string; name: string }, { id: string }>(
      (p) => sql`insert into companies (id, name, erp_system) values (${p.id}, ${p.name}, 'generic') returning id`,
    )
    await t.rejects(
      db.transaction().execute(async (tx) => {
        t.same((await insert(tx, { id: '301', name: 'Gamma' })).rows, [{ id: '301' }])
        throw new Error('roll back')
      }),
      /roll back/,
    )
    t.same(await db.selectFrom('companies').select('id').where('id', '=', '301').execute(), [], 'rolled back with it')
    const outside = await insert(db, { id: '302', name: 'Delta' })
    t.same(outside.rows, [{ id: '302' }])
    t.equal(outside.numAffectedRows, 1n, 'a write reports its rows, as Kysely does')
    t.same(await db.selectFrom('companies').select('name').where('id', '=', '302').execute(), [{ name: 'Delta' }])
    t.equal(
      (await preparedHere()).filter((s) => s.includes('insert into companies')).length,
      1,
      'one prepared statement, in a transaction or not',
    )
  })

  await t.test('a statement whose text would depend on an argument’s value is refused when built', async (t) => {
    const bad = preparedStatement<{ id: string }, { n: number }>((p) => sql`select ${`job:${p.id}`}::text as n`)
    await t.rejects(bad(db, { id: '1' }), /only a placeholder/)
  })
})
