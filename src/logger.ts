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
