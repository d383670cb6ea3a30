import type { Dispatcher } from 'undici'
import type { Logger } from 'pino'
import type { Config } from './config.js'
import type { SecretBox } from './crypto/secrets.js'
import type { Db } from './db/database.js'

/**
 * App-wide resources, built once in buildApp and handed to domain code and background jobs.
 * Nothing here is a module-level singleton: tests build as many apps as they like.
 */
export interface AppContext {
  db: Db
  config: Config
  secrets: SecretBox
  log: Logger
  /** Outbound HTTP dispatcher override (tests); connectors build their own Agent otherwise. */
  dispatcher: Dispatcher | undefined
  /** App-scoped state of connectors (token single-flight, rate budgets), by component name. */
  components: Map<string, unknown>
}

/** One instance of a component per app, created on first use. */
export function component<T>(ctx: AppContext, name: string, create: () => T): T {
  let value = ctx.components.get(name) as T | undefined
  if (value === undefined) {
    value = create()
    ctx.components.set(name, value)
  }
  return value
}
