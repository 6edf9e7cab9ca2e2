// Distance thresholds: `WHERE col <op> q < r` (or <=).
//
// With ORDER BY distance LIMIT k the top-k search answers it and the result is cut at r (the k nearest
// rows within r are the first of the k nearest). Without that shape it is a range search: search with
// a growing k until the k-th distance is beyond r or the index has no more rows; an untrained index
// (below the training threshold) answers every search exactly, so its range result is exact.
import type { LiveIndex } from '../../sync/index-manager.ts';
import { POST_NPROBE_MULT, withinRadius } from './filter.ts';
import type { Radius } from './recognize.ts';
import { searchIndex } from './search.ts';
import type { KnnSettings } from './settings.ts';

/** First k of a range search; k grows ×RANGE_GROWTH per round. */
export const RANGE_FIRST_K = 64;
export const RANGE_GROWTH = 4;

export interface RangeResult {
  ids: BigInt64Array;
  distances: Float32Array;
  /** Searches run and the last k asked for. */
  rounds: number;
  k: number;
}

export function rangeSearch(li: LiveIndex, vec: Float32Array, radius: Radius, s: KnnSettings): RangeResult {
  const size = li.index.size;
  let k = Math.max(1, Math.min(size, RANGE_FIRST_K));
  let rounds = 0;
  // Deep searches: probe as many lists as the post-filter does.
  const deep: KnnSettings = { nprobe: s.nprobe * POST_NPROBE_MULT, kFactor: s.kFactor };
  for (;;) {
    rounds++;
    const r = searchIndex(li, vec, k, deep);
    const n = r.ids.length;
    const last = n ? r.distances[n - 1] : Infinity;
    const beyond = radius.inclusive ? last > radius.r : last >= radius.r;
    if (n < k || k >= size || beyond) return { ...withinRadius(r.ids, r.distances, radius), rounds, k };
    k = Math.min(size, k * RANGE_GROWTH);
  }
}
