import { sql, type RawBuilder } from 'kysely'
import { transaction, type Db, type Tx } from '../db/database.js'
import type { Side } from '../db/tables/records.js'
import type { Suggestion } from '../schemas/records.js'
import { exactKeys, otherSide, Registry, type Fields, type RecordType } from './registry.js'

/**
 * Match suggestions, computed set-based in PostgreSQL from record_keys:
 *
 * - exact keys (e-mail, codes, tax id, Procore's origin_id ↔ the ERP id, the normalised name…)
 *   pair records by a hash join on (key, value);
 * - names are compared by trigram similarity (pg_trgm): for a few records by probing the GIN
 *   index with `%`; for a whole company (bulk link) by a prefix-filter join — each name keeps
 *   only its rarest trigrams, pairs that share enough of them are verified with similarity().
 *   Pairs below the threshold can never share enough rare trigrams, so nothing is missed, and
 *   100k × 100k stays a few hash joins instead of 100k index probes;
 * - evidence combines as 1 − Π(1 − weight × similarity) per pair, with the reasons kept.
 */

export interface Candidate {
  sourceId: string
  candidateId: string
  score: number
  /** A strong key is equal (or the score is at least STRONG_SCORE): a create would duplicate it. */
  strong: boolean
  reasons: string[]
}

/** A score this high is strong even without a strong key (e.g. a near-identical name and the same phone). */
export const STRONG_SCORE = 0.95

export interface ScoreOptions {
  /** The side whose records look for candidates on the other side. */
  sourceSide: Side
  /** Only these source records; all unlinked, unignored live records of the side when absent. */
  sourceIds?: readonly string[] | undefined
  /** `unlinked`: candidates that are free to link; `all`: any live record (the duplicate guard). */
  candidates: 'unlinked' | 'all'
  /**
   * Name similarity: `probe` asks the GIN index per source (a handful of sources); `prefix`
   * runs the prefix-filter join (all sources). Pairs below `threshold` are not considered.
   */
  fuzzy: { mode: 'probe' | 'prefix'; threshold: number } | null
  /** Keep this many best candidates per source. */
  perSource: number
  /** For whole-company runs in jobs: the statement timeout of this transaction (default: the pool's). */
  statementTimeoutMs?: number
  /** Told why name similarity was left out of a `prefix` run (see MAX_NAME_JOIN_ROWS). */
  onNameMatchingSkipped?: (reason: string) => void
  /** The prefix join's bound (default MAX_NAME_JOIN_ROWS). */
  maxNameJoinRows?: number
}

/**
 * Upper bound on the rows the prefix-filter join may produce before they are verified. Names
 * drawn from a small vocabulary make nearly every pair share rare-ish trigrams; past this bound
 * the join would take minutes, so the run links by exact keys only and says so.
 */
export const MAX_NAME_JOIN_ROWS = 100_000_000

type Evidence = { key: string; sim: number }
type ScoredRow = { sid: string; cid: string; score: number; strong: boolean; evidence: Evidence[] }

const sideCol = (side: Side) => sql.ref(side === 'procore' ? 'procore_id' : 'erp_id')

function weights(type: RecordType): RawBuilder<unknown> {
  const def = Registry[type]
  const rows = exactKeys(type).map((k) => sql`(${k.field}::text, ${k.weight}::float8, ${k.strong}::boolean)`)
  if (def.match.name)
    rows.push(sql`('name'::text, ${def.match.name.weight}::float8, ${def.match.name.strongWhenSame}::boolean)`)
  return sql`(values ${sql.join(rows)}) as w(key, weight, strong)`
}

/** Words for a person: "same e-mail", "name 0.92 similar". */
export function reasonsFor(type: RecordType, evidence: readonly Evidence[]): string[] {
  const byKey = new Map(exactKeys(type).map((k) => [k.field, k.reason]))
  return evidence.map((e) =>
    e.key === 'name'
      ? e.sim >= 0.9999
        ? 'same name'
        : `name ${e.sim.toFixed(2)} similar`
      : (byKey.get(e.key) ?? `same ${e.key}`),
  )
}

/**
 * Scores candidate pairs, in a transaction of its own: it sets the trigram threshold and, for
 * the prefix join, uses temporary tables that vanish at commit.
 */
export async function scorePairs(
  db: Db,
  companyId: string,
  type: RecordType,
  options: ScoreOptions,
): Promise<Candidate[]> {
  return transaction(db, (tx) => scorePairsInTx(tx, companyId, type, options))
}

