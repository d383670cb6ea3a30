import { Writable } from 'node:stream'
import t from 'tap'
import { pino } from 'pino'
import { buildApp, loggerOptions } from '../../src/app.js'
import { createApiKey } from '../../src/auth/api-keys.js'
import { loadConfig } from '../../src/config.js'
import { build, testEnv } from '../helpers/app.js'
import { testDatabase } from '../helpers/db.js'

t.test('health, readiness and metrics', async (t) => {
  const { app, adminKey, auth } = await build(t)
  const live = await app.inject({ method: 'GET', url: '/health/live' })
  t.same([live.statusCode, live.json()], [200, { status: 'ok' }])
  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  t.same([ready.statusCode, ready.json()], [200, { status: 'ok' }])

  await app.inject({ method: 'GET', url: '/v1/companies', headers: auth(adminKey) })
  await app.inject({ method: 'GET', url: '/v1/companies/123', headers: auth(adminKey) })
  const metrics = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(metrics.statusCode, 200)
  t.match(metrics.headers['content-type'], /^text\/plain/)
  t.match(metrics.body, /http_requests_total\{method="GET",route="\/v1\/companies",status_code="200"\} 1/)
  t.match(
    metrics.body,
    /http_requests_total\{method="GET",route="\/v1\/companies\/:companyId",status_code="404"\} 1/,
    'labelled by route pattern, not raw URL',
  )
  t.match(metrics.body, /http_request_duration_seconds_bucket\{le="0.1",method="GET",route="\/v1\/companies"/)
  t.match(metrics.body, /process_cpu_user_seconds_total/)
})

t.test('readiness is 503 problem+json when the database does not answer', async (t) => {
  const app = await buildApp(
    loadConfig({
      ...testEnv('postgres://nobody@127.0.0.1:1/none'),
      WORKER_ENABLED: 'false',
      DB_CONNECT_TIMEOUT_MS: '500',
    }),
  )
  t.teardown(() => app.close())
  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 503)
  t.match(ready.headers['content-type'], /^application\/problem\+json/)
  t.equal(ready.headers['retry-after'], '5')
  t.equal(
    (await app.inject({ method: 'GET', url: '/health/live' })).statusCode,
    200,
    'liveness does not depend on the database',
  )
})

t.test('request ids are accepted or generated, echoed, and in every log line; secrets are redacted', async (t) => {
  const lines: Record<string, unknown>[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l))
      done()
    },
  })
  const app = await buildApp(loadConfig({ ...testEnv(await testDatabase(t)), LOG_LEVEL: 'trace' }), { logStream: sink })
  t.teardown(() => app.close())
  const { key } = await createApiKey(app.db, { name: 'k', role: 'admin', companyIds: null })

  const given = await app.inject({
    method: 'GET',
    url: '/v1/companies',
    headers: { authorization: `Bearer ${key}`, 'x-request-id': 'caller-trace-42' },
  })
  t.equal(given.headers['x-request-id'], 'caller-trace-42', 'a well-formed incoming id is kept')
  const generated = await app.inject({
    method: 'GET',
    url: '/v1/companies',
    headers: { authorization: `Bearer ${key}`, 'x-request-id': 'bad id with spaces' },
  })
  t.match(generated.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'a malformed one is replaced')
  const failed = await app.inject({
    method: 'POST',
    url: '/v1/companies',
    headers: { authorization: `Bearer ${key}`, 'x-request-id': 'req-bad' },
    payload: { id: 'x' },
  })
  t.equal(failed.statusCode, 400)

  const ofRequest = lines.filter((l) => l.reqId === 'caller-trace-42' && l.level === 30)
  t.equal(ofRequest.length, 1, 'one line per request at info, carrying the id')
  t.match(ofRequest[0], {
    method: 'GET',
    path: '/v1/companies',
    statusCode: 200,
    msg: /^GET \/v1\/companies 200 \d+ ms$/,
  })
  t.match(
    lines.filter((l) => l.reqId === 'req-bad' && l.level === 30),
    [{ statusCode: 400, code: 'validation_failed', msg: /^POST \/v1\/companies 400 validation_failed \d+ ms$/ }],
    'a refusal is that one line, with its code',
  )
  const all = JSON.stringify(lines)
  t.notOk(all.includes(key.slice(21)), 'the API key never reaches the log')
})

t.test('a request’s child logger is made only when the request writes a line', async (t) => {
  const lines: Record<string, unknown>[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l))
      done()
    },
  })
  const logger = pino(loggerOptions({ logLevel: 'warn' }), sink)
  let children = 0
  const child = logger.child.bind(logger)
  logger.child = ((...args: Parameters<typeof child>) => {
    children++
    return child(...args)
  }) as typeof logger.child
  const app = await buildApp(loadConfig({ ...testEnv(await testDatabase(t)), LOG_LEVEL: 'warn' }), { logger })
  t.teardown(() => app.close())

  const before = children
  const live = await app.inject({ method: 'GET', url: '/health/live', headers: { 'x-request-id': 'quiet-1' } })
  t.equal(live.statusCode, 200)
  t.equal(children, before, 'below its level a request makes no child logger')

  logger.level = 'info'
  await app.inject({ method: 'GET', url: '/health/live', headers: { 'x-request-id': 'heard-1' } })
  t.equal(children, before + 1, 'one child, made for the request’s line')
  t.match(
    lines.filter((l) => l.reqId === 'heard-1'),
    [{ level: 30, path: '/health/live', statusCode: 200 }],
    'the line is the child’s: the request id bound',
  )
  t.notOk(
    lines.some((l) => l.reqId === 'quiet-1'),
    'nothing was written for the quiet request',
  )
})

t.test('the logger redacts credentials wherever components put them', async (t) => {
  let out = ''
  const log = pino(
    loggerOptions({ logLevel: 'info' }),
    new Writable({
      write(c: Buffer, _e, done) {
        out += c.toString()
        done()
      },
    }),
  )
  log.info(
    {
      req: { headers: { authorization: 'Bearer canary-1' } },
      oauth: { access_token: 'canary-2', refresh_token: 'canary-3', client_secret: 'canary-4' },
      hook: { destination_headers: { Authorization: 'canary-5' } },
      connection: { token: 'canary-6', password: 'canary-7' },
    },
    'credentials everywhere',
  )
  t.notMatch(out, /canary/, 'no canary reaches the output')
  t.match(out, /\[redacted\]/)
})
