// PreparedFilter: an allowed-id set whose bitset is built once per index contents and reused. Every
// search with it must equal the same search with the ids as a plain BigInt64Array (built afresh per
// query), also after rows are added, updated, removed, compacted, and on another index.
import { describe, expect, it } from 'vitest';
import { PreparedFilter, VectorIndex, type SearchOptions } from '../../native/index.ts';
import { lowRank, row, seqIds } from './helpers.ts';

const dim = 32, n = 3000, nq = 20, k = 10;
const all = lowRank(n + nq + 500, dim, 8, 20, 7);
const data = all.subarray(0, n * dim);
const queries = all.slice(n * dim, (n + nq) * dim);
const extra = all.slice((n + nq) * dim); // 500 more rows

async function build(): Promise<VectorIndex> {
  const idx = new VectorIndex({ dim, metric: 'l2', nlist: 16, reducedDim: 8, seed: 3 });
  await idx.train(data);
  await idx.add(seqIds(n), data);
  return idx;
}

/** Every query through the sync and the async search, IVF path and default (brute force for small sets). */
async function same(idx: VectorIndex, prepared: PreparedFilter, plain: BigInt64Array): Promise<void> {
  const variants: Omit<SearchOptions, 'filter'>[] = [
    { k, nprobe: 2, kFactor: 3, bruteForceBelow: 0 },
    { k, nprobe: 2, kFactor: 3 },
  ];
  for (const o of variants) {
    const a = await idx.searchBatch(queries, { ...o, filter: prepared });
    const b = await idx.searchBatch(queries, { ...o, filter: plain });
    expect(Array.from(a.ids)).toEqual(Array.from(b.ids));
    expect(Array.from(a.distances)).toEqual(Array.from(b.distances));
    for (let q = 0; q < 3; q++) {
      const s = idx.search(row(queries, dim, q), { ...o, filter: prepared });
      expect(Array.from(s.ids)).toEqual(Array.from(b.ids.subarray(q * k, (q + 1) * k)));
    }
  }
  const ea = await idx.bruteForce(queries, { k, filter: prepared });
  const eb = await idx.bruteForce(queries, { k, filter: plain });
  expect(Array.from(ea.ids)).toEqual(Array.from(eb.ids));
}

const every = (ids: BigInt64Array, m: bigint) => ids.filter((id) => id % m === 0n);

