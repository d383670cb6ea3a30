import { writeFile } from 'node:fs/promises'
import { buildApp } from '../app.js'
import { loadConfig } from '../config.js'

/**
 * Writes openapi/openapi.json from the route schemas. The app is built exactly as in
 * production; the database is never contacted (the pool connects lazily).
 */
export async function generateOpenApi(): Promise<string> {
  const app = await buildApp(
    loadConfig({
      LOG_LEVEL: 'silent',
      DATABASE_URL: 'postgres://openapi@127.0.0.1:1/unused',
      WORKER_ENABLED: 'false',
      ENCRYPTION_KEYS: `doc:${Buffer.alloc(32).toString('base64')}`,
    }),
  )
  try {
    return `${JSON.stringify(app.swagger(), null, 2)}\n`
  } finally {
    await app.close()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await writeFile(new URL('../../openapi/openapi.json', import.meta.url), await generateOpenApi())
  console.log('wrote openapi/openapi.json')
}
