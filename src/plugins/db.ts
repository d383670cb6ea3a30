import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Db } from '../db/database.js'

declare module 'fastify' {
  interface FastifyInstance {
    db: Db
  }
}

/** Makes the app's Kysely handle available as `app.db`; the app owns it and destroys it on close. */
export default fp(
  async function db(app: FastifyInstance, options: { db: Db }) {
    app.decorate('db', options.db)
    app.addHook('onClose', async () => {
      await options.db.destroy()
    })
  },
  { name: 'db' },
)
