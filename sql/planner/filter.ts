// Filtered nearest-neighbour search: the four values of winnow.filter_strategy.
//
//   pre   Postgres returns the ids that pass the WHERE clause (under the client's role, so RLS applies);
//         the native search is restricted to them. Cost grows with the number of matching rows.
//   post  iterative deepening: search k' candidates unfiltered, ask Postgres which of them pass
//         (`SELECT pk FROM t WHERE (p) AND pk = ANY($ids)`), double k' until k pass or the index is
//         exhausted. Cost grows with k / selectivity.
//   in    the clause only uses the index's INCLUDE columns: compiled to a JS predicate
//         (include-predicate.ts) and evaluated on Winnow's copy of those columns, no round trip.
//   auto  `in` when eligible, else `pre` below AUTO_PRE_BELOW estimated selectivity and `post` above
//         (Postgres's planner estimate, selectivity.ts; crossover measured in sql/planner/README.md).
//
// A WHERE clause only partly on INCLUDE columns (`cat = 3 AND price < 10`, cat included): its
// conjuncts on INCLUDE columns restrict post's searches inside the index (the allowed ids computed
// as for `in`, no round trip), and Postgres checks the whole clause on the candidates, so only the
// rest of the clause thins them out.
//
// Every strategy returns exactly min(k, matching rows) ids in distance order (up to the index's
// approximation): post falls back to pre when deepening would look at more than half of the index.
import type { SessionContext } from '../../server/session.ts';
import type { LiveIndex } from '../../sync/index-manager.ts';
import type { IncludeStore } from '../../sync/include-store.ts';
import { quoteIdent } from '../quote.ts';
import { compileIncludePredicate, includeIneligibility, type IncludePredicate } from './include-predicate.ts';
import { eol } from './recognize.ts';
import { allowedCount, searchIndex, type AllowedIds } from './search.ts';
import type { PreparedFilter } from '../../native/index.ts';
import { cachedMatching, preparedIds } from './matching-cache.ts';
import { estimateSelectivity, observeMatchingRows, type SelectivityEstimate } from './selectivity.ts';
import type { FilterStrategy, KnnSettings } from './settings.ts';

type Node = Record<string, any>;

/**
 * auto: below this estimated selectivity the pre-filter is cheaper than post-filtering. Measured on
 * wordnet-use-512 30k (bench/filter-strategies.ts, sql/planner/README.md).
 */
export const AUTO_PRE_BELOW = 0.1;
/** post: its unfiltered searches probe this many times winnow.nprobe lists (like the filtered searches, search.ts). */
export const POST_NPROBE_MULT = 2;
/** post: deepening stops (and the pre-filter answers) once k' would exceed this fraction of the index. */
export const POST_MAX_FRACTION = 0.5;

export interface FilterQuery {
  /** Name qualifying the table's columns (alias or table name), the FROM text, the key column. */
  ref: string;
  fromList: string;
  keyColumn: string;
  /** The WHERE text Postgres evaluates for pre/post (null: none; RLS alone still filters). */
  where: string | null;
  /** Its parse tree (for `in`); null when the text is not one node of the statement's tree. */
  whereNode: Node | null;
  /** Row-level security is enabled on the table: only pre/post see the role's visible rows. */
  rls: boolean;
  /** Distance bound of the query (WHERE col <op> q < r): deepening stops beyond it. */
  radius?: { r: number; inclusive: boolean };
}

export interface FilterOutcome {
  ids: BigInt64Array;
  distances: Float32Array;
  strategy: 'none' | 'pre' | 'post' | 'in';
  /** What was asked for (winnow.filter_strategy) and, when it differs, why this strategy answered. */
  requested: FilterStrategy;
  reason: string | null;
  estimate: SelectivityEstimate | null;
  /** Candidates expected: allowed ids (pre/in: selectivity × rows) or the first k' (post). */
  estimatedCandidates: number | null;
  /** Candidates the search considered: allowed ids (pre/in), or ids checked by Postgres (post). */
  candidates: number;
  /** post: searches run (1 = no deepening). */
  rounds: number;
  /** post: ids its searches were restricted to by the clause's conjuncts on INCLUDE columns (null: none). */
  inAllowed?: number | null;
  ms: { estimate: number; filter: number; search: number; check: number };
}

/** The index's INCLUDE columns (sync/include-store.ts), null when it has none. */
export function includesOf(li: LiveIndex): IncludeStore | null {
  return li.includes ?? null;
}

/** Process-wide counters: Postgres round trips per strategy (tests, benchmarks). */
export const filterStats = { preFilterQueries: 0, postCheckQueries: 0, inIndexFilters: 0 };

