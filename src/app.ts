import { randomUUID } from 'node:crypto'
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifySchemaCompiler,
  type FastifyServerOptions,
} from 'fastify'
import type { DestinationStream, Logger } from 'pino'
import type pg from 'pg'
import type { Dispatcher } from 'undici'
import type { Config } from './config.js'
import { createLogger, RequestLogger } from './logger.js'
import type { AppContext } from './context.js'
import { SecretBox, parseKeyRing } from './crypto/secrets.js'
import { createDb } from './db/pool.js'
import { startJobRunner } from './jobs/runner.js'
import { tasks } from './tasks.js'
import auth from './plugins/auth.js'
import context from './plugins/context.js'
import errors, { clientErrorHandler, frameworkErrors, refusals } from './plugins/errors.js'
import { parseJsonBody, requestValidatorCompiler } from './api/json.js'
import idempotency from './plugins/idempotency.js'
import metrics from './plugins/metrics.js'
import { registerCircuitMetrics, upstreamBreakers } from './http/breaker.js'
import pressure from './plugins/pressure.js'
import rateLimit from './plugins/rate-limit.js'
import openapi from './plugins/swagger.js'
import operations from '../routes/operations.js'
import apiKeyRoutes from '../routes/v1/api-keys.js'
import companyRoutes from '../routes/v1/companies.js'
import webhookEventRoutes from '../routes/v1/webhook-events.js'
import erpRoutes from '../routes/v1/erp.js'
import runRoutes from '../routes/v1/runs.js'
import erpWebhookRoutes from '../routes/webhooks/erp.js'
import { closeErpConnector } from './erp/connector.js'
import procoreRoutes from '../routes/v1/procore.js'
import procoreWebhookRoutes from '../routes/webhooks/procore.js'
import oauthRoutes from '../routes/oauth.js'
import { closeProcoreHttp } from './procore/http.js'
import recordRoutes from '../routes/v1/records.js'
import linkRoutes from '../routes/v1/links.js'
import discrepancyRoutes from '../routes/v1/discrepancies.js'
import syncSettingsRoutes from '../routes/v1/sync-settings.js'
import syncScheduleRoutes from '../routes/v1/sync-schedule.js'
import auditRoutes from '../routes/v1/audit.js'
import exportRoutes from '../routes/v1/exports.js'
import subscriptionRoutes from '../routes/v1/subscriptions.js'
import onboardingRoutes from '../routes/v1/onboarding.js'
import timeEntryRoutes from '../routes/v1/time-entries.js'

// The logger is made before the app's modules load (src/server.ts logs from its first line); tests take it from here.
export { createLogger, loggerOptions, redactPaths } from './logger.js'

const REQUEST_ID = /^[\w.:-]{1,128}$/

type Validate = ((data: unknown) => unknown) & { errors?: unknown }

/**
 * Each route's validators are compiled when a request first needs them, not all before the server listens: compiling
 * every route's schemas with Ajv was most of the start-up time. The answers are the same; a schema Ajv refuses
 * fails its route's first request instead of the start (every route is exercised by the tests).
 */
export function compileOnFirstUse(compile: FastifySchemaCompiler<unknown>): FastifySchemaCompiler<unknown> {
  return (route) => {
    let compiled: Validate | undefined
    const validate: Validate = (data) => {
      compiled ??= compile(route) as Validate
      const result = compiled(data)
      validate.errors = compiled.errors
      return result
    }
    return validate as ReturnType<FastifySchemaCompiler<unknown>>
  }
}

type SerializerFactory = NonNullable<
  NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>['buildSerializer']
>

/** Response serializers, likewise compiled by fast-json-stringify when a route first answers with that status. */
function serializersOnFirstUse(): SerializerFactory {
  // Fastify's own response serializer builder (fast-json-stringify): the copy Fastify itself loads.
  const build = SerializerSelector()
  return (externalSchemas, options) => {
    const compile = build(externalSchemas, options)
    return (route) => {
      let compiled: ((data: unknown) => string) | undefined
      return (data: unknown) => (compiled ??= compile(route))(data)
    }
  }
}

/** One line per request, written when it is answered, instead of a block at its start and another at its end. */
class OneLinePerRequest extends LogController {
  override incomingRequest() {}
  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply) {
    // Below the level, nothing to compose (webhook deliveries run at thousands a second).
    if (!(request.log as Logger).isLevelEnabled(error ? 'error' : 'info')) return
    // The path only: query strings can carry one-time codes (the OAuth callback's).
    const path = request.url.split('?')[0]
    const ms = Math.round(reply.elapsedTime)
    const code = refusals.get(request)
    const line = { method: request.method, path, statusCode: reply.statusCode, ms, ...(code ? { code } : {}) }
    const message = `${request.method} ${path} ${reply.statusCode}${code ? ` ${code}` : ''} ${ms} ms`
    if (error) request.log.error({ ...line, err: error }, message)
    else request.log.info(line, message)
  }
}

/**
 * The one constructor: the server and every test build the app here, so validation, limits,
 * logging and error rendering are identical everywhere. Plugins first, then routes, in order.
 */
export interface BuildOptions {
  /** Where logs go (tests capture them); default stdout. */
  logStream?: DestinationStream
  /** The process's logger (the server's, so every line looks the same); default one from `createLogger`. */
  logger?: Logger
  /** Outbound HTTP dispatcher for connectors (tests may inject undici's MockAgent). */
  dispatcher?: Dispatcher
  /** Filled with the time (ms) each step of the build took; the server logs them when it is ready. */
  phases?: Record<string, number>
}

