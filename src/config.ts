import { Type, type Static } from 'typebox'
import { Value } from 'typebox/value'

/**
 * Every setting the service reads, as the environment spells it. This schema is the single
 * source for validation, defaults, `.env.example` and the `Config` type below.
 */
export const EnvSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000, description: 'TCP port the HTTP server listens on.' }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1', description: 'Interface to bind; 0.0.0.0 in containers.' }),
  PUBLIC_URL: Type.Optional(Type.String({ format: 'uri', description: 'External base URL of this service (webhook destinations, OAuth redirects). Default: http://localhost:PORT.' })),
  LOG_LEVEL: Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { default: 'info', description: 'pino log level.' }),
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://', description: 'PostgreSQL connection URL. Unset: an embedded PostgreSQL is started under DATA_DIR.' })),
  DATA_DIR: Type.String({ minLength: 1, default: './.data', description: 'Where the embedded PostgreSQL and generated local secrets live.' }),
  MIGRATE_ON_START: Type.Boolean({ default: true, description: 'Apply pending migrations when the service starts.' }),
  DB_POOL_MAX: Type.Integer({ minimum: 1, maximum: 200, default: 10, description: 'Maximum PostgreSQL connections in the pool.' }),
  DB_CONNECT_TIMEOUT_MS: Type.Integer({ minimum: 100, default: 5000, description: 'How long to wait for a pooled connection.' }),
  DB_STATEMENT_TIMEOUT_MS: Type.Integer({ minimum: 100, default: 15000, description: 'statement_timeout for every session.' }),
  BODY_LIMIT_BYTES: Type.Integer({ minimum: 1024, default: 1048576, description: 'Largest accepted request body.' }),
  REQUEST_TIMEOUT_MS: Type.Integer({ minimum: 1000, default: 30000, description: 'Time limit for receiving a whole request.' }),
  IDEMPOTENCY_TTL_HOURS: Type.Integer({ minimum: 24, default: 24, description: 'How long Idempotency-Key results are kept (at least 24 h).' }),
  BOOTSTRAP_ADMIN_KEY: Type.Boolean({ default: true, description: 'On first start with no API keys, create an admin key and print it once.' }),
})
export type Env = Static<typeof EnvSchema>

export interface Config {
  port: number
  host: string
  publicUrl: string
  logLevel: Env['LOG_LEVEL']
  /** Undefined means: start the embedded PostgreSQL under dataDir. */
  databaseUrl: string | undefined
  dataDir: string
  migrateOnStart: boolean
  db: { poolMax: number; connectTimeoutMs: number; statementTimeoutMs: number }
  http: { bodyLimit: number; requestTimeoutMs: number }
  idempotencyTtlHours: number
  bootstrapAdminKey: boolean
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

/**
 * Parses the environment into a typed config. Throws ConfigError whose message is one line
 * per bad variable, naming it and what is expected. Empty strings count as unset.
 */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const raw: Record<string, unknown> = {}
  for (const key of Object.keys(EnvSchema.properties)) {
    const value = env[key]
    if (value !== undefined && value !== '') raw[key] = value
  }
  const withDefaults = Value.Default(EnvSchema, raw)
  const converted = Value.Convert(EnvSchema, withDefaults)
  if (!Value.Check(EnvSchema, converted)) {
    const lines = Value.Errors(EnvSchema, converted).map((error) => {
      const name = error.instancePath.replace(/^\//, '') || 'environment'
      const schema = (EnvSchema.properties as Record<string, { description?: string } | undefined>)[name]
      const given = raw[name] === undefined ? '' : ` (got ${JSON.stringify(raw[name])})`
      const allowed = error.keyword === 'enum' ? ` (one of ${error.params.allowedValues.join(', ')})` : ''
      return `${name}: ${error.message}${allowed}${given}${schema?.description ? ` — ${schema.description}` : ''}`
    })
    throw new ConfigError(`Invalid configuration: ${[...new Set(lines)].join('; ')}`)
  }
  const e = converted
  return {
    port: e.PORT,
    host: e.HOST,
    publicUrl: (e.PUBLIC_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, ''),
    logLevel: e.LOG_LEVEL,
    databaseUrl: e.DATABASE_URL,
    dataDir: e.DATA_DIR,
    migrateOnStart: e.MIGRATE_ON_START,
    db: { poolMax: e.DB_POOL_MAX, connectTimeoutMs: e.DB_CONNECT_TIMEOUT_MS, statementTimeoutMs: e.DB_STATEMENT_TIMEOUT_MS },
    http: { bodyLimit: e.BODY_LIMIT_BYTES, requestTimeoutMs: e.REQUEST_TIMEOUT_MS },
    idempotencyTtlHours: e.IDEMPOTENCY_TTL_HOURS,
    bootstrapAdminKey: e.BOOTSTRAP_ADMIN_KEY,
  }
}