/** Cuts a distance-ordered result at the radius (`< r`, or `<= r` when inclusive). */
export function withinRadius(ids: BigInt64Array, distances: Float32Array, radius?: { r: number; inclusive: boolean }): { ids: BigInt64Array; distances: Float32Array } {
  if (!radius) return { ids, distances };
  let n = 0;
  while (n < ids.length && (radius.inclusive ? distances[n] <= radius.r : distances[n] < radius.r)) n++;
  return { ids: ids.subarray(0, n), distances: distances.subarray(0, n) };
}

const beyond = (d: number, radius?: { r: number; inclusive: boolean }) => !!radius && (radius.inclusive ? d > radius.r : d >= radius.r);

/**
 * The WHERE clause compiled for `in` (or why it cannot be), per parse-tree node: the parse of a
 * statement's text is cached, so a prepared statement's Binds with the same filter values bring the
 * same node back and skip compiling it on every query.
 */
const includePlans = new WeakMap<Node, { store: IncludeStore; ref: string; why: string | null; pred: IncludePredicate | null }>();
function includePlan(where: Node, store: IncludeStore, ref: string): { why: string | null; pred: IncludePredicate | null } {
  const hit = includePlans.get(where);
  if (hit && hit.store === store && hit.ref === ref) return hit;
  const pred = compileIncludePredicate(where, store, [ref]);
  const why = pred ? null : includeIneligibility(where, store, [ref]) ?? 'not compilable';
  includePlans.set(where, { store, ref, why, pred });
  return { why, pred };
}

/** A node without its source positions: equal for the same predicate wherever it stands. */
const withoutLocations = (n: unknown): unknown =>
  Array.isArray(n) ? n.map(withoutLocations)
  : n && typeof n === 'object' ? Object.fromEntries(Object.entries(n).filter(([k]) => k !== 'location').map(([k, v]) => [k, withoutLocations(v)]))
  : n;

type IncludePart = { pred: IncludePredicate; key: string; conditions: number; all: boolean };
const includeParts = new WeakMap<Node, { store: IncludeStore; ref: string; part: IncludePart | null }>();

/**
 * The top-level AND conditions of a WHERE clause that `in` could evaluate (on INCLUDE columns), as one
 * predicate, a key naming it for the allowed-id cache, how many there are and whether they are the
 * whole clause; null when there is none. Cached per parse-tree node.
 */
function includeConjuncts(where: Node, store: IncludeStore, ref: string): IncludePart | null {
  const hit = includeParts.get(where);
  if (hit && hit.store === store && hit.ref === ref) return hit.part;
  const conjuncts: Node[] = where.BoolExpr?.boolop === 'AND_EXPR' ? where.BoolExpr.args : [where];
  const preds: IncludePredicate[] = [];
  const nodes: Node[] = [];
  for (const c of conjuncts) {
    const { pred } = includePlan(c, store, ref);
    if (pred) {
      preds.push(pred);
      nodes.push(c);
    }
  }
  const part = preds.length
    ? { pred: preds.length === 1 ? preds[0] : (get: Parameters<IncludePredicate>[0]) => preds.every((p) => p(get)), key: `conjuncts\0${ref}\0${JSON.stringify(withoutLocations(nodes))}`, conditions: nodes.length, all: nodes.length === conjuncts.length }
    : null;
  includeParts.set(where, { store, ref, part });
  return part;
}

/**
 * The `in` strategy alone, synchronously (it needs nothing from Postgres): the outcome when the WHERE
 * clause is eligible and `in` or `auto` is asked for, else null (filteredSearch decides).
 */
export function inIndexSearch(li: LiveIndex, vec: Float32Array, k: number, s: KnnSettings, q: FilterQuery, requested: FilterStrategy): FilterOutcome | null {
  if ((requested !== 'in' && requested !== 'auto') || q.rls || !q.where || !q.whereNode) return null;
  const store = includesOf(li);
  if (!store) return null;
  const { pred } = includePlan(q.whereNode, store, q.ref);
  if (!pred) return null;
  const ms = { estimate: 0, filter: 0, search: 0, check: 0 };
  let t = performance.now();
  filterStats.inIndexFilters++;
  const allowed = cachedMatching(store, `${q.ref}\0${q.where}`, () => store.matching(pred));
  ms.filter = performance.now() - t;
  t = performance.now();
  const r = searchIndex(li, vec, k, s, allowed);
  ms.search = performance.now() - t;
  return { ...withinRadius(r.ids, r.distances, q.radius), strategy: 'in', requested, reason: null, estimate: null, estimatedCandidates: null, candidates: allowedCount(allowed), rounds: 1, ms };
}

