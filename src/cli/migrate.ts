import { parseArgs } from 'node:util'
import { migrateDown, migrateTo, migrateToLatest, migrator } from '../db/migrate.js'
import { installQueueSchema } from '../jobs/queue.js'
import { fail, withDatabase } from './database.js'

const usage = `usage:
  npm run migrate               apply every pending migration
  npm run migrate -- status     list migrations and whether each is applied
  npm run migrate -- down       revert the most recent migration
  npm run migrate -- to <name>  migrate up or down to exactly <name> (or "none": revert all)`

const { positionals } = parseArgs({ allowPositionals: true })
const [command = 'latest', name] = positionals

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
      if (!name) fail(usage)
      report(await migrateTo(db, name))
      break
    case 'status':
      for (const m of await migrator(db).getMigrations())
        console.log(`${m.executedAt ? 'applied' : 'pending'}\t${m.name}`)
      break
    default:
      fail(usage)
  }
})

function report(lines: string[]) {
  console.log(lines.length ? lines.join('\n') : 'nothing to do')
}
