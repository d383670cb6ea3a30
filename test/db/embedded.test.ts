import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { pino } from 'pino'
import t from 'tap'
import { startEmbeddedPostgres } from '../../src/db/embedded.js'

const log = pino({ level: 'silent' })

async function query(url: string, text: string) {
  const client = new pg.Client(url)
  await client.connect()
  try {
    return (await client.query(text)).rows
  } finally {
    await client.end()
  }
}

t.test('embedded PostgreSQL: data survives restarts, and a server orphaned by SIGKILL is recovered', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'erp-sync-embedded-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))

  const first = await startEmbeddedPostgres(dir, log)
  await query(first.url, "create table kept (v text); insert into kept values ('across restarts')")
  const firstPort = new URL(first.url).port
  await first.stop()

  const second = await startEmbeddedPostgres(dir, log)
  t.same(await query(second.url, 'select v from kept'), [{ v: 'across restarts' }], 'rows survive a restart')
  t.not(new URL(second.url).port, '5432', 'never the standard port')
  t.ok(firstPort && new URL(second.url).port, 'a free port is chosen at each start')
  // A second service on the same folder while the first still runs is refused clearly…
  await t.rejects(startEmbeddedPostgres(dir, log), /Another running process .* is using the embedded PostgreSQL/)
  // …while the CLIs may attach to the running one.
  const attached = await startEmbeddedPostgres(dir, log, { attach: true })
  t.same(await query(attached.url, 'select v from kept'), [{ v: 'across restarts' }])
  await attached.stop() // detaching does not stop the server
  t.same(await query(second.url, 'select count(*)::int as n from kept'), [{ n: 1 }])
  await second.stop()

  // A process that starts the database and is then killed with SIGKILL leaves postgres running.
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      `
    import { startEmbeddedPostgres } from ${JSON.stringify(path.resolve('src/db/embedded.ts'))};
    import { pino } from 'pino';
    await startEmbeddedPostgres(${JSON.stringify(dir)}, pino({ level: 'silent' }));
    console.log('started');
    setInterval(() => {}, 1000);
  `,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  await new Promise<void>((resolve) =>
    child.stdout.on('data', (d: Buffer) => d.toString().includes('started') && resolve()),
  )
  child.kill('SIGKILL')
  await new Promise((resolve) => child.on('exit', resolve))
  const pidFile = path.join(dir, 'pg', 'postmaster.pid')
  t.ok(existsSync(pidFile), 'the orphaned postgres still holds the folder')
  const orphan = Number((await readFile(pidFile, 'utf8')).split('\n')[0])

  const third = await startEmbeddedPostgres(dir, log)
  t.same(
    await query(third.url, 'select v from kept'),
    [{ v: 'across restarts' }],
    'the next start recovers instead of failing',
  )
  t.throws(() => process.kill(orphan, 0), 'the orphan was stopped')
  await third.stop()
})
