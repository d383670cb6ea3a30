import { component, type AppContext } from '../context.js'
import { upstreamBreakers } from '../http/breaker.js'
import { HttpClient } from '../http/client.js'

/** Requests in flight per company (Procore's spike limit is per 10 s; four at a time stays well inside it). */
export const MAX_IN_FLIGHT = 4

export interface ProcoreHttp {
  /** REST API (PROCORE_API_URL): bounded concurrency and a rate-limit budget per company. */
  api: HttpClient
  /** OAuth server (PROCORE_LOGIN_URL). */
  login: HttpClient
}

/** The app's two Procore HTTP clients, built on first use and closed with the app. */
export function procoreHttp(ctx: AppContext): ProcoreHttp {
  return component(ctx, 'procore.http', () => {
    const logger = ctx.log.child({ component: 'procore' })
    const common = { logger, side: 'procore' as const, ...(ctx.dispatcher ? { dispatcher: ctx.dispatcher } : {}) }
    return {
      api: new HttpClient({
        baseUrl: ctx.config.procore.apiUrl,
        maxConcurrency: MAX_IN_FLIGHT,
        traceAs: 'procore',
        // Circuit 'procore:<companyId>': every API request names its company as concurrencyKey.
        breakers: upstreamBreakers(ctx),
        ...common,
      }),
      login: new HttpClient({ baseUrl: ctx.config.procore.loginUrl, ...common, retry: { maxAttempts: 3 } }),
    }
  })
}

export async function closeProcoreHttp(ctx: AppContext): Promise<void> {
  const http = ctx.components.get('procore.http') as ProcoreHttp | undefined
  if (!http) return
  ctx.components.delete('procore.http')
  await Promise.all([http.api.close(), http.login.close()])
}
