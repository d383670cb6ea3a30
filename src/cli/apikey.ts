import { parseArgs } from 'node:util'
import { createApiKey, listApiKeys, revokeApiKey } from '../auth/api-keys.js'
import { Roles, type Role } from '../db/tables/api-keys.js'
import { fail, runCli, withDatabase } from './database.js'

const usage = `usage:
  npm run apikey -- create --role <${Roles.join('|')}> [--company <id>]... [--name <text>]
  npm run apikey -- list
  npm run apikey -- revoke <key id>`

await runCli(async () => {
  let parsed
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: { role: { type: 'string' }, company: { type: 'string', multiple: true }, name: { type: 'string' } },
    })
  } catch (error) {
    fail(`${(error as Error).message.split('\n')[0]}; see \`npm run apikey -- help\``)
  }
  const { values, positionals } = parsed
  const [command, ...rest] = positionals

  switch (command) {
    case 'create': {
      const role = values.role as Role | undefined
      if (!role || !Roles.includes(role))
        fail(`--role must be one of ${Roles.join(', ')}, e.g. \`npm run apikey -- create --role admin\``)
      const companyIds = values.company?.length ? values.company : null
      if (companyIds?.some((c) => !/^[1-9][0-9]{0,18}$/.test(c)))
        fail('--company takes a Procore company id (digits), e.g. --company 5358233')
      const { key, apiKey } = await withDatabase(
        (db) => createApiKey(db, { name: values.name ?? `${role} key (cli)`, role, companyIds }),
        { schema: true },
      )
      console.error(
        `created ${apiKey.role} key ${apiKey.id} for ` +
          `${apiKey.companyIds ? `companies ${apiKey.companyIds.join(', ')}` : 'all companies'}; it is shown once:`,
      )
      console.log(key)
      break
    }
    case 'list': {
      await withDatabase(
        async (db) => {
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
        },
        { schema: true },
      )
      break
    }
    case 'revoke': {
      const id = rest[0]
      if (!id || !/^[0-9a-f-]{36}$/.test(id)) fail('revoke takes the key id, a UUID from `npm run apikey -- list`')
      const key = await withDatabase((db) => revokeApiKey(db, id), { schema: true })
      console.log(`revoked ${key.id} at ${key.revokedAt}`)
      break
    }
    case undefined:
    case 'help':
      console.log(usage)
      break
    default:
      fail(`unknown command "${command}": use create, list or revoke (\`npm run apikey -- help\`)`)
  }
})