async function scorePairsInTx(tx: Tx, companyId: string, type: RecordType, o: ScoreOptions): Promise<Candidate[]> {
  const rows = await scoreInTx(tx, companyId, type, o)
  return rows.map((r) => ({
    sourceId: r.sid,
    candidateId: r.cid,
    score: Math.round(r.score * 1000) / 1000,
    strong: r.strong,
    reasons: reasonsFor(type, r.evidence),
  }))
}

async function scoreInTx(tx: Tx, companyId: string, type: RecordType, o: ScoreOptions): Promise<ScoredRow[]> {
  const ss = o.sourceSide
  const os = otherSide(ss)
  const def = Registry[type]
  if (o.sourceIds !== undefined && o.sourceIds.length === 0) return []
  const threshold = o.fuzzy ? Math.min(Math.max(o.fuzzy.threshold, 0.05), 1) : 1
  if (o.fuzzy?.mode === 'probe')
    await sql`select set_config('pg_trgm.similarity_threshold', ${String(threshold)}, true)`.execute(tx)
  if (o.statementTimeoutMs !== undefined)
    await sql`select set_config('statement_timeout', ${String(o.statementTimeoutMs)}, true)`.execute(tx)

  const sourceFilter =
    o.sourceIds !== undefined
      ? sql`k.external_id = any(${[...o.sourceIds]}::text[])`
      : sql`not exists (select 1 from record_links l
            where l.company_id = k.company_id and l.type = k.type and l.unlinked_at is null
            and l.${sideCol(ss)} = k.external_id)
          and not exists (select 1 from record_flags f
            where f.company_id = k.company_id and f.type = k.type and f.side = k.side
            and f.external_id = k.external_id and f.ignored_at is not null)`
  const candidateFilter =
    o.candidates === 'unlinked'
      ? sql`and not exists (select 1 from record_links l
            where l.company_id = ${companyId} and l.type = ${type} and l.unlinked_at is null
            and l.${sideCol(os)} = p.cid)
          and not exists (select 1 from record_flags f
            where f.company_id = ${companyId} and f.type = ${type} and f.side = ${os}
            and f.external_id = p.cid and f.ignored_at is not null)`
      : sql``
  // Children (project cost codes) pair only within linked parents; top-level records with top-level ones.
  const procoreParent = ss === 'procore' ? sql.ref('p.sp') : sql.ref('p.cp')
  const erpParent = ss === 'procore' ? sql.ref('p.cp') : sql.ref('p.sp')
  const parentFilter = def.parent
    ? sql`and ((p.sp is null and p.cp is null) or exists (select 1 from record_links pl
          where pl.company_id = ${companyId} and pl.type = ${def.parent.type}
          and pl.unlinked_at is null and pl.procore_id = ${procoreParent} and pl.erp_id = ${erpParent}))`
    : sql``

  // Sources and their keys, once.
  await sql`create temp table sugg_src on commit drop as
    select k.external_id, k.key, k.value, k.parent_id from record_keys k
    where k.company_id = ${companyId} and k.type = ${type} and k.side = ${ss} and ${sourceFilter}`.execute(tx)
  await sql`analyze sugg_src`.execute(tx)

  // Exact keys (the normalised name included): one hash join.
  await sql`create temp table sugg_pairs on commit drop as
    select s.external_id as sid, o.external_id as cid, s.key, 1.0::float8 as sim, s.parent_id as sp, o.parent_id as cp
    from sugg_src s join record_keys o on o.company_id = ${companyId} and o.type = ${type} and o.side = ${os}
      and o.key = s.key and o.value = s.value`.execute(tx)

  if (def.match.name) {
    // Name similarity of pairs already found by another key: it adds to their score.
    await sql`insert into sugg_pairs
      select p.sid, p.cid, 'name', similarity(sn.value, cn.value), p.sp, p.cp
      from (select distinct sid, cid, sp, cp from sugg_pairs where key <> 'name') p
      join sugg_src sn on sn.external_id = p.sid and sn.key = 'name'
      join record_keys cn on cn.company_id = ${companyId} and cn.type = ${type} and cn.side = ${os}
        and cn.external_id = p.cid and cn.key = 'name'
      where sn.value <> cn.value and similarity(sn.value, cn.value) >= least(${threshold}::float8, 0.3)`.execute(tx)

    if (o.fuzzy?.mode === 'probe' && threshold < 1) {
      await sql`insert into sugg_pairs
        select s.external_id, o.external_id, 'name', similarity(s.value, o.value), s.parent_id, o.parent_id
        from sugg_src s join record_keys o on o.company_id = ${companyId} and o.type = ${type} and o.side = ${os}
          and o.key = 'name' and o.value % s.value
        where s.key = 'name' and o.value <> s.value`.execute(tx)
    } else if (o.fuzzy?.mode === 'prefix' && threshold < 1) {
      const skipped = await prefixJoin(tx, companyId, type, os, threshold, o.maxNameJoinRows ?? MAX_NAME_JOIN_ROWS)
      if (skipped) o.onNameMatchingSkipped?.(skipped)
    }
  }

  const { rows } = await sql<ScoredRow>`
    with best as (
      select sid, cid, key, max(sim) as sim, max(sp) as sp, max(cp) as cp from sugg_pairs group by sid, cid, key
    ), ok as (
      select p.* from best p where true ${candidateFilter} ${parentFilter}
    ), scored as (
      select ok.sid, ok.cid,
        1 - exp(sum(ln(1 - least(w.weight * ok.sim, 0.999999)))) as score,
        bool_or(w.strong and ok.sim >= 0.9999) as strong_key,
        json_agg(json_build_object('key', ok.key, 'sim', round(ok.sim::numeric, 2)) order by w.weight * ok.sim desc)
          as evidence
      from ok join ${weights(type)} on w.key = ok.key
      group by ok.sid, ok.cid
    ), ranked as (
      select *, row_number() over (partition by sid order by score desc, cid) as rn from scored
    )
    select sid, cid, score, (strong_key or score >= ${STRONG_SCORE}) as strong, evidence from ranked
    where rn <= ${o.perSource}
    order by sid, score desc, cid`.execute(tx)
  await sql`drop table if exists sugg_src, sugg_pairs`.execute(tx)
  return rows.map((r) => ({
    ...r,
    score: Number(r.score),
    evidence: r.evidence.map((e) => ({ key: e.key, sim: Number(e.sim) })),
  }))
}

