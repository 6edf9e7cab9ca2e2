// Every bad input raises a JS Error with a clear message and leaves the index unchanged.
import { describe, expect, it } from 'vitest';
import { VectorIndex } from '../../native/index.ts';
import { lowRank, row, seqIds } from './helpers.ts';

const dim = 16, n = 800;
const data = lowRank(n, dim, 4, 8, 3);

async function trained(): Promise<VectorIndex> {
  const idx = new VectorIndex({ dim, metric: 'cos', nlist: 8, reducedDim: 8 });
  await idx.train(data);
  await idx.add(seqIds(n), data);
  return idx;
}

async function snapshot(idx: VectorIndex) {
  const q = data.subarray(0, 20 * dim);
  return { size: idx.size, stats: idx.stats(), res: await idx.searchBatch(q, { k: 5 }) };
}

describe('bad input', () => {
  it('rejects bad constructor options', () => {
    expect(() => new VectorIndex({ dim: 0, metric: 'l2' })).toThrow(/dim must be a positive integer/);
    expect(() => new VectorIndex({ dim: 1.5, metric: 'l2' })).toThrow(/dim must be a positive integer/);
    expect(() => new VectorIndex({ dim: 8, metric: 'hamming' as 'l2' })).toThrow(/metric must be/);
    expect(() => new VectorIndex({ dim: 64, metric: 'l2', reducedDim: 6 })).toThrow(/multiple of 4/);
    expect(() => new VectorIndex({ dim: 64, metric: 'l2', reducedDim: 1024 })).toThrow(/at most 64/);
    expect(() => new VectorIndex({ dim: 8, metric: 'l2', vectorStorage: 'int8' as 'float16' })).toThrow(/vectorStorage/);
  });

  it('dimension mismatch, NaN/Inf, zero cosine vectors, duplicate ids and wrong types fail without side effects', async () => {
    const idx = await trained();
    const before = await snapshot(idx);
    const good = row(data, dim, 1).slice();
    const nan = good.slice();
    nan[3] = NaN;
    const inf = good.slice();
    inf[0] = -Infinity;
    const ids2 = new BigInt64Array([10_000n, 10_001n]);
    // Batch where the first row is fine and the second bad: nothing may be inserted.
    const mixed = new Float32Array(2 * dim);
    mixed.set(good, 0);
    mixed.set(nan, dim);
    await expect(idx.add(ids2, mixed)).rejects.toThrow(/vector 1 has a non-finite component at 3/);
    await expect(idx.add(ids2, new Float32Array(2 * dim + 1))).rejects.toThrow(/vectors length 33 != ids \(2\) x dim \(16\)/);
    expect(() => idx.addSync(ids2, new Float32Array(dim))).toThrow(/!= ids/);
    expect(() => idx.addSync(new BigInt64Array([1n]), inf)).toThrow(/non-finite/);
    expect(() => idx.addSync(new BigInt64Array([10_000n]), new Float32Array(dim))).toThrow(/all zeros/);
    expect(() => idx.addSync(new BigInt64Array([7n, 7n]), new Float32Array([...good, ...good]))).toThrow(/appears twice/);
    expect(() => idx.addSync(new BigInt64Array([7n]), new Float64Array(dim) as unknown as Float32Array)).toThrow(/Float32Array/);
    expect(() => idx.addSync([7n] as unknown as BigInt64Array, good)).toThrow(/BigInt64Array/);
    expect(() => idx.search(new Float32Array(dim - 1), { k: 5 })).toThrow(/not a positive multiple of dim 16/);
    expect(() => idx.search(new Float32Array(0), { k: 5 })).toThrow(/not a positive multiple/);
    expect(() => idx.search(nan, { k: 5 })).toThrow(/non-finite/);
    await expect(idx.searchBatch(new Float32Array(3 * dim + 2), { k: 5 })).rejects.toThrow(/multiple of dim/);
    await expect(idx.bruteForce(inf, { k: 5 })).rejects.toThrow(/non-finite/);
    expect(() => idx.search(good, { k: 0 })).toThrow(/k must be a positive integer/);
    expect(() => idx.search(good, { k: -3 })).toThrow(/k must be a positive integer/);
    expect(() => idx.search(good, { k: 2.5 })).toThrow(/k must be a positive integer/);
    await expect(idx.bruteForce(good, { k: 0 })).rejects.toThrow(/k must be a positive integer/);
    expect(() => idx.search(good, { k: 5, nprobe: 0 })).toThrow(/nprobe must be a positive integer/);
    expect(() => idx.search(good, { k: 5, kFactor: -1 })).toThrow(/kFactor must be a positive integer/);
    expect(() => idx.search(good, { k: 5, filter: [1n] as unknown as BigInt64Array })).toThrow(/filter must be a BigInt64Array/);
    await expect(idx.train(data)).rejects.toThrow(/already trained/);
    expect(await snapshot(idx)).toEqual(before);
    expect(idx.search(good, { k: 1 }).ids[0]).toBe(1n);
  });

  it('k larger than the collection returns what exists, padded with -1 / Infinity', async () => {
    const idx = new VectorIndex({ dim, metric: 'l2' });
    idx.addSync(seqIds(3), data.subarray(0, 3 * dim));
    const r = idx.search(row(data, dim, 0), { k: 5 });
    expect(Array.from(r.ids)).toEqual([0n, expect.any(BigInt), expect.any(BigInt), -1n, -1n]);
    expect(new Set(Array.from(r.ids.subarray(0, 3)))).toEqual(new Set([0n, 1n, 2n]));
    expect(r.distances[3]).toBe(Infinity);
    const t = await trained();
    const r2 = await t.searchBatch(data.subarray(0, 2 * dim), { k: n + 50, nprobe: 1 });
    expect(r2.ids.length).toBe(2 * (n + 50));
    expect(r2.ids.subarray(0, n).every((id) => id >= 0n)).toBe(true); // probing widens until all n are found
    expect(Array.from(r2.ids.subarray(n, n + 50))).toEqual(new Array(50).fill(-1n));
  });

  it('empty and untrained indexes: search is exact brute force, empty results are all padding', async () => {
    const idx = new VectorIndex({ dim, metric: 'ip' });
    expect(idx.isTrained).toBe(false);
    expect(idx.size).toBe(0);
    const r = idx.search(row(data, dim, 0), { k: 2 });
    expect(Array.from(r.ids)).toEqual([-1n, -1n]);
    expect(Array.from(r.distances)).toEqual([Infinity, Infinity]);
    idx.addSync(seqIds(n), data);
    const approx = await idx.searchBatch(data.subarray(0, 10 * dim), { k: 4 });
    const exact = await idx.bruteForce(data.subarray(0, 10 * dim), { k: 4 });
    expect(approx).toEqual(exact);
  });

  it('training with too few or bad samples fails and leaves the index untrained', async () => {
    const idx = new VectorIndex({ dim, metric: 'l2', nlist: 100 });
    await expect(idx.train(data.subarray(0, 50 * dim))).rejects.toThrow(/need at least nlist \(100\) sample vectors, got 50/);
    await expect(idx.train(new Float32Array(dim * 200 + 1))).rejects.toThrow(/not a positive multiple of dim/);
    const bad = data.slice(0, 200 * dim);
    bad[5] = Infinity;
    await expect(idx.train(bad)).rejects.toThrow(/non-finite/);
    expect(idx.isTrained).toBe(false);
    await idx.train(data);
    expect(idx.isTrained).toBe(true);
  });

  it('train(sample, …, nlist) sets the lists of an index created without nlist; a bad or too large one is refused', async () => {
    const auto = new VectorIndex({ dim, metric: 'l2' });
    await expect(auto.train(data.subarray(0, 50 * dim), undefined, 1, 60)).rejects.toThrow(/need at least nlist \(60\) sample vectors, got 50/);
    await expect(auto.train(data, undefined, 1, 0)).rejects.toThrow(/nlist must be a positive integer/);
    expect(auto.isTrained).toBe(false);
    await auto.train(data.subarray(0, 400 * dim), undefined, 1, 40);
    // From the 400-row sample alone it would have been min(400/39, 0.75·√400) = 10.
    expect(auto.stats().nlist).toBe(40);
    // An index created with nlist keeps it.
    const fixed = new VectorIndex({ dim, metric: 'l2', nlist: 8 });
    await fixed.train(data.subarray(0, 400 * dim), undefined, 1, 40);
    expect(fixed.stats().nlist).toBe(8);
  });

  it('removing unknown ids is a no-op that reports 0', async () => {
    const idx = await trained();
    expect(idx.remove(new BigInt64Array([-5n, 99_999n]))).toBe(0);
    expect(idx.size).toBe(n);
  });
});
