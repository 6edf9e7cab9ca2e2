// Selectivity of a WHERE clause as Postgres's planner estimates it, for winnow.filter_strategy = auto:
// `EXPLAIN (FORMAT JSON) SELECT 1 FROM <from> WHERE <p>` gives the estimated matching rows (the top
// node's "Plan Rows"); divided by the rows the vector index holds it is the fraction of candidates
// expected to pass. Cached per database, role, table and predicate text for a short while (the estimate
// depends on statistics, which ANALYZE/autovacuum refresh, and costs a planner run: ~0.1–0.5 ms).
// What a query then observes replaces the estimate in the cache (a pre-filter counts the matching
// rows exactly; a post-filter sees the fraction of candidates that passed), so a misestimate — e.g. a
// table not analysed yet, where Postgres guesses 0.5 % for any equality — corrects itself.
import type { SessionContext } from '../../server/session.ts';
import { eol } from './recognize.ts';

export interface SelectivityEstimate {
  /** Estimated matching rows / rows in the index, clamped to [0, 1]. */
  selectivity: number;
  /** Postgres's estimated matching rows. */
  rows: number;
  /** Answered from the cache. */
  cached: boolean;
  /** planner: Postgres's estimate; observed: counted by an earlier query with this predicate. */
  source: 'planner' | 'observed';
  ms: number;
}

/** Estimates older than this are asked again. */
export const SELECTIVITY_TTL_MS = 30_000;
const CAPACITY = 2048;
const cache = new Map<string, { rows: number; at: number; source: 'planner' | 'observed' }>();
/** EXPLAIN round trips made (tests). */
export const estimateQueries = { count: 0 };

/**
 * Postgres's estimate for `SELECT 1 FROM fromList WHERE where` on the session's connection (its role,
 * search_path and statistics), or null when EXPLAIN fails (Postgres then reports the error on the
 * statement itself).
 */
export async function estimateSelectivity(ctx: SessionContext, relid: number, fromList: string, where: string, total: number): Promise<SelectivityEstimate | null> {
  const t0 = performance.now();
  const key = cacheKey(ctx, relid, fromList, where);
  const hit = cache.get(key);
  let rows: number;
  let cached = false;
  let source: 'planner' | 'observed' = 'planner';
  if (hit && performance.now() - hit.at < SELECTIVITY_TTL_MS) {
    rows = hit.rows;
    cached = true;
    source = hit.source;
  } else {
    estimateQueries.count++;
    const r = await ctx.query(`EXPLAIN (FORMAT JSON) SELECT 1 FROM ${eol(fromList)} WHERE ${eol(where)}`);
    if (r.error || !r.rows.length || r.rows[0][0] === null) return null;
    try {
      rows = Number(JSON.parse(r.rows[0][0])[0].Plan['Plan Rows']);
    } catch {
      return null;
    }
    if (!Number.isFinite(rows)) return null;
    remember(key, rows, 'planner');
  }
  return { selectivity: total > 0 ? Math.min(1, Math.max(0, rows / total)) : 1, rows, cached, source, ms: performance.now() - t0 };
}

/** What a query counted: the matching rows (exact after a pre-filter, extrapolated after a post-filter). */
export function observeMatchingRows(ctx: SessionContext, relid: number, fromList: string, where: string, rows: number): void {
  remember(cacheKey(ctx, relid, fromList, where), rows, 'observed');
}

/** Per database and role (row-level security makes the matching rows depend on who asks). */
const cacheKey = (ctx: SessionContext, relid: number, fromList: string, where: string) => `${ctx.params.database ?? ''}\0${ctx.params.user ?? ''}\0${relid}\0${fromList}\0${where}`;

function remember(key: string, rows: number, source: 'planner' | 'observed'): void {
  cache.delete(key);
  cache.set(key, { rows, at: performance.now(), source });
  if (cache.size > CAPACITY) cache.delete(cache.keys().next().value as string);
}

/** Test hook: forget every estimate. */
export function clearSelectivityCache(): void {
  cache.clear();
}
