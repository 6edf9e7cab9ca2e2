// Allowed-id sets of `in` filters (filter.ts), remembered per index and predicate text while the
// index's INCLUDE values are unchanged: evaluating a predicate over every row costs 20–35 ns a row
// (2–4 ms per 100k rows), and the same filter value tends to come back query after query. Kept as a
// native PreparedFilter, whose bitset over the index's slots is built on its first search and reused
// by the next ones (a plain id array costs one hash lookup per allowed id per search).
import { PreparedFilter } from '../../native/index.ts';
import type { IncludeStore } from '../../sync/include-store.ts';

/** Entries per index; the oldest is dropped first. */
export const MATCHING_CACHE_ENTRIES = 32;

const caches = new WeakMap<IncludeStore, Map<string, { version: number; allowed: PreparedFilter }>>();

export const matchingCacheStats = { hits: 0, misses: 0 };

/** store.matching(pred) for the predicate whose canonical text is `key` (the clause as Postgres would evaluate it). */
export function cachedMatching(store: IncludeStore, key: string, compute: () => BigInt64Array): PreparedFilter {
  let cache = caches.get(store);
  if (!cache) caches.set(store, (cache = new Map()));
  const hit = cache.get(key);
  if (hit && hit.version === store.version) {
    matchingCacheStats.hits++;
    // Most recently used last.
    cache.delete(key);
    cache.set(key, hit);
    return hit.allowed;
  }
  matchingCacheStats.misses++;
  const version = store.version;
  const allowed = new PreparedFilter(compute());
  cache.delete(key);
  cache.set(key, { version, allowed });
  if (cache.size > MATCHING_CACHE_ENTRIES) cache.delete(cache.keys().next().value!);
  return allowed;
}
