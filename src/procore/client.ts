import type { TSchema, Static } from 'typebox'
import { Compile } from 'typebox/compile'
import { component, type AppContext } from '../context.js'
import type { HttpRequest } from '../http/client.js'
import { UpstreamError } from '../http/errors.js'
import { ConcurrencyLimiter } from '../http/limits.js'
import { MAX_IN_FLIGHT, procoreHttp } from './http.js'
import { idsToStrings, idsToWire } from './ids.js'
import { procoreTokens, type AccessToken } from './tokens.js'

type Query = NonNullable<HttpRequest['query']>

export interface CallOptions<S extends TSchema> {
  query?: Query
  /** Sent with ids as bare JSON integers. */
  body?: unknown
  /** The response (each item, for lists) must match; ids arrive as decimal strings. */
  schema: S
  /** Writes keyed by origin_id (sync endpoints) are safe to retry. */
  idempotent?: boolean
  /** Act for this Procore company instead of the chosen one (onboarding reads other companies' lists). */
  procoreCompanyId?: string
}

/** What an admin chose in onboarding's first step; null: the company's own id and its ERP list. */
export interface ProcoreChoice {
  procoreCompanyId: string
  costCodeListId: string | null
}

/** Procore's `per_page`: big pages, well under its guidance of at most 2,000. */
const PER_PAGE = 1000

const compiled = new WeakMap<TSchema, ReturnType<typeof Compile>>()

/** Checks one value against a schema; the error names the first mismatch, never the value. */
export function conform<S extends TSchema>(schema: S, value: unknown): Static<S> {
  let check = compiled.get(schema)
  if (!check) {
    check = Compile(schema)
    compiled.set(schema, check)
  }
  if (check.Check(value)) return value as Static<S>
  const first = [...check.Errors(value)][0]
  throw new Error(
    'unexpected Procore response: ' +
      `${first ? `${first.instancePath || '/'} ${first.message}` : 'does not match the expected shape'}`,
  )
}

/**
 * Procore's REST API as one company: every call carries the company's bearer token and
 * `Procore-Company-Id`, shares the company's concurrency slot and rate-limit budget, and is
 * retried once with a renewed token after a 401. Timeouts, retries and rate-limit waits are the
 * shared HTTP layer's (src/http).
 */
export class ProcoreClient {
  readonly companyId: string
  readonly #ctx: AppContext
  #choice: Promise<ProcoreChoice> | undefined

  constructor(ctx: AppContext, companyId: string) {
    this.#ctx = ctx
    this.companyId = companyId
  }

  /** The Procore company and cost code list chosen in onboarding, read once per client. */
  choice(): Promise<ProcoreChoice> {
    this.#choice ??= this.#ctx.db
      .selectFrom('procore_connections')
      .select(['procore_company_id', 'cost_code_list_id'])
      .where('company_id', '=', this.companyId)
      .executeTakeFirst()
      .then((row) => ({
        procoreCompanyId: row?.procore_company_id ?? this.companyId,
        costCodeListId: row?.cost_code_list_id ?? null,
      }))
    return this.#choice
  }

  async call<S extends TSchema>(method: HttpRequest['method'], path: string, opts: CallOptions<S>): Promise<Static<S>> {
    const acting = opts.procoreCompanyId ?? (await this.choice()).procoreCompanyId
    const res = await this.#withToken((token) =>
      procoreHttp(this.#ctx).api.request({
        ...this.#request(method, path, opts, token, acting),
        parse: (body) => conform(opts.schema, idsToStrings(body)),
      }),
    )
    return res.body
  }

  /** The record, or null on 404. */
  async find<S extends TSchema>(path: string, opts: CallOptions<S>): Promise<Static<S> | null> {
    try {
      return await this.call('GET', path, opts)
    } catch (error) {
      if (error instanceof UpstreamError && error.reason === 'not_found') return null
      throw error
    }
  }

  /** Every page of a list (page/per_page, following `Link` and `Total`), each item checked. */
  async *pages<S extends TSchema>(
    path: string,
    opts: Omit<CallOptions<S>, 'body' | 'idempotent'>,
  ): AsyncGenerator<Array<Static<S>>> {
    const acting = opts.procoreCompanyId ?? (await this.choice()).procoreCompanyId
    for (let round = 0; ; round++) {
      const token = await procoreTokens(this.#ctx).current(this.companyId)
      let yielded = false
      try {
        const pages = procoreHttp(this.#ctx).api.paginate<Static<S>>({
          ...this.#request('GET', path, opts, token, acting),
          perPage: PER_PAGE,
          parse: (body) => {
            if (!Array.isArray(body)) throw new Error('unexpected Procore response: a list page is not an array')
            return body.map((item) => conform(opts.schema, idsToStrings(item)))
          },
        })
        for await (const page of pages) {
          yielded = true
          yield page
        }
        return
      } catch (error) {
        // A token refused before the first page: renew and start over. Later, the caller has
        // already acted on pages, so it retries the whole listing itself.
        if (round > 0 || yielded || !isUnauthorized(error)) throw error
        await procoreTokens(this.#ctx).renew(this.companyId, token)
      }
    }
  }

  #request<S extends TSchema>(
    method: HttpRequest['method'],
    path: string,
    opts: CallOptions<S>,
    token: AccessToken,
    acting: string,
  ) {
    return {
      method,
      path,
      headers: { authorization: `Bearer ${token.token}`, 'procore-company-id': acting },
      concurrencyKey: this.companyId,
      ...(opts.query ? { query: opts.query } : {}),
      ...(opts.body === undefined ? {} : { body: idsToWire(opts.body) }),
      ...(opts.idempotent === undefined ? {} : { idempotent: opts.idempotent }),
    }
  }

  /**
   * The slot is taken before the token is read, so a request never waits in a queue holding a
   * token that was renewed meanwhile (which would earn a needless 401); the retry after a 401
   * keeps the slot.
   */
  async #withToken<T>(send: (token: AccessToken) => Promise<T>): Promise<T> {
    const tokens = procoreTokens(this.#ctx)
    const slots = component(this.#ctx, 'procore.slots', () => new ConcurrencyLimiter(MAX_IN_FLIGHT))
    return slots.run(this.companyId, async () => {
      const token = await tokens.current(this.companyId)
      try {
        return await send(token)
      } catch (error) {
        if (!isUnauthorized(error)) throw error
        return send(await tokens.renew(this.companyId, token))
      }
    })
  }
}

const isUnauthorized = (error: unknown): boolean => error instanceof UpstreamError && error.reason === 'unauthorized'
