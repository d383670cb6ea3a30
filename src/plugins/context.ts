import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { AppContext } from '../context.js'
import type { Db } from '../db/database.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** App-wide resources for domain code and jobs. */
    ctx: AppContext
    db: Db
  }
}

/** Makes the app context available as `app.ctx` (and its database as `app.db`); destroys the pool on close. */
export default fp(
  async function context(app: FastifyInstance, options: { ctx: AppContext }) {
    app.decorate('ctx', options.ctx)
    app.decorate('db', options.ctx.db)
    app.addHook('onClose', async () => {
      await options.ctx.db.destroy()
    })
  },
  { name: 'context' },
)
