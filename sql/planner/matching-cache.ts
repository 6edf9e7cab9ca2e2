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

/** An owner's entries (an index's, an INCLUDE store's), most recently used last. */
function entriesOf<O extends object, V>(all: WeakMap<O, Map<string, V>>, owner: O): Map<string, V> {
  let cache = all.get(owner);
  if (!cache) all.set(owner, (cache = new Map()));
  return cache;
}

/** Stores `value` as the most recently used entry, dropping the oldest beyond MATCHING_CACHE_ENTRIES. */
function remember<V>(cache: Map<string, V>, key: string, value: V): void {
  cache.delete(key);
  cache.set(key, value);
  if (cache.size > MATCHING_CACHE_ENTRIES) cache.delete(cache.keys().next().value!);
}

const caches = new WeakMap<IncludeStore, Map<string, { version: number; allowed: PreparedFilter }>>();

export const matchingCacheStats = { hits: 0, misses: 0 };

/** store.matching(pred) for the predicate whose canonical text is `key` (the clause as Postgres would evaluate it). */
export function cachedMatching(store: IncludeStore, key: string, compute: () => BigInt64Array): PreparedFilter {
  const cache = entriesOf(caches, store);
  const hit = cache.get(key);
  if (hit && hit.version === store.version) {
    matchingCacheStats.hits++;
    remember(cache, key, hit);
    return hit.allowed;
  }
  matchingCacheStats.misses++;
  const version = store.version;
  const allowed = new PreparedFilter(compute());
  remember(cache, key, { version, allowed });
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
  const cache = entriesOf(preCaches, index);
  const hit = cache.get(key);
  if (hit && sameIds(hit.ids, ids)) {
    if (!hit.allowed) {
      hit.allowed = new PreparedFilter(ids);
      preparedIdsStats.prepared++;
    } else preparedIdsStats.reused++;
    remember(cache, key, hit);
    return hit.allowed;
  }
  remember(cache, key, { ids, allowed: null });
  return ids;
}

function sameIds(a: BigInt64Array, b: BigInt64Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}
