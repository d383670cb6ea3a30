import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { authenticate, can, inScope, type Permission, type Principal } from '../auth/api-keys.js'
import { isCompanyId } from '../companies/companies.js'
import { forbidden, notFound, unauthorized } from '../errors.js'

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal
  }
  interface FastifyContextConfig {
    /** What the route needs; GET routes default to `read`, every other route must declare it. */
    permission?: Permission
  }
}

/**
 * API-key authentication and authorisation for the scope it is registered in. It runs before
 * the body is parsed; a route's company comes from its `companyId` path parameter and must be
 * in the key's scope, otherwise the answer is the same 404 as for a company that does not exist.
 */
export default fp(
  async function auth(app: FastifyInstance) {
    app.decorateRequest('principal', null as unknown as Principal)

    app.addHook('onRoute', (route) => {
      const methods = [route.method].flat()
      if (!route.config?.permission && methods.some((m) => m !== 'GET' && m !== 'HEAD')) {
        throw new Error(`Route ${methods.join(',')} ${route.url} must declare config.permission`)
      }
      route.schema = { ...route.schema, security: [{ apiKey: [] }] }
    })

    app.addHook('onRequest', async (request) => {
      const header = request.headers.authorization
      const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined
      const principal = token ? await authenticate(app.db, token) : undefined
      if (!principal) throw unauthorized()
      request.principal = principal
      const permission = request.routeOptions.config.permission ?? 'read'
      if (!can(principal, permission)) {
        throw forbidden(
          `This needs the ${permission} permission, which the ${principal.role} role does not have. ` +
            'Use a key with a role that does.',
        )
      }
    })

    app.addHook('preValidation', async (request) => {
      const companyId = (request.params as { companyId?: string } | undefined)?.companyId
      // 19 digits past the int8 range name no company either (and must not reach PostgreSQL); other malformed ids
      // fail validation.
      const outOfRange = companyId !== undefined && /^\d{19}$/.test(companyId) && !isCompanyId(companyId)
      if (companyId !== undefined && (outOfRange || !inScope(request.principal, companyId)))
        throw notFound('company', companyId)
    })
  },
  { name: 'auth', dependencies: ['context'] },
)