describe('PreparedFilter', () => {
  it('gives the same results as the plain id array and builds its bitset once', async () => {
    const idx = await build();
    const plain = every(seqIds(n), 3n);
    const f = new PreparedFilter(plain);
    expect(f.size).toBe(plain.length);
    await same(idx, f, plain);
    for (let i = 0; i < 20; i++) idx.search(row(queries, dim, i % nq), { k, filter: f, bruteForceBelow: 0 });
    expect(f.builds()).toEqual({ full: 1, extended: 0 });
  });

  it('copies the allowed entries of each list once when they are at most half the rows', async () => {
    const idx = await build();
    const before = PreparedFilter.compactBytes();
    const sparse = every(seqIds(n), 10n);
    const f = new PreparedFilter(sparse);
    await same(idx, f, sparse);
    expect(f.compactions()).toBe(1);
    // Codes (4 bytes an entry at reducedDim 8) and ids of the 300 allowed entries, less those in each
    // of the 16 lists' last, partial block, which stays in the list.
    const bytes = PreparedFilter.compactBytes() - before;
    expect(bytes).toBeGreaterThan(150 * 8);
    expect(bytes).toBeLessThan(300 * 8 + 16 * 32 * 4);
    // Rows appended after the copy are found through the list tails; removed ones never come back.
    const plain = every(seqIds(n + 500), 10n);
    const g = new PreparedFilter(plain);
    await same(idx, g, plain);
    await idx.add(seqIds(500, n), extra);
    idx.remove(every(seqIds(n), 20n));
    await same(idx, g, plain);
    const r = await idx.searchBatch(queries, { k, nprobe: 16, kFactor: 50, filter: g, bruteForceBelow: 0 });
    const exact = await idx.bruteForce(queries, { k, filter: plain });
    expect(Array.from(r.ids)).toEqual(Array.from(exact.ids));
    expect(g.compactions()).toBe(1);
    // A filter allowing most rows keeps block masks only.
    const dense = seqIds(n).filter((id) => id % 10n !== 0n);
    const h = new PreparedFilter(dense);
    await same(idx, h, dense);
    expect(h.compactions()).toBe(0);
  });

  it('copies the ids: changing the array afterwards changes nothing', async () => {
    const idx = await build();
    const ids = every(seqIds(n), 5n);
    const f = new PreparedFilter(ids);
    const before = idx.search(row(queries, dim, 0), { k, filter: f, bruteForceBelow: 0 });
    ids.fill(1n);
    const after = idx.search(row(queries, dim, 0), { k, filter: f, bruteForceBelow: 0 });
    expect(Array.from(after.ids)).toEqual(Array.from(before.ids));
    for (const id of after.ids) expect(id % 5n).toBe(0n);
  });

  it('sees rows added and updated after it was built (extended, not rebuilt)', async () => {
    const idx = await build();
    // Allowed: multiples of 3 up to n + 500, so some allowed ids arrive later.
    const plain = every(seqIds(n + 500), 3n);
    const f = new PreparedFilter(plain);
    await same(idx, f, plain);
    await idx.add(seqIds(500, n), extra);
    // Updates: allowed rows moved onto the queries, a disallowed one too (must stay out).
    const upd = new Float32Array(3 * dim);
    upd.set(row(queries, dim, 0), 0);
    upd.set(row(queries, dim, 1), dim);
    upd.set(row(queries, dim, 2), 2 * dim);
    await idx.add(new BigInt64Array([30n, 33n, 31n]), upd);
    await same(idx, f, plain);
    const r = idx.search(row(queries, dim, 0), { k, filter: f, bruteForceBelow: 0 });
    expect(r.ids[0]).toBe(30n);
    expect(Array.from(r.ids)).not.toContain(31n);
    expect(Array.from(idx.search(row(queries, dim, 1), { k, filter: f, bruteForceBelow: 0 }).ids)).toContain(33n);
    expect(f.builds().full).toBe(1);
    expect(f.builds().extended).toBeGreaterThanOrEqual(1);
  });

  it('never returns removed rows, and a removed id added again is found', async () => {
    const idx = await build();
    const plain = every(seqIds(n), 2n);
    const f = new PreparedFilter(plain);
    await same(idx, f, plain);
    expect(idx.remove(every(seqIds(n), 4n))).toBe(750);
    await same(idx, f, plain);
    const r = await idx.searchBatch(queries, { k, nprobe: 2, kFactor: 3, filter: f, bruteForceBelow: 0 });
    for (const id of r.ids) {
      expect(id % 2n).toBe(0n);
      expect(id % 4n).not.toBe(0n);
    }
    await idx.add(new BigInt64Array([8n]), row(queries, dim, 4));
    expect(idx.search(row(queries, dim, 4), { k, filter: f, bruteForceBelow: 0 }).ids[0]).toBe(8n);
    await same(idx, f, plain);
  });

  it('rebuilds after compact() (internal ids renumbered) and on another index', async () => {
    const idx = await build();
    const plain = every(seqIds(n), 3n);
    const f = new PreparedFilter(plain);
    await same(idx, f, plain);
    idx.remove(seqIds(1500));
    await idx.compact();
    await same(idx, f, plain);
    expect(f.builds().full).toBe(2);
    const other = await build();
    await same(other, f, plain);
    await same(idx, f, plain); // back and forth: correct each time
    // An untrained index (exact search) too.
    const raw = new VectorIndex({ dim, metric: 'l2' });
    await raw.add(seqIds(n), data);
    await same(raw, f, plain);
  });

  it('an empty set allows nothing; unknown ids are ignored', async () => {
    const idx = await build();
    const empty = idx.search(row(queries, dim, 0), { k: 3, filter: new PreparedFilter(new BigInt64Array(0)) });
    expect(Array.from(empty.ids)).toEqual([-1n, -1n, -1n]);
    const f = new PreparedFilter(new BigInt64Array([5n, 5n, 17n, 123456789n]));
    const r = idx.search(row(queries, dim, 0), { k: 4, filter: f });
    expect(Array.from(r.ids.subarray(0, 2)).sort((a, b) => Number(a - b))).toEqual([5n, 17n]);
    expect(Array.from(r.ids.subarray(2))).toEqual([-1n, -1n]);
    expect(() => new PreparedFilter([1n] as unknown as BigInt64Array)).toThrow(TypeError);
  });

  it('concurrent searches with one filter while rows are added stay within the set', async () => {
    const idx = await build();
    const plain = every(seqIds(n + 500), 3n);
    const f = new PreparedFilter(plain);
    const searches: Promise<{ ids: BigInt64Array }>[] = [];
    for (let b = 0; b < 10; b++) {
      searches.push(idx.searchBatch(queries, { k, nprobe: 2, kFactor: 3, filter: f, bruteForceBelow: 0, threads: 2 }));
      await idx.add(seqIds(50, n + b * 50), extra.subarray(b * 50 * dim, (b + 1) * 50 * dim));
    }
    for (const r of await Promise.all(searches)) for (const id of r.ids) expect(id % 3n).toBe(0n);
    await same(idx, f, plain);
  });

  it('follows train(): used before (exact search) and after (IVF with its block masks)', async () => {
    const idx = new VectorIndex({ dim, metric: 'l2', nlist: 16, reducedDim: 8, seed: 3 });
    await idx.add(seqIds(n), data);
    const plain = every(seqIds(n), 3n);
    const f = new PreparedFilter(plain);
    await same(idx, f, plain);
    await idx.train(data);
    await same(idx, f, plain);
    expect(f.builds().full).toBe(2);
  });
});
