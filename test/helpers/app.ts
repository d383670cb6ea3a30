import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { buildApp, type BuildOptions } from '../../src/app.js'
import { createApiKey } from '../../src/auth/api-keys.js'
import { loadConfig } from '../../src/config.js'
import type { Role } from '../../src/db/tables/api-keys.js'
import { testDatabase } from './db.js'

export interface TestApp {
  app: FastifyInstance
  databaseUrl: string
  /** An admin key scoped to every company. */
  adminKey: string
  key(role: Role, companyIds?: string[] | null): Promise<string>
  auth(key: string): { authorization: string }
}

/**
 * The app exactly as production builds it (same buildApp, same config parsing), on a fresh
 * database of its own.
 */
export const TEST_ENCRYPTION_KEYS = `test:${Buffer.alloc(32, 7).toString('base64')}`

/** The environment every test app gets, before the test's own overrides. */
export const testEnv = (databaseUrl: string): Record<string, string> => ({
  LOG_LEVEL: 'silent',
  DATABASE_URL: databaseUrl,
  ENCRYPTION_KEYS: TEST_ENCRYPTION_KEYS,
  WORKER_HEARTBEAT_MS: '500',
  // Tests send bursts with one key; the limit itself is tested with a value of its own.
  RATE_LIMIT_PER_MINUTE: '0',
  // Many test files share two cores: a lagging event loop there is not an overload to refuse.
  PRESSURE_MAX_EVENT_LOOP_DELAY_MS: '0',
})

export async function build(t: Test, env: Record<string, string> = {}, options: BuildOptions = {}): Promise<TestApp> {
  const databaseUrl = await testDatabase(t)
  const app = await buildApp(loadConfig({ ...testEnv(databaseUrl), ...env }), options)
  t.teardown(() => app.close())
  const key = async (role: Role, companyIds: string[] | null = null) =>
    (await createApiKey(app.db, { name: `test ${role}`, role, companyIds })).key
  return { app, databaseUrl, adminKey: await key('admin'), key, auth: (k) => ({ authorization: `Bearer ${k}` }) }
}

export async function createCompany(app: FastifyInstance, adminKey: string, id: string, erpSystem = 'foundation') {
  const res = await app.inject({
    method: 'POST',
    url: '/v1/companies',
    headers: { authorization: `Bearer ${adminKey}` },
    payload: { id, name: `Company ${id}`, erpSystem },
  })
  if (res.statusCode !== 201) throw new Error(`createCompany ${id}: ${res.statusCode} ${res.body}`)
  return res.json<{ id: string }>()
}
