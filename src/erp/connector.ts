// App-scoped pieces of the ERP connector: one undici Agent for every agent URL, and one
// ErpClient per company (so its rate-limit budget and bulkhead outlive a single job), rebuilt
// when the company's connection changes.
import { Agent, type Dispatcher } from 'undici'
import { component, type AppContext } from '../context.js'
import { upstreamBreakers } from '../http/breaker.js'
import { ErpClient, type ErpClientOptions } from './client.js'

const AGENT = 'erp.dispatcher'
export const CLIENTS = 'erp.clients'

/** The dispatcher for ERP traffic: the injected one (tests), else an Agent with a connect timeout. */
export function erpDispatcher(ctx: AppContext): Dispatcher {
  return (
    ctx.dispatcher ??
    component(ctx, AGENT, () => new Agent({ connect: { timeout: 5000 }, headersTimeout: 15_000, bodyTimeout: 30_000 }))
  )
}

export function newErpClient(
  ctx: AppContext,
  companyId: string,
  target: { baseUrl: string; token: string },
  extra: Partial<ErpClientOptions> = {},
): ErpClient {
  return new ErpClient({
    baseUrl: target.baseUrl,
    token: target.token,
    concurrencyKey: companyId,
    dispatcher: erpDispatcher(ctx),
    logger: ctx.log.child({ component: 'erp', companyId }),
    breakers: upstreamBreakers(ctx),
    ...extra,
  })
}

/** Closes the shared Agent (after the job runner stopped); safe to call when none was made. */
export async function closeErpConnector(ctx: AppContext): Promise<void> {
  ctx.components.delete(CLIENTS)
  const agent = ctx.components.get(AGENT) as Agent | undefined
  ctx.components.delete(AGENT)
  await agent?.close()
}
