import { AsyncLocalStorage } from 'node:async_hooks'

/**
 * The request ids upstreams answered with (their `X-Request-Id`), collected per piece of work so
 * that an audit entry can name the Procore or ERP request behind a change. A client built with
 * `traceAs` notes the id of every successful response into each enclosing collection; code that
 * wants them runs the calls inside `collectUpstreamIds`. Nothing is collected outside one.
 */
export type UpstreamIds = Partial<Record<string, string>>

interface Scope {
  ids: UpstreamIds
  parent: Scope | undefined
}

const current = new AsyncLocalStorage<Scope>()

/** Runs `fn`; returns its result and the last request id each upstream answered with meanwhile. */
export async function collectUpstreamIds<T>(fn: () => Promise<T>): Promise<{ result: T; ids: UpstreamIds }> {
  const scope: Scope = { ids: {}, parent: current.getStore() }
  const result = await current.run(scope, fn)
  return { result, ids: scope.ids }
}

/** Notes one response's request id in every enclosing collection (HttpClient calls this). */
export function noteUpstreamId(upstream: string, requestId: string | undefined): void {
  if (!requestId) return
  for (let scope = current.getStore(); scope; scope = scope.parent) scope.ids[upstream] = requestId
}