/**
 * Trigram prefix-filter join (all-pairs similarity ≥ t) for the sources that no exact key
 * paired, against candidates that no exact key paired. pg_trgm's similarity is the Jaccard
 * index of trigram sets, so a pair at ≥ t shares at least α = ⌈t/(1+t)·(|x|+|y|)⌉ ≥ ⌈t·|x|⌉
 * trigrams. With trigrams ordered from rarest to most common:
 *
 * - prefix: such a pair shares at least k of the first |x| − ⌈t·|x|⌉ + k trigrams of each side
 *   (k = 2 keeps the verified pairs few);
 * - length: t·|x| ≤ |y| ≤ |x|/t;
 * - position: a trigram shared at positions i and j bounds the overlap by
 *   min(i, j) + min(|x| − i, |y| − j), which must reach α.
 *
 * No pair at ≥ t is lost. Returns why it did nothing when the join would be too large.
 */
async function prefixJoin(
  tx: Tx,
  companyId: string,
  type: RecordType,
  os: Side,
  t: number,
  maxJoinRows: number,
): Promise<string | null> {
  await sql`create temp table pj_names on commit drop as
    select 0 as s, row_number() over ()::int as rid, external_id as id, value, parent_id from sugg_src
      where key = 'name' and external_id not in (select sid from sugg_pairs)
    union all
    select 1, row_number() over ()::int, o.external_id, o.value, o.parent_id from record_keys o
      where o.company_id = ${companyId} and o.type = ${type} and o.side = ${os} and o.key = 'name'
        and o.external_id not in (select cid from sugg_pairs)`.execute(tx)
  await sql`create temp table pj_tokens on commit drop as
    select s, rid, unnest(show_trgm(value)) as tg from pj_names`.execute(tx)
  await sql`create temp table pj_df on commit drop as
    select tg, row_number() over (order by count(*), tg)::int as tid from pj_tokens group by tg`.execute(tx)
  // lo and hi: the lengths a partner may have (the length filter), as integers for the join.
  await sql`create temp table pj_prefix on commit drop as
    select s, rid, tid, pos, len, ceil(${t}::float8 * len - 1e-9)::int as lo,
      floor(len / ${t}::float8 + 1e-9)::int as hi from (
      select k.s, k.rid, d.tid, row_number() over (partition by k.s, k.rid order by d.tid)::int as pos,
        count(*) over (partition by k.s, k.rid)::int as len
      from pj_tokens k join pj_df d using (tg)
    ) x where pos <= len - ceil(${t}::float8 * len - 1e-9)::int + 2`.execute(tx)
  const { rows } = await sql<{ n: string }>`select coalesce(sum(c0::bigint * c1), 0)::text as n from (
    select count(*) filter (where s = 0) as c0, count(*) filter (where s = 1) as c1
    from pj_prefix group by tid) z`.execute(tx)
  const joinRows = Number(rows[0]?.n ?? 0)
  if (joinRows > maxJoinRows) {
    await sql`drop table pj_names, pj_tokens, pj_df, pj_prefix`.execute(tx)
    return (
      'name similarity was left out: the unpaired names share so many trigrams that comparing them would take ' +
      `${joinRows.toLocaleString('en-US')} candidate rows ` +
      `(the limit is ${maxJoinRows.toLocaleString('en-US')}); pairs were linked by exact keys only. ` +
      'Use a higher minScore, or review suggestions record by record.'
    )
  }
  // Statistics, or the planner takes the candidate pairs for a handful and verifies them by nested loops.
  await sql`analyze pj_prefix, pj_names`.execute(tx)
  // Millions of candidate pairs are grouped in memory rather than spilled to disk (this transaction only).
  await sql`select set_config('work_mem', '256MB', true)`.execute(tx)
  await sql`insert into sugg_pairs
    select a.id, b.id, 'name', similarity(a.value, b.value), a.parent_id, b.parent_id
    from (
      select x.rid as arid, y.rid as brid from pj_prefix x join pj_prefix y on y.tid = x.tid and y.s = 1
      where x.s = 0
        and y.len between x.lo and x.hi
        and least(x.pos, y.pos) + least(x.len - x.pos, y.len - y.pos)
          >= ceil(${t / (1 + t)}::float8 * (x.len + y.len) - 1e-9)
      group by x.rid, y.rid having count(*) >= 2
    ) c
    join pj_names a on a.s = 0 and a.rid = c.arid
    join pj_names b on b.s = 1 and b.rid = c.brid
    where similarity(a.value, b.value) >= ${t}::float8`.execute(tx)
  await sql`drop table pj_names, pj_tokens, pj_df, pj_prefix`.execute(tx)
  return null
}

