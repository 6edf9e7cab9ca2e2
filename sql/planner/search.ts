// One native search for a planned query: unfiltered, or restricted to a sorted list of allowed ids.
import { PreparedFilter } from '../../native/index.ts';
import type { LiveIndex } from '../../sync/index-manager.ts';
import type { KnnSettings } from './settings.ts';

/**
 * Filtered searches over at most this many floats (allowed ids × dim) are exact brute force. Brute
 * force costs ~0.2 ms per million floats, the IVF filter path 0.5–1.3 ms whatever the count: at 10 %
 * allowed, GloVe 341k 6.9 ms brute vs 1.3 ms IVF, wordnet 116k 3.4 vs 0.5 ms (bench/results/hot-path.md).
 */
export const FILTER_EXACT_BELOW_FLOATS = 1_000_000;
/**
 * Lists and candidates of a filtered IVF search, from the allowed fraction f of the indexed rows:
 *   nprobe  × √(1/f), between 1× and 6×: fewer allowed rows per list means the true filtered
 *           neighbours sit in more lists (clustered filters more so);
 *   kFactor × √(0.1/f), between 1× and 3×: refining more only pays when few allowed rows compete in
 *           the probed lists; from 10 % on, recall is limited by the lists probed, not by the candidates.
 * Chosen on calibration queries (bench/results/hot-path.md, wordnet-use-512 with bench:e2e's tag
 * predicates, recall@10 at nprobe 40 / kFactor 16 × lists × / candidates ×): 10 % 0.966/0.989/0.997
 * at lists 2/3/4 whatever the candidates; 3 % 0.969 at lists 2 with candidates 1–3, 0.988 at lists 3;
 * 21 % 0.977/0.990 at lists 1/1.5; 52 % 0.992 at lists 1; only at 1 % (IVF forced; the planner answers
 * exactly there) do candidates matter (0.942/0.954/0.973 at 1/2/3, lists 3). At 10 % candidates ×1
 * instead of ×3 halves the refine and costs no recall.
 */
export function filteredSearchSettings(s: KnnSettings, allowed: number, indexed: number): KnnSettings {
  const f = Math.max(1, allowed) / Math.max(1, indexed);
  const lists = Math.min(6, Math.max(1, Math.sqrt(1 / f)));
  const cands = Math.min(3, Math.max(1, Math.sqrt(0.1 / f)));
  return { nprobe: Math.ceil(s.nprobe * lists), kFactor: Math.ceil(s.kFactor * cands) };
}

/** Lists a filtered IVF search probes (filteredSearchSettings). */
export function filteredNprobe(nprobe: number, allowed: number, indexed: number): number {
  return filteredSearchSettings({ nprobe, kFactor: 1 }, allowed, indexed).nprobe;
}

/** Process-wide counters (tests and SHOW winnow.index_status). */
export const plannerStats = { nativeSearches: 0, exactFallbacks: 0, indexOnly: 0 };

/** Allowed ids: a sorted id list (pre-filter), or a set prepared once for repeated searches (`in`, matching-cache.ts). */
export type AllowedIds = BigInt64Array | PreparedFilter;
export const allowedCount = (a: AllowedIds): number => (a instanceof PreparedFilter ? a.size : a.length);

export function searchIndex(li: LiveIndex, vec: Float32Array, k: number, s: KnnSettings, filter?: AllowedIds): { ids: BigInt64Array; distances: Float32Array } {
  plannerStats.nativeSearches++;
  const allowed = filter ? allowedCount(filter) : 0;
  if (k === 0 || (filter && allowed === 0)) return { ids: new BigInt64Array(0), distances: new Float32Array(0) };
  // Filtered: more lists (and, for few allowed ids, more candidates: filteredSearchSettings), and
  // exactly (brute force over the allowed ids) up to FILTER_EXACT_BELOW_FLOATS.
  const r = filter
    ? li.index.search(vec, { k, ...filteredSearchSettings(s, allowed, li.index.size), filter, bruteForceBelow: Math.floor(FILTER_EXACT_BELOW_FLOATS / li.meta.dim) })
    : li.index.search(vec, { k, nprobe: s.nprobe, kFactor: s.kFactor });
  let n = r.ids.length;
  while (n > 0 && r.ids[n - 1] === -1n) n--;
  return { ids: r.ids.subarray(0, n), distances: r.distances.subarray(0, n) };
}

