import { randomBytes } from 'node:crypto'

export const KINDS = [
  'departments',
  'vendors',
  'projects',
  'users',
  'standard_cost_code_lists',
  'standard_cost_codes',
  'cost_codes',
  'timecard_entries',
  'line_item_types',
  'commitments',
  'requisitions',
  'invoice_payments',
] as const
export type Kind = (typeof KINDS)[number]

/** A stored record. Ids (own and foreign) are decimal strings; timestamps are ISO strings. */
export type Rec = Record<string, unknown> & { id: string; company_id: string; created_at: string; updated_at: string }

export interface Company {
  id: string
  name: string
}

/** In-memory state of the stand-in: companies, records per kind, one id sequence, one clock. */
export class Store {
  readonly companies = new Map<string, Company>()
  private readonly tables = new Map<Kind, Map<string, Rec>>(KINDS.map((k) => [k, new Map()]))
  /** kind, company, field, lower-cased value → ids (see findBy). */
  private readonly index = new Map<string, Set<string>>()
  private nextIdValue: bigint
  private lastTime = 0

  constructor(firstId: bigint) {
    this.nextIdValue = firstId
  }

  nextId(): string {
    return String(this.nextIdValue++)
  }

  /** Strictly increasing ISO timestamps, so updated_at filters never see ties. */
  now(): string {
    this.lastTime = Math.max(Date.now(), this.lastTime + 1)
    return new Date(this.lastTime).toISOString()
  }

  table(kind: Kind): Map<string, Rec> {
    const table = this.tables.get(kind)
    if (!table) throw new Error(`unknown kind ${kind}`)
    return table
  }

  get(kind: Kind, id: string): Rec | undefined {
    return this.table(kind).get(id)
  }

  /** Records of one company, ordered by id as Procore lists them. */
  all(kind: Kind, companyId: string): Rec[] {
    return [...this.table(kind).values()].filter((r) => r.company_id === companyId).sort(byId)
  }

  /**
   * Records of one company whose `field` equals `value` ignoring case, through an index kept by
   * put and delete (records are replaced, never changed in place): uniqueness checks and
   * origin_id lookups stay O(1) however many records a sync call writes.
   */
  findBy(kind: Kind, companyId: string, field: string, value: unknown): Rec[] {
    const ids = this.index.get(indexKey(kind, companyId, field, value))
    return ids ? [...ids].map((id) => this.table(kind).get(id)!).filter(Boolean) : []
  }

  put(kind: Kind, rec: Rec): void {
    const previous = this.table(kind).get(rec.id)
    if (previous) this.unindex(kind, previous)
    this.table(kind).set(rec.id, rec)
    for (const [field, value] of Object.entries(rec)) {
      if (!indexable(value)) continue
      const key = indexKey(kind, rec.company_id, field, value)
      const ids = this.index.get(key)
      if (ids) ids.add(rec.id)
      else this.index.set(key, new Set([rec.id]))
    }
  }

  delete(kind: Kind, id: string): void {
    const rec = this.table(kind).get(id)
    if (rec) this.unindex(kind, rec)
    this.table(kind).delete(id)
  }

  private unindex(kind: Kind, rec: Rec): void {
    for (const [field, value] of Object.entries(rec)) {
      if (!indexable(value)) continue
      const key = indexKey(kind, rec.company_id, field, value)
      const ids = this.index.get(key)
      ids?.delete(rec.id)
      if (ids?.size === 0) this.index.delete(key)
    }
  }
}

const indexable = (value: unknown) =>
  typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint'
const indexKey = (kind: Kind, companyId: string, field: string, value: unknown) =>
  `${kind}\u0000${companyId}\u0000${field}\u0000${String(value).toLowerCase()}`

export function byId(a: { id: string }, b: { id: string }): number {
  const x = BigInt(a.id)
  const y = BigInt(b.id)
  return x < y ? -1 : x > y ? 1 : 0
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

/** A ULID: 10 characters of millisecond time, 16 of randomness, Crockford base32. */
export function ulid(time = Date.now()): string {
  let t = time
  let head = ''
  for (let i = 0; i < 10; i++) {
    head = CROCKFORD.charAt(t % 32) + head
    t = Math.floor(t / 32)
  }
  return head + [...randomBytes(16)].map((b) => CROCKFORD.charAt(b % 32)).join('')
}