/** Ranked candidates on the other side for one record (free to link, not ignored). */
export async function suggestionsFor(
  db: Db,
  companyId: string,
  type: RecordType,
  side: Side,
  externalId: string,
  limit: number,
): Promise<Suggestion[]> {
  const found = await scorePairs(db, companyId, type, {
    sourceSide: side,
    sourceIds: [externalId],
    candidates: 'unlinked',
    fuzzy: { mode: 'probe', threshold: 0.3 },
    perSource: limit,
  })
  if (found.length === 0) return []
  const snaps = await db
    .selectFrom('record_snapshots')
    .select(['external_id', 'parent_id', 'fields', 'source_updated_at'])
    .where('company_id', '=', companyId)
    .where('type', '=', type)
    .where('side', '=', otherSide(side))
    .where(
      'external_id',
      'in',
      found.map((f) => f.candidateId),
    )
    .execute()
  const byId = new Map(snaps.map((s) => [s.external_id, s]))
  return found.flatMap((f) => {
    const s = byId.get(f.candidateId)
    return s
      ? [
          {
            id: f.candidateId,
            score: f.score,
            strong: f.strong,
            reasons: f.reasons,
            record: {
              id: s.external_id,
              parentId: s.parent_id,
              fields: s.fields as Fields,
              updatedAt: s.source_updated_at?.toISOString() ?? null,
              deleted: false,
            },
          },
        ]
      : []
  })
}

export interface BulkPlan {
  /** Mutual best, unique at the top, at least minScore: safe to link without a person. */
  unambiguous: Candidate[]
  /** At least minScore but tied with another candidate, or another record claims the candidate more strongly. */
  ambiguous: Array<{ procoreId: string; erpId: string; score: number; reasons: string[]; why: string }>
  /** Set when name similarity could not be used (see MAX_NAME_JOIN_ROWS): why, and what to do. */
  nameMatchingSkipped: string | null
}

