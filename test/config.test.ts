import { spawnSync } from 'node:child_process'
import t from 'tap'
import { ConfigError, EnvSchema, loadConfig, redactedConfig } from '../src/config.js'

t.test('defaults: a fresh machine needs no environment', async (t) => {
  const config = loadConfig({})
  t.match(config, {
    port: 3000,
    host: '127.0.0.1',
    databaseUrl: undefined,
    dataDir: './.data',
    migrateOnStart: true,
    publicUrl: 'http://localhost:3000',
  })
  t.ok(config.idempotencyTtlHours >= 24)
})

t.test('values are converted and validated; each bad one is named with what is expected', async (t) => {
  t.match(
    loadConfig({
      PORT: '8080',
      MIGRATE_ON_START: 'false',
      DATABASE_URL: 'postgres://u@h/db',
      PUBLIC_URL: 'https://sync.example.com/',
    }),
    { port: 8080, migrateOnStart: false, databaseUrl: 'postgres://u@h/db', publicUrl: 'https://sync.example.com' },
  )
  t.equal(loadConfig({ PORT: '' }).port, 3000, 'empty means unset')
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'abc' }, /PORT: must be integer \(got "abc"\)/],
    [{ PORT: '70000' }, /PORT: .*65535/],
    [{ DATABASE_URL: 'mysql://x' }, /DATABASE_URL: must match pattern/],
    [{ PUBLIC_URL: 'sync.example.com' }, /PUBLIC_URL: must match format/],
    [{ PROCORE_API_URL: 'https://api procore com' }, /PROCORE_API_URL: must match format/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL: .*one of fatal, error, warn, info, debug, trace, silent/],
    [{ IDEMPOTENCY_TTL_HOURS: '1' }, /IDEMPOTENCY_TTL_HOURS/],
    [{ MIGRATE_ON_START: 'perhaps' }, /MIGRATE_ON_START: must be boolean/],
  ]
  for (const [env, message] of cases) {
    t.throws(() => loadConfig(env), ConfigError)
    try {
      loadConfig(env)
    } catch (error) {
      t.match((error as Error).message, message)
    }
  }
})

t.test('.env.example documents every variable', async (t) => {
  const { readFile } = await import('node:fs/promises')
  const example = await readFile(new URL('../.env.example', import.meta.url), 'utf8')
  for (const name of Object.keys(EnvSchema.properties))
    t.match(example, new RegExp(`^#? ?${name}=`, 'm'), `${name} is in .env.example`)
})

t.test('the server refuses to start on bad configuration, with one clear line', async (t) => {
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: { ...process.env, PORT: 'not-a-port', DATABASE_URL: '' },
    encoding: 'utf8',
    timeout: 30_000,
  })
  t.equal(result.status, 78, 'exit code EX_CONFIG')
  const lines = result.stderr
    .trim()
    .split('\n')
    .filter((l) => !l.includes('ExperimentalWarning'))
  t.equal(lines.length, 1, 'one line')
  t.match(lines[0], /^Invalid configuration: PORT: must be integer \(got "not-a-port"\)/)
})

t.test('secrets stay out of the config as it is logged', async (t) => {
  const key = Buffer.alloc(32, 5).toString('base64')
  const config = loadConfig({
    DATABASE_URL: 'postgres://app:hunter2@db.internal:5432/sync',
    ENCRYPTION_KEYS: `k2:${key}`,
    PROCORE_CLIENT_ID: 'client',
    PROCORE_CLIENT_SECRET: 'sssh',
  })
  t.equal(config.procore.clientSecret, 'sssh', 'the code still reads the secrets')
  const logged = JSON.stringify(redactedConfig(config))
  for (const secret of ['hunter2', key, 'sssh']) t.notOk(logged.includes(secret), 'no secret in the logged config')
  t.match(redactedConfig(config), {
    databaseUrl: 'postgres://app:redacted@db.internal:5432/sync',
    encryptionKeys: 'k2:[redacted]',
    procore: { clientId: 'client' },
  })
  t.equal(redactedConfig(loadConfig({})).databaseUrl, undefined, 'nothing set, nothing to hide')
})
