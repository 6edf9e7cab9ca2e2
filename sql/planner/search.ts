// One native search for a planned query: unfiltered, or restricted to a sorted list of allowed ids.
import type { LiveIndex } from '../../sync/index-manager.ts';
import type { KnnSettings } from './settings.ts';

/**
 * Filtered searches over at most this many floats (allowed ids × dim) are exact brute force. Brute
 * force costs ~0.2 ms per million floats, the IVF filter path 0.5–1.3 ms whatever the count: at 10 %
 * allowed, GloVe 341k 6.9 ms brute vs 1.3 ms IVF, wordnet 116k 3.4 vs 0.5 ms (bench/results/hot-path.md).
 */
export const FILTER_EXACT_BELOW_FLOATS = 1_000_000;
export const FILTER_K_FACTOR_MULT = 3;

/**
 * Lists a filtered IVF search probes: winnow.nprobe × √(1 / allowed fraction), between 2× and 6×.
 * Fewer allowed rows per list means the true filtered neighbours sit in more lists; the extra lists
 * cost little next to building the filter. bench/results/hot-path.md (calibration queries): GloVe 341k
 * recall@10 at 1 % allowed 0.949 (2×) → 1.000 (6×), at 10 % 0.984 (2×) → 0.993 (3×).
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

