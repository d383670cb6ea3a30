import { Type, type Static, type StaticDecode } from 'typebox'
import { Value } from 'typebox/value'

/**
 * Every setting the service reads, as the environment spells it. This schema is the single source for validation,
 * defaults, `.env.example` and, decoded by ConfigSchema, the `Config` type. URLs have format `url` (what `new URL`
 * accepts) rather than `uri`: TypeBox's `uri` is one very large regular expression, some 30 ms of every start.
 */
export const EnvSchema = Type.Object({
  PORT: Type.Integer({
    minimum: 0,
    maximum: 65535,
    default: 3000,
    description: 'TCP port the HTTP server listens on.',
  }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1', description: 'Interface to bind; 0.0.0.0 in containers.' }),
  PUBLIC_URL: Type.Optional(
    Type.String({
      format: 'url',
      description:
        'External base URL of this service (webhook destinations, OAuth redirects). Default: http://localhost:PORT.',
    }),
  ),
  LOG_LEVEL: Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
    default: 'info',
    description: 'pino log level.',
  }),
  DATABASE_URL: Type.Optional(
    Type.String({
      pattern: '^postgres(ql)?://',
      description: 'PostgreSQL connection URL. Unset: an embedded PostgreSQL is started under DATA_DIR.',
    }),
  ),
  DATA_DIR: Type.String({
    minLength: 1,
    default: './.data',
    description: 'Where the embedded PostgreSQL and generated local secrets live.',
  }),
  MIGRATE_ON_START: Type.Boolean({ default: true, description: 'Apply pending migrations when the service starts.' }),
  DB_POOL_MAX: Type.Integer({
    minimum: 1,
    maximum: 200,
    default: 10,
    description: 'Maximum PostgreSQL connections in the pool.',
  }),
  DB_CONNECT_TIMEOUT_MS: Type.Integer({
    minimum: 100,
    default: 5000,
    description: 'How long to wait for a pooled connection.',
  }),
  DB_STATEMENT_TIMEOUT_MS: Type.Integer({
    minimum: 100,
    default: 15000,
    description: 'statement_timeout for every session.',
  }),
  BODY_LIMIT_BYTES: Type.Integer({ minimum: 1024, default: 1048576, description: 'Largest accepted request body.' }),
  REQUEST_TIMEOUT_MS: Type.Integer({
    minimum: 1000,
    default: 30000,
    description: 'Time limit for receiving a whole request.',
  }),
  IDEMPOTENCY_TTL_HOURS: Type.Integer({
    minimum: 24,
    default: 24,
    description: 'How long Idempotency-Key results are kept (at least 24 h).',
  }),
  RATE_LIMIT_PER_MINUTE: Type.Integer({
    minimum: 0,
    default: 1200,
    description: 'Requests per API key per minute on /v1, per process (0: no limit). Over it: 429 + Retry-After.',
  }),
  PRESSURE_MAX_POOL_WAITING: Type.Integer({
    minimum: 0,
    default: 50,
    description: 'Requests queued for a database connection beyond which new requests get 503 at once (0: off).',
  }),
  PRESSURE_MAX_EVENT_LOOP_DELAY_MS: Type.Integer({
    minimum: 0,
    default: 1000,
    description: 'Event-loop delay (p99, ms) beyond which new requests get 503 at once (0: off).',
  }),
  UPSTREAM_CIRCUIT_FAILURES: Type.Integer({
    minimum: 1,
    default: 5,
    description:
      "Consecutive failures (no answer, timeout, 5xx) of one company's Procore or ERP agent that open its circuit.",
  }),
  UPSTREAM_CIRCUIT_OPEN_MS: Type.Integer({
    minimum: 1000,
    default: 30_000,
    description: 'How long an open circuit fails calls fast before one probe call is let through (ms).',
  }),
  BOOTSTRAP_ADMIN_KEY: Type.Boolean({
    default: true,
    description: 'On first start with no API keys, create an admin key and print it once.',
  }),
  ENCRYPTION_KEYS: Type.Optional(
    Type.String({
      pattern: '^[A-Za-z0-9_-]{1,32}:[A-Za-z0-9+/]{43}=(,[A-Za-z0-9_-]{1,32}:[A-Za-z0-9+/]{43}=)*$',
      description:
        'AES-256 keys for secrets at rest: id:base64(32 bytes)[,id:key…], current first. Unset: a key ' +
        'is generated in DATA_DIR/encryption.key.',
    }),
  ),
  WORKER_ENABLED: Type.Boolean({
    default: true,
    description: 'Run background jobs (webhook processing, syncs) in this process.',
  }),
  WORKER_CONCURRENCY: Type.Integer({
    minimum: 1,
    maximum: 64,
    default: 4,
    description: 'Background jobs run at once in this process.',
  }),
  WORKER_HEARTBEAT_MS: Type.Integer({
    minimum: 200,
    default: 10000,
    description: 'Worker liveness beat; jobs of a worker silent for 3 beats are re-run elsewhere.',
  }),
  WORKER_POLL_INTERVAL_MS: Type.Integer({
    minimum: 100,
    maximum: 60000,
    default: 500,
    description:
      'How often an idle worker looks for jobs that became due (coalesced webhook processing, ' +
      'retries); new jobs wake workers at once.',
  }),
  INBOX_COALESCE_MS: Type.Integer({
    minimum: 0,
    maximum: 600000,
    default: 500,
    description:
      'Coalescing of a burst: events of a record that arrive while it is being re-read because of a webhook or ' +
      'notification ride on one more read this long after that read started (a storm costs one read per record ' +
      'per window); other changes are read at once.',
  }),
  PROCORE_API_URL: Type.String({
    format: 'url',
    default: 'https://api.procore.com',
    description: 'Procore REST base URL (sandbox: https://sandbox.procore.com).',
  }),
  PROCORE_LOGIN_URL: Type.String({
    format: 'url',
    default: 'https://login.procore.com',
    description: 'Procore OAuth base URL (sandbox: https://login-sandbox.procore.com).',
  }),
  PROCORE_CLIENT_ID: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        "This app's Procore OAuth client id (authorization-code connections; also marks our own changes in webhooks).",
    }),
  ),
  PROCORE_CLIENT_SECRET: Type.Optional(
    Type.String({
      minLength: 1,
      description: "This app's Procore OAuth client secret (authorization-code connections).",
    }),
  ),
  PROCORE_WEBHOOK_NAMESPACE: Type.String({
    pattern: '^[a-z0-9-]{1,64}$',
    default: 'erp-sync',
    description: 'Namespace of the webhook hooks this service installs in Procore.',
  }),
  WEBHOOK_SECRET_GRACE_HOURS: Type.Integer({
    minimum: 0,
    default: 24,
    description: 'After a webhook secret rotation, the previous secret stays valid this long.',
  }),
  ERP_ALLOW_HTTP: Type.Boolean({
    default: false,
    description:
      'Accept plain-http ERP agent URLs on hosts other than loopback (tokens then travel unencrypted; ' +
      'only for private test networks).',
  }),
})
export type Env = Static<typeof EnvSchema>