export async function filteredSearch(ctx: SessionContext, li: LiveIndex, vec: Float32Array, k: number, s: KnnSettings, q: FilterQuery, requested: FilterStrategy): Promise<FilterOutcome | null> {
  const ms = { estimate: 0, filter: 0, search: 0, check: 0 };
  const out = (o: Omit<FilterOutcome, 'ms' | 'requested'>): FilterOutcome => {
    const r = withinRadius(o.ids, o.distances, q.radius);
    return { ...o, ...r, requested, ms };
  };
  if (q.where) {
    const o = inIndexSearch(li, vec, k, s, q, requested);
    if (o) return o;
  }
  const size = li.index.size;
  if (!q.where && !q.rls) {
    const t = performance.now();
    const r = searchIndex(li, vec, k, s);
    ms.search = performance.now() - t;
    return out({ ...r, strategy: 'none', reason: null, estimate: null, estimatedCandidates: null, candidates: size, rounds: 1 });
  }
  // `in` answered above when eligible; here only why it was not, when it was asked for.
  let strategy: 'pre' | 'post';
  let reason: string | null = null;
  const store = includesOf(li);
  if (requested === 'in') {
    const why = q.rls ? 'row-level security is enabled on the table'
      : !store ? 'the index has no INCLUDE columns'
      : !q.where || !q.whereNode ? 'no WHERE clause to evaluate'
      : includePlan(q.whereNode, store, q.ref).why;
    reason = `in not eligible: ${why}`;
  }
  // Conjuncts on INCLUDE columns restrict post's searches (the whole clause is still checked by Postgres).
  // A clause wholly on INCLUDE columns is `in`'s (above) unless row-level security keeps Postgres in the loop.
  const conj = store && q.whereNode && requested !== 'pre' ? includeConjuncts(q.whereNode, store, q.ref) : null;
  const inPart = conj && (!conj.all || q.rls) ? conj : null;
  let inAllowed: PreparedFilter | null = null;
  if (inPart) {
    const t = performance.now();
    filterStats.inIndexFilters++;
    inAllowed = cachedMatching(store!, inPart.key, () => store!.matching(inPart.pred));
    ms.filter += performance.now() - t;
  }
  let estimate: SelectivityEstimate | null = null;
  if (requested === 'pre' || requested === 'post') strategy = requested;
  else {
    // auto (or `in` that is not eligible): Postgres's estimate decides. Run under the client's role, it
    // includes the row-level security policies' selectivity (`true` when RLS is the only filter).
    const t = performance.now();
    estimate = await estimateSelectivity(ctx, li.meta.relid, q.fromList, q.where ?? 'true', size);
    ms.estimate = performance.now() - t;
    const sel = estimate?.selectivity ?? 1;
    // Among the ids the INCLUDE conjuncts allow, the rest of the clause passes about sel / allowed fraction.
    const passing = inAllowed ? sel / Math.max(1e-9, inAllowed.size / Math.max(1, size)) : 0;
    strategy = sel < AUTO_PRE_BELOW && passing < AUTO_PRE_BELOW ? 'pre' : 'post';
    const why = !estimate ? 'no estimate'
      : passing >= AUTO_PRE_BELOW ? `estimated ${(Math.min(1, passing) * 100).toPrecision(3)}% of the ids the INCLUDE conditions allow pass the rest ≥ ${AUTO_PRE_BELOW * 100}%`
      : `estimated selectivity ${(sel * 100).toPrecision(3)}% ${strategy === 'pre' ? '<' : '≥'} ${AUTO_PRE_BELOW * 100}%`;
    reason = reason ? `${reason}; ${why}` : `auto: ${why}`;
  }

  if (inAllowed && strategy === 'post') {
    reason = `${reason ? reason + '; ' : ''}searches restricted to the ${inAllowed.size} ids allowed by ${inPart!.conditions} condition${inPart!.conditions > 1 ? 's' : ''} on INCLUDE columns`;
  } else inAllowed = null;
  const pool = inAllowed ? inAllowed.size : size;

  const key = `${quoteIdent(q.ref)}.${quoteIdent(q.keyColumn)}`;
  const cond = q.where ? `(${eol(q.where)})` : 'true';
  const from = eol(q.fromList);
  const observe = (rows: number) => observeMatchingRows(ctx, li.meta.relid, q.fromList, q.where ?? 'true', rows);
  const preFilter = async (): Promise<BigInt64Array | null> => {
    const t = performance.now();
    filterStats.preFilterQueries++;
    const f = await ctx.query(`SELECT ${key}::bigint FROM ${from} WHERE ${cond}`);
    ms.filter += performance.now() - t;
    if (f.error) return null; // Postgres reports it on the original statement
    const ids = BigInt64Array.from(f.rows, (row) => BigInt(row[0]!));
    ids.sort();
    observe(ids.length);
    return ids;
  };
  // The same predicate's list, when it comes back unchanged, searched with the filter prepared for it.
  const preparedPre = (ids: BigInt64Array): AllowedIds => preparedIds(li.index, `${q.fromList}\0${cond}`, ids);
  const restricted = (allowed: AllowedIds) => {
    const t = performance.now();
    const r = searchIndex(li, vec, k, s, allowed);
    ms.search += performance.now() - t;
    return r;
  };

  if (strategy === 'pre') {
    const allowed = await preFilter();
    if (!allowed) return null;
    return out({ ...restricted(preparedPre(allowed)), strategy, reason, estimate, estimatedCandidates: estimate ? Math.round(estimate.rows) : null, candidates: allowed.length, rounds: 1 });
  }

  // post: iterative deepening. Among ids the INCLUDE conjuncts allow, the rest of the clause passes
  // about selectivity / (allowed fraction) of them.
  const sel = estimate?.selectivity;
  const passing = sel === undefined ? undefined : inAllowed ? Math.min(1, sel / Math.max(1e-9, pool / Math.max(1, size))) : sel;
  let kp = Math.min(pool, Math.max(2 * k, passing ? Math.ceil((1.5 * k) / Math.max(passing, 1e-6)) : 0));
  const estimatedCandidates = kp;
  // The k passing rows are far down the unfiltered ranking: probe as many lists as other filtered
  // searches do (a search restricted to allowed ids scales its lists itself: search.ts).
  const postSettings: KnnSettings = inAllowed ? s : { nprobe: s.nprobe * POST_NPROBE_MULT, kFactor: s.kFactor };
  const passes = new Map<bigint, boolean>();
  let rounds = 0;
  for (;;) {
    rounds++;
    let t = performance.now();
    const r = searchIndex(li, vec, Math.max(1, kp), postSettings, inAllowed ?? undefined);
    ms.search += performance.now() - t;
    const fresh: bigint[] = [];
    for (const id of r.ids) if (!passes.has(id)) fresh.push(id);
    if (fresh.length) {
      t = performance.now();
      filterStats.postCheckQueries++;
      const c = await ctx.query(`SELECT ${key}::bigint FROM ${from} WHERE ${cond} AND ${key} = ANY('{${fresh.join(',')}}'::bigint[])`);
      ms.check += performance.now() - t;
      if (c.error) return null;
      for (const id of fresh) passes.set(id, false);
      for (const row of c.rows) passes.set(BigInt(row[0]!), true);
    }
    const ids: bigint[] = [];
    const dists: number[] = [];
    for (let i = 0; i < r.ids.length && ids.length < k; i++) {
      if (passes.get(r.ids[i])) {
        ids.push(r.ids[i]);
        dists.push(r.distances[i]);
      }
    }
    const exhausted = r.ids.length < kp || kp >= pool;
    const pastRadius = r.ids.length > 0 && beyond(r.distances[r.ids.length - 1], q.radius);
    if (ids.length >= k || exhausted || pastRadius) {
      // The passing fraction of the candidates, once there are enough of them to mean something.
      if (passes.size >= 100 && !pastRadius) {
        let n = 0;
        for (const v of passes.values()) if (v) n++;
        observe(exhausted ? n : Math.round((n / passes.size) * pool));
      }
      return out({ ids: BigInt64Array.from(ids), distances: Float32Array.from(dists), strategy, reason, estimate, estimatedCandidates, candidates: passes.size, rounds, inAllowed: inAllowed?.size ?? null });
    }
    if (2 * kp > POST_MAX_FRACTION * pool) {
      // Few rows match: the pre-filter's id list is now the cheaper, exact way to finish.
      const allowed = await preFilter();
      if (!allowed) return null;
      reason = `${reason ? reason + '; ' : ''}post-filter found ${ids.length} of ${k} after ${rounds} round${rounds > 1 ? 's' : ''}: finished with pre-filter`;
      return out({ ...restricted(preparedPre(allowed)), strategy: 'pre', reason, estimate, estimatedCandidates, candidates: passes.size + allowed.length, rounds: rounds + 1 });
    }
    kp = Math.min(pool, kp * 2);
  }
}
