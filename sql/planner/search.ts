// One native search for a planned query: unfiltered, or restricted to a sorted list of allowed ids.
import type { LiveIndex } from '../../sync/index-manager.ts';
import type { KnnSettings } from './settings.ts';

/**
 * Filtered searches over at most this many floats (allowed ids × dim) are exact brute force. Measured
 * (native search, nprobe 80, k' = 480): glove 341k × 100 at 10 % allowed, brute force 5.0 ms vs IVF
 * 1.8 ms; wordnet 116k × 512 at 3 %, 1.04 vs 0.43 ms; at 1 % both ways ~0.2 ms. Recall@10 stays ≥ 0.995
 * at every selectivity (test/planner/recall.test.ts).
 */
export const FILTER_EXACT_BELOW_FLOATS = 1_000_000;
export const FILTER_K_FACTOR_MULT = 3;

/**
 * Lists a filtered IVF search probes: winnow.nprobe × √(1 / allowed fraction), between 2× and 6×.
 * Fewer allowed rows per list means the true filtered neighbours sit in more lists. Measured on
 * GloVe 341k (queries of bench:e2e's calibration half only): at 10 % allowed recall@10 0.984 at 2×,
 * 0.993 at 3×, at 3 % 0.969 at 2× and 1.000 at 6×, in about the same time (building the filter costs
 * more than the extra lists).
 */
export function filteredNprobe(nprobe: number, allowed: number, indexed: number): number {
  const mult = Math.min(6, Math.max(2, Math.sqrt(Math.max(1, indexed) / Math.max(1, allowed))));
  return Math.ceil(nprobe * mult);
}

/** Process-wide counters (tests and SHOW winnow.index_status). */
export const plannerStats = { nativeSearches: 0, exactFallbacks: 0, indexOnly: 0 };

export function searchIndex(li: LiveIndex, vec: Float32Array, k: number, s: KnnSettings, filter?: BigInt64Array): { ids: BigInt64Array; distances: Float32Array } {
  plannerStats.nativeSearches++;
  if (k === 0 || (filter && filter.length === 0)) return { ids: new BigInt64Array(0), distances: new Float32Array(0) };
  // Filtered: the IVF filter stage ranks fewer true neighbours per probed list, so refine more
  // candidates, and answer exactly (brute force over the allowed ids) up to FILTER_EXACT_BELOW ids.
  const r = filter
    ? li.index.search(vec, { k, nprobe: filteredNprobe(s.nprobe, filter.length, li.index.size), kFactor: s.kFactor * FILTER_K_FACTOR_MULT, filter, bruteForceBelow: Math.floor(FILTER_EXACT_BELOW_FLOATS / li.meta.dim) })
    : li.index.search(vec, { k, nprobe: s.nprobe, kFactor: s.kFactor });
  let n = r.ids.length;
  while (n > 0 && r.ids[n - 1] === -1n) n--;
  return { ids: r.ids.subarray(0, n), distances: r.distances.subarray(0, n) };
}