const withoutTrailingSlash = (url: string) => url.replace(/\/+$/, '')

/**
 * The environment decoded into the shape the code reads. `Config` is its decoded type: each
 * setting is declared once, in EnvSchema, and placed once, here.
 */
export const ConfigSchema = Type.Decode(EnvSchema, (e) => ({
  port: e.PORT,
  host: e.HOST,
  publicUrl: withoutTrailingSlash(e.PUBLIC_URL ?? `http://localhost:${e.PORT}`),
  logLevel: e.LOG_LEVEL,
  /** Secret (it may carry a password). Undefined means: start the embedded PostgreSQL under dataDir. */
  databaseUrl: e.DATABASE_URL,
  dataDir: e.DATA_DIR,
  migrateOnStart: e.MIGRATE_ON_START,
  db: {
    poolMax: e.DB_POOL_MAX,
    connectTimeoutMs: e.DB_CONNECT_TIMEOUT_MS,
    statementTimeoutMs: e.DB_STATEMENT_TIMEOUT_MS,
  },
  http: { bodyLimit: e.BODY_LIMIT_BYTES, requestTimeoutMs: e.REQUEST_TIMEOUT_MS },
  idempotencyTtlHours: e.IDEMPOTENCY_TTL_HOURS,
  rateLimitPerMinute: e.RATE_LIMIT_PER_MINUTE,
  pressure: { maxPoolWaiting: e.PRESSURE_MAX_POOL_WAITING, maxEventLoopDelayMs: e.PRESSURE_MAX_EVENT_LOOP_DELAY_MS },
  circuit: { failureThreshold: e.UPSTREAM_CIRCUIT_FAILURES, openMs: e.UPSTREAM_CIRCUIT_OPEN_MS },
  bootstrapAdminKey: e.BOOTSTRAP_ADMIN_KEY,
  /** Secret. Undefined means: server.ts reads or creates DATA_DIR/encryption.key. */
  encryptionKeys: e.ENCRYPTION_KEYS,
  worker: {
    enabled: e.WORKER_ENABLED,
    concurrency: e.WORKER_CONCURRENCY,
    heartbeatMs: e.WORKER_HEARTBEAT_MS,
    pollIntervalMs: e.WORKER_POLL_INTERVAL_MS,
  },
  inbox: { coalesceMs: e.INBOX_COALESCE_MS },
  procore: {
    apiUrl: withoutTrailingSlash(e.PROCORE_API_URL),
    loginUrl: withoutTrailingSlash(e.PROCORE_LOGIN_URL),
    clientId: e.PROCORE_CLIENT_ID,
    /** Secret. */
    clientSecret: e.PROCORE_CLIENT_SECRET,
    webhookNamespace: e.PROCORE_WEBHOOK_NAMESPACE,
    webhookSecretGraceHours: e.WEBHOOK_SECRET_GRACE_HOURS,
  },
  erp: {
    /** Plain-http agent URLs allowed beyond loopback. */
    allowHttp: e.ERP_ALLOW_HTTP,
  },
}))
export type Config = StaticDecode<typeof ConfigSchema>

const REDACTED = '[redacted]'

function withoutPassword(databaseUrl: string): string {
  try {
    const url = new URL(databaseUrl)
    if (url.password) url.password = 'redacted'
    return url.toString()
  } catch {
    return REDACTED
  }
}

/**
 * The config as it may be logged: the database password, the encryption keys (their ids stay,
 * to tell which keys are loaded) and the Procore client secret replaced. Log only this.
 */
export function redactedConfig(config: Config) {
  return {
    ...config,
    databaseUrl: config.databaseUrl === undefined ? undefined : withoutPassword(config.databaseUrl),
    encryptionKeys: config.encryptionKeys
      ?.split(',')
      .map((key) => `${key.split(':')[0]}:${REDACTED}`)
      .join(','),
    procore: { ...config.procore, clientSecret: config.procore.clientSecret === undefined ? undefined : REDACTED },
  }
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
  return Value.Decode(ConfigSchema, converted)
}
