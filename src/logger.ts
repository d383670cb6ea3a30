import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino'
import type { Config } from './config.js'

/** Paths pino must never write, wherever they appear in a log object. */
export const redactPaths = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'headers.authorization',
  '*.access_token',
  '*.refresh_token',
  '*.client_secret',
  '*.password',
  '*.secret',
  '*.token',
  '*.key',
  '*.destination_headers',
  '*.authorization',
]

export function loggerOptions(config: Pick<Config, 'logLevel'>): LoggerOptions {
  return { level: config.logLevel, redact: { paths: redactPaths, censor: '[redacted]' } }
}

/** JSON lines; on a terminal, one readable line per entry instead. The server logs through it from its first line. */
export function createLogger(config: Pick<Config, 'logLevel'>, stream?: DestinationStream): Logger {
  const destination =
    stream ??
    (process.stdout.isTTY && config.logLevel !== 'silent'
      ? pino.transport({
          target: 'pino-pretty',
          options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true },
        })
      : undefined)
  return pino(loggerOptions(config), destination)
}

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'

/**
 * A request's logger (Fastify's `request.log`), whose pino child (the request id bound, each binding run through the
 * redaction) is made when a line is first written at an enabled level: most requests write none below info, and a
 * webhook delivery is thousands a second. Lines are those of `parent.child(bindings)`.
 */
export class RequestLogger {
  #child: Logger | undefined
  constructor(
    private readonly parent: Logger,
    private readonly bindings: pino.Bindings,
  ) {}

  private get logger(): Logger {
    return (this.#child ??= this.parent.child(this.bindings))
  }

  get level(): string {
    return (this.#child ?? this.parent).level
  }
  set level(level: string) {
    this.logger.level = level
  }

  isLevelEnabled(level: string): boolean {
    return (this.#child ?? this.parent).isLevelEnabled(level)
  }

  child(bindings: pino.Bindings, options?: pino.ChildLoggerOptions): Logger {
    return this.logger.child(bindings, options)
  }

  private write(level: Level, args: unknown[]): void {
    if (this.isLevelEnabled(level)) Reflect.apply(this.logger[level], this.logger, args)
  }
  fatal(...args: unknown[]): void {
    this.write('fatal', args)
  }
  error(...args: unknown[]): void {
    this.write('error', args)
  }
  warn(...args: unknown[]): void {
    this.write('warn', args)
  }
  info(...args: unknown[]): void {
    this.write('info', args)
  }
  debug(...args: unknown[]): void {
    this.write('debug', args)
  }
  trace(...args: unknown[]): void {
    this.write('trace', args)
  }
  silent(): void {}
}
