/**
 * The bare baseline for webhook intake figures: Fastify and pg doing one INSERT per delivery, nothing
 * else (no authentication, no job, no parsing). Started as a child process by procore-webhooks.ts, so
 * both are measured by the same autocannon on the same machine in the same run.
 *
 *   DATABASE_URL=postgres://… PORT=… npx tsx test/bench/bare-intake.ts
 */
import Fastify from 'fastify'
import pg from 'pg'

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 })
await pool.query(
  'create table if not exists bare_events (id bigint generated always as identity primary key, body text)',
)
const app = Fastify()
app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body))
app.post('/webhooks/procore', async (request) => {
  const { rows } = await pool.query<{ id: string }>('insert into bare_events (body) values ($1) returning id', [
    String(request.body),
  ])
  return { id: rows[0]!.id, status: 'queued' }
})
app.get('/health/ready', async () => ({ ok: true }))
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
process.on('SIGTERM', () => {
  void app.close().then(() => pool.end())
})
