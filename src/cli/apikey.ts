import { parseArgs } from 'node:util'
import { createApiKey, listApiKeys, revokeApiKey } from '../auth/api-keys.js'
import { Roles, type Role } from '../db/tables/api-keys.js'
import { fail, withDatabase } from './database.js'

const usage = `usage:
  npm run apikey -- create --role <${Roles.join('|')}> [--company <id>]... [--name <text>]
  npm run apikey -- list
  npm run apikey -- revoke <key id>`

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { role: { type: 'string' }, company: { type: 'string', multiple: true }, name: { type: 'string' } },
})
const [command, ...rest] = positionals

switch (command) {
  case 'create': {
    const role = values.role as Role | undefined
    if (!role || !Roles.includes(role)) fail(`--role must be one of ${Roles.join(', ')}\n${usage}`)
    const companyIds = values.company?.length ? values.company : null
    if (companyIds?.some((c) => !/^[1-9][0-9]{0,18}$/.test(c))) fail('--company takes a Procore company id (digits)')
    const { key, apiKey } = await withDatabase((db) =>
      createApiKey(db, { name: values.name ?? `${role} key (cli)`, role, companyIds }),
    )
    console.error(
      `created ${apiKey.role} key ${apiKey.id} for ` +
        `${apiKey.companyIds ? `companies ${apiKey.companyIds.join(', ')}` : 'all companies'}; it is shown once:`,
    )
    console.log(key)
    break
  }
  case 'list': {
    await withDatabase(async (db) => {
      let cursor: string | undefined
      do {
        const page = await listApiKeys(db, { limit: 200, cursor })
        for (const k of page.items) {
          console.log(
            [
              k.id,
              k.prefix,
              k.role,
              k.companyIds?.join(',') ?? '*',
              k.revokedAt ? `revoked ${k.revokedAt}` : 'active',
              k.name,
            ].join('\t'),
          )
        }
        cursor = page.next ?? undefined
      } while (cursor)
    })
    break
  }
  case 'revoke': {
    const id = rest[0]
    if (!id || !/^[0-9a-f-]{36}$/.test(id)) fail(`revoke takes the key id (a UUID, see list)\n${usage}`)
    const key = await withDatabase((db) => revokeApiKey(db, id))
    console.log(`revoked ${key.id} at ${key.revokedAt}`)
    break
  }
  default:
    fail(usage)
}
