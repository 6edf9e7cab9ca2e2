// Allowed-id sets of `in` filters (filter.ts), remembered per index and predicate text while the
// index's INCLUDE values are unchanged: evaluating a predicate over every row costs 20–35 ns a row
// (2–4 ms per 100k rows), and the same filter value tends to come back query after query. Kept as a
// native PreparedFilter, whose bitset over the index's slots is built on its first search and reused
// by the next ones (a plain id array costs one hash lookup per allowed id per search).
//
// Pre-filters' id lists come from Postgres at every query (the rows may have changed), but when a
// predicate's list comes back identical, the PreparedFilter built for it serves again (preparedIds).
import { PreparedFilter, type VectorIndex } from '../../native/index.ts';
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

const preCaches = new WeakMap<VectorIndex, Map<string, { ids: BigInt64Array; allowed: PreparedFilter | null }>>();

export const preparedIdsStats = { reused: 0, prepared: 0 };

/**
 * The pre-filter's sorted `ids` for the predicate `key` on `index`: the PreparedFilter made for the
 * same list before, else a new one when this list already came back once (a predicate that recurs,
 * so building the bitset, block masks and compact copy pays), else the list itself. Comparing two
 * lists costs a memcmp; a search with a plain list costs a hash lookup per allowed id.
 */
export function preparedIds(index: VectorIndex, key: string, ids: BigInt64Array): BigInt64Array | PreparedFilter {
  let cache = preCaches.get(index);
  if (!cache) preCaches.set(index, (cache = new Map()));
  const hit = cache.get(key);
  cache.delete(key);
  if (hit && sameIds(hit.ids, ids)) {
    if (!hit.allowed) {
      hit.allowed = new PreparedFilter(ids);
      preparedIdsStats.prepared++;
    } else preparedIdsStats.reused++;
    cache.set(key, hit);
    return hit.allowed;
  }
  cache.set(key, { ids, allowed: null });
  if (cache.size > MATCHING_CACHE_ENTRIES) cache.delete(cache.keys().next().value!);
  return ids;
}

function sameIds(a: BigInt64Array, b: BigInt64Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}
