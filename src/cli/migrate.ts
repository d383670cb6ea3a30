import { parseArgs } from 'node:util'
import { migrateDown, migrateTo, migrateToLatest, migrator } from '../db/migrate.js'
import { installQueueSchema } from '../jobs/queue.js'
import { fail, runCli, withDatabase } from './database.js'

const usage = `usage:
  npm run migrate               apply every pending migration
  npm run migrate -- status     list migrations and whether each is applied
  npm run migrate -- down       revert the most recent migration
  npm run migrate -- to <name>  migrate up or down to exactly <name> (or "none": revert all)`

await runCli(async () => {
  let positionals: string[]
  try {
    positionals = parseArgs({ allowPositionals: true }).positionals
  } catch (error) {
    fail(`${(error as Error).message.split('\n')[0]}; see \`npm run migrate -- help\``)
  }
  const [command = 'latest', name] = positionals
  if (command === 'help') return console.log(usage)
  if (!['latest', 'down', 'to', 'status'].includes(command))
    fail(`unknown command "${command}": use status, down or to <name> (\`npm run migrate -- help\`)`)
  if (command === 'to' && !name) fail('`to` needs a migration name from `npm run migrate -- status`, or "none"')

  await withDatabase(async (db, url) => {
    switch (command) {
      case 'latest':
        report(await migrateToLatest(db))
        await installQueueSchema(url)
        break
      case 'down':
        report(await migrateDown(db))
        break
      case 'to':
        report(await migrateTo(db, name!))
        break
      case 'status':
        for (const m of await migrator(db).getMigrations())
          console.log(`${m.executedAt ? 'applied' : 'pending'}\t${m.name}`)
        break
    }
  })
})

function report(lines: string[]) {
  console.log(lines.length ? lines.join('\n') : 'nothing to do')
}