export async function buildApp(config: Config, options: BuildOptions = {}): Promise<FastifyInstance> {
  if (!config.databaseUrl)
    throw new Error('buildApp needs config.databaseUrl (server.ts starts the embedded PostgreSQL first)')
  if (!config.encryptionKeys)
    throw new Error('buildApp needs config.encryptionKeys (server.ts reads or creates the key file first)')
  const loggerInstance: FastifyBaseLogger = options.logger ?? createLogger(config, options.logStream)
  const phases = options.phases ?? {}
  let lapStart = performance.now()
  const lap = (phase: string) => {
    const now = performance.now()
    phases[phase] = Math.round(now - lapStart)
    lapStart = now
  }

  const app = Fastify({
    loggerInstance,
    genReqId: (req) => {
      const given = req.headers['x-request-id']
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID()
    },
    bodyLimit: config.http.bodyLimit,
    requestTimeout: config.http.requestTimeoutMs,
    connectionTimeout: config.http.requestTimeoutMs,
    keepAliveTimeout: 5000,
    return503OnClosing: true,
    logController: new OneLinePerRequest(),
    // A route's own log level (none here so far) takes pino's child at once; otherwise it is made on first use.
    childLoggerFactory: (logger, bindings, options) =>
      options.level === undefined
        ? (new RequestLogger(logger as Logger, bindings) as unknown as FastifyBaseLogger)
        : logger.child(bindings, options),
    // Router refusals (a malformed escape, an over-long path segment) and broken HTTP are problems too.
    frameworkErrors,
    clientErrorHandler,
    schemaController: { compilersFactory: { buildSerializer: serializersOnFirstUse() } },
  }).withTypeProvider<TypeBoxTypeProvider>()
  // Its Ajv instances too are made when a request first needs a validator.
  let validators: FastifySchemaCompiler<unknown> | undefined
  app.setValidatorCompiler(compileOnFirstUse((route) => (validators ??= requestValidatorCompiler())(route)))

  // Hooks every request runs are callback-style: an async hook costs a promise and a microtask turn per request.
  app.addHook('onRequest', (request, reply, done) => {
    void reply.header('x-request-id', request.id)
    done()
  })
  // JSON only: any other body type is answered 415 rather than parsed as a string.
  app.removeContentTypeParser('text/plain')
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(body as string))
    } catch (error) {
      done(error as Error, undefined)
    }
  })

  const { db, pool } = createDb({ url: config.databaseUrl, ...config.db }, app.log)
  const ctx: AppContext = {
    db,
    config,
    secrets: new SecretBox(parseKeyRing(config.encryptionKeys)),
    log: loggerInstance as AppContext['log'],
    dispatcher: options.dispatcher,
    components: new Map(),
  }
  // The job runner starts (its schema check, LISTEN, first heartbeat: database round trips) while the routes are
  // registered; it is awaited before the app is ready, so a started app has its workers as before.
  const starting = config.worker.enabled ? startJobRunner(ctx, pool, tasks) : undefined
  const runnerStarted = starting?.then(
    (runner) => ({ runner }),
    (error: unknown) => ({ error }),
  )
  try {
    await registerAll(app, ctx, pool, config)
  } catch (error) {
    const started = await runnerStarted
    if (started && 'runner' in started) await started.runner.stop()
    throw error
  }
  lap('plugins')
  // Before the runner's hook, so it runs after it (onClose hooks run last-registered first): jobs stop using ERP
  // sockets first.
  app.addHook('onClose', () => closeErpConnector(ctx))
  app.addHook('onClose', () => closeProcoreHttp(ctx))

  if (runnerStarted) {
    const started = await runnerStarted
    if ('error' in started) throw started.error
    // Registered after the pool's own onClose hook, so it runs first: jobs finish before the pool closes.
    app.addHook('onClose', () => started.runner.stop())
  }
  lap('worker')

  await app.ready()
  lap('ready')
  return app
}

/**
 * Lets the I/O callbacks that are due run, between plugins: the job runner's start-up queries (begun before the
 * routes are registered) then make progress while the routes are registered, instead of after.
 */
const ioTurn = () => new Promise<void>((resolve) => setImmediate(resolve))

/** Plugins first, then routes, in order. */
async function registerAll(app: FastifyInstance, ctx: AppContext, pool: pg.Pool, config: Config) {
  await app.register(context, { ctx })
  await app.register(errors)
  await app.register(metrics)
  registerCircuitMetrics(app.metrics, upstreamBreakers(ctx))
  await app.register(pressure, { pool, ...config.pressure })
  await ioTurn()
  await app.register(openapi)
  await ioTurn()

  await app.register(operations)
  // Outside /v1: authenticated by its signature over the raw body, not by an API key.
  await app.register(erpWebhookRoutes)
  // Outside /v1: Procore's Authorization header (webhooks) and the signed OAuth state (callback) are the credentials.
  await app.register(procoreWebhookRoutes)
  await app.register(oauthRoutes)
  await ioTurn()
  await app.register(
    async (v1) => {
      await v1.register(auth)
      await v1.register(rateLimit, { perMinute: config.rateLimitPerMinute })
      await v1.register(idempotency, { ttlHours: config.idempotencyTtlHours })
      const routes = [
        companyRoutes,
        apiKeyRoutes,
        webhookEventRoutes,
        erpRoutes,
        runRoutes,
        procoreRoutes,
        recordRoutes,
        linkRoutes,
        discrepancyRoutes,
        syncSettingsRoutes,
        syncScheduleRoutes,
        auditRoutes,
        exportRoutes,
        subscriptionRoutes,
        onboardingRoutes,
        timeEntryRoutes,
      ]
      for (const plugin of routes) {
        await v1.register(plugin)
        await ioTurn()
      }
    },
    { prefix: '/v1' },
  )
}