interface PlanOptions {
  only?: { side: Side; ids: readonly string[] }
  strongOnly?: boolean
  statementTimeoutMs?: number
  maxNameJoinRows?: number
}

/**
 * Every unlinked Procore record against every unlinked ERP record of a type, reduced to the
 * pairs safe to link: each pair's score is the best of its Procore record and of its ERP record,
 * and neither has a second candidate with the same score. Scores in a transaction of its own.
 */
export async function planBulkLink(
  db: Db,
  companyId: string,
  type: RecordType,
  minScore: number,
  options: PlanOptions = {},
): Promise<BulkPlan> {
  // A whole-company plan follows bulk loads as often as not: give the planner current statistics.
  if (!options.only) await analyzeIfStale(db)
  return transaction(db, (tx) => planBulkLinkInTx(tx, companyId, type, minScore, options))
}

/**
 * Takes statistics of the key and link tables when a tenth of either changed since they were last taken
 * (autovacuum may not have caught up with a bulk load yet); an ANALYZE on every plan cost more than the plan.
 */
async function analyzeIfStale(db: Db): Promise<void> {
  const stale = await sql<{ relname: string }>`
    select relname from pg_stat_user_tables
    where relid in ('record_keys'::regclass, 'record_links'::regclass)
      and (coalesce(last_analyze, last_autoanalyze) is null
        or n_mod_since_analyze > greatest(1000, n_live_tup / 10))
  `.execute(db)
  if (stale.rows.length > 0) await sql`analyze ${sql.join(stale.rows.map((r) => sql.table(r.relname)))}`.execute(db)
}

/** `planBulkLink` in the caller's transaction. */
export async function planBulkLinkInTx(
  tx: Tx,
  companyId: string,
  type: RecordType,
  minScore: number,
  options: PlanOptions = {},
): Promise<BulkPlan> {
  const only = options.only
  const nameWeight = Registry[type].match.name?.weight ?? 1
  const threshold = Math.max(minScore / nameWeight, 0.5)
  let nameMatchingSkipped: string | null = null
  const scored = await scorePairsInTx(tx, companyId, type, {
    onNameMatchingSkipped: (reason) => {
      nameMatchingSkipped = reason
    },
    sourceSide: only?.side ?? 'procore',
    sourceIds: only?.ids,
    candidates: 'unlinked',
    fuzzy: threshold < 1 ? { mode: only && only.ids.length <= 50 ? 'probe' : 'prefix', threshold } : null,
    perSource: 1000,
    ...(options.statementTimeoutMs === undefined ? {} : { statementTimeoutMs: options.statementTimeoutMs }),
    ...(options.maxNameJoinRows === undefined ? {} : { maxNameJoinRows: options.maxNameJoinRows }),
  })
  const pairs = scored
    .filter((p) => p.score >= minScore && (!options.strongOnly || p.strong))
    .map((p) => {
      const [procoreId, erpId] =
        (only?.side ?? 'procore') === 'procore' ? [p.sourceId, p.candidateId] : [p.candidateId, p.sourceId]
      return { ...p, procoreId, erpId }
    })
  const bestOf = (ids: (p: (typeof pairs)[number]) => string) => {
    const best = new Map<string, { score: number; count: number }>()
    for (const p of pairs) {
      const b = best.get(ids(p))
      if (!b || p.score > b.score) best.set(ids(p), { score: p.score, count: 1 })
      else if (p.score === b.score) b.count += 1
    }
    return best
  }
  const byProcore = bestOf((p) => p.procoreId)
  const byErp = bestOf((p) => p.erpId)
  const plan: BulkPlan = { unambiguous: [], ambiguous: [], nameMatchingSkipped }
  for (const p of pairs) {
    const bp = byProcore.get(p.procoreId)!
    const be = byErp.get(p.erpId)!
    if (p.score === bp.score && p.score === be.score && bp.count === 1 && be.count === 1) {
      plan.unambiguous.push({ ...p, sourceId: p.procoreId, candidateId: p.erpId })
    } else if (p.score === bp.score) {
      plan.ambiguous.push({
        procoreId: p.procoreId,
        erpId: p.erpId,
        score: p.score,
        reasons: p.reasons,
        why:
          bp.count > 1
            ? `Procore record ${p.procoreId} has ${bp.count} candidates with score ${p.score}`
            : `ERP record ${p.erpId} matches another Procore record at least as well`,
      })
    }
  }
  return plan
}
