// Selectivity of a WHERE clause as Postgres's planner estimates it, for winnow.filter_strategy = auto:
// `EXPLAIN (FORMAT JSON) SELECT 1 FROM <from> WHERE <p>` gives the estimated matching rows (the top
// node's "Plan Rows"); divided by the rows the vector index holds it is the fraction of candidates
// expected to pass. Cached per database, table and predicate text for a short while (the estimate
// depends on statistics, which ANALYZE/autovacuum refresh, and costs a planner run: ~0.1–0.5 ms).
import type { SessionContext } from '../../server/session.ts';

export interface SelectivityEstimate {
  /** Estimated matching rows / rows in the index, clamped to [0, 1]. */
  selectivity: number;
  /** Postgres's estimated matching rows. */
  rows: number;
  /** Answered from the cache. */
  cached: boolean;
  ms: number;
}

/** Estimates older than this are asked again. */
export const SELECTIVITY_TTL_MS = 30_000;
const CAPACITY = 2048;
const cache = new Map<string, { rows: number; at: number }>();
/** EXPLAIN round trips made (tests). */
export const estimateQueries = { count: 0 };

/**
 * Postgres's estimate for `SELECT 1 FROM fromList WHERE where` on the session's connection (its role,
 * search_path and statistics), or null when EXPLAIN fails (Postgres then reports the error on the
 * statement itself).
 */
export async function estimateSelectivity(ctx: SessionContext, relid: number, fromList: string, where: string, total: number): Promise<SelectivityEstimate | null> {
  const t0 = performance.now();
  const key = `${ctx.params.database ?? ''}\0${relid}\0${fromList}\0${where}`;
  const hit = cache.get(key);
  let rows: number;
  let cached = false;
  if (hit && performance.now() - hit.at < SELECTIVITY_TTL_MS) {
    rows = hit.rows;
    cached = true;
  } else {
    estimateQueries.count++;
    const r = await ctx.query(`EXPLAIN (FORMAT JSON) SELECT 1 FROM ${fromList} WHERE ${where}`);
    if (r.error || !r.rows.length || r.rows[0][0] === null) return null;
    try {
      rows = Number(JSON.parse(r.rows[0][0])[0].Plan['Plan Rows']);
    } catch {
      return null;
    }
    if (!Number.isFinite(rows)) return null;
    cache.delete(key);
    cache.set(key, { rows, at: performance.now() });
    if (cache.size > CAPACITY) cache.delete(cache.keys().next().value as string);
  }
  return { selectivity: total > 0 ? Math.min(1, Math.max(0, rows / total)) : 1, rows, cached, ms: performance.now() - t0 };
}

/** Test hook: forget every estimate. */
export function clearSelectivityCache(): void {
  cache.clear();
}
