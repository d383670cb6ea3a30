// The one transaction seam: `transaction(db, fn)` commits or rolls back, work registered with
// `afterCommit` runs only after a commit, and a function that must join its caller's transaction
// (typed `Tx`) cannot be handed the plain database.
import { pino } from 'pino'
import t from 'tap'
import { afterCommit, transaction, type Db, type Tx } from '../../src/db/database.js'
import { createDb } from '../../src/db/pool.js'
import { testDatabase } from '../helpers/db.js'

t.test('transaction', async (t) => {
  const url = await testDatabase(t)
  const options = { url, poolMax: 3, connectTimeoutMs: 5000, statementTimeoutMs: 15_000 }
  const { db } = createDb(options, pino({ level: 'silent' }))
  t.teardown(() => db.destroy())
  const insert = (tx: Tx, id: string) =>
    tx
      .insertInto('companies')
      .values({ id, name: `Company ${id}`, erp_system: 'generic' })
      .execute()
  // Read on another connection: true only once the row is committed.
  const committed = async (id: string) =>
    (await db.selectFrom('companies').select('id').where('id', '=', id).executeTakeFirst()) !== undefined

  await t.test('after-commit work runs once the commit is visible, in order, before it returns', async (t) => {
    const seen: string[] = []
    const result = await transaction(db, async (tx) => {
      await insert(tx, '101')
      afterCommit(tx, async () => {
        seen.push(`first: ${await committed('101')}`)
      })
      afterCommit(tx, () => {
        seen.push('second')
      })
      seen.push(`inside: ${await committed('101')}`)
      return 'done'
    })
    t.equal(result, 'done')
    t.same(seen, ['inside: false', 'first: true', 'second'])
  })

  await t.test('a rollback never runs the after-commit work', async (t) => {
    let ran = false
    const failure = new Error('refused')
    await t.rejects(
      transaction(db, async (tx) => {
        await insert(tx, '102')
        afterCommit(tx, () => {
          ran = true
        })
        throw failure
      }),
      failure,
    )
    t.equal(ran, false)
    t.equal(await committed('102'), false, 'rolled back')
  })

  await t.test('a failing follow-up is reported; the commit and the other follow-ups stand', async (t) => {
    let later = false
    await t.rejects(
      transaction(db, async (tx) => {
        await insert(tx, '103')
        afterCommit(tx, () => {
          throw new Error('Procore unavailable')
        })
        afterCommit(tx, () => {
          later = true
        })
      }),
      { message: 'Procore unavailable' },
    )
    t.equal(await committed('103'), true)
    t.equal(later, true)
  })

  await t.test('no nesting, and no after-commit outside an open transaction()', async (t) => {
    await t.rejects(
      transaction(db, (tx) => transaction(tx, async () => 1)),
      { message: /takes a Tx/ },
    )
    let leaked: Tx | undefined
    await transaction(db, async (tx) => {
      leaked = tx
    })
    t.throws(() => afterCommit(leaked!, () => {}), { message: /still open/ })
    await db.transaction().execute(async (tx) => {
      t.throws(() => afterCommit(tx, () => {}), 'a transaction opened around transaction() has no after-commit hook')
    })
  })

  await t.test("a function that must join its caller's transaction takes a Tx: a Db does not compile", async (t) => {
    const lock = async (tx: Tx) => tx.selectFrom('companies').select('id').orderBy('id').forUpdate().execute()
    const plain: Db = db
    // @ts-expect-error a Db is not a Tx: row locks outside a transaction would end at once
    const wrong = () => lock(plain)
    t.type(wrong, 'function')
    await transaction(db, async (tx) => {
      t.same(await lock(tx), [{ id: '101' }, { id: '103' }], 'inside a transaction it runs')
    })
  })
})
