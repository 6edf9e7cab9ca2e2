// Correctness of the filter/refine search against exact brute force and JS references.
import { describe, expect, it } from 'vitest';
import { VectorIndex, type Metric } from '../../native/index.ts';
import { lowRank, refDistance, row, seqIds } from './helpers.ts';

const dim = 32, n = 3000, nq = 40, k = 10;
// Queries come from the same generator (same seed → same subspace), i.e. in-distribution.
const all = lowRank(n + nq, dim, 8, 20, 1);
const data = all.subarray(0, n * dim);
const queries = all.slice(n * dim);

async function build(metric: Metric, storage: 'float32' | 'float16' = 'float32'): Promise<VectorIndex> {
  const idx = new VectorIndex({ dim, metric, nlist: 16, reducedDim: 8, vectorStorage: storage, seed: 5 });
  await idx.train(data);
  await idx.add(seqIds(n), data);
  return idx;
}

describe.each(['l2', 'ip', 'cos'] as const)('metric %s', (metric) => {
  it('top-k equals brute force when every list is probed and k·kFactor covers the collection', async () => {
    const idx = await build(metric);
    expect(idx.isTrained).toBe(true);
    expect(idx.size).toBe(n);
    const approx = await idx.searchBatch(queries, { k, nprobe: 16, kFactor: 400 });
    const exact = await idx.bruteForce(queries, { k });
    expect(Array.from(approx.ids)).toEqual(Array.from(exact.ids));
    expect(Array.from(approx.distances)).toEqual(Array.from(exact.distances));
    // Synchronous single-query path agrees with the batch path.
    for (let q = 0; q < 5; q++) {
      const one = idx.search(row(queries, dim, q), { k, nprobe: 16, kFactor: 400 });
      expect(Array.from(one.ids)).toEqual(Array.from(exact.ids.subarray(q * k, (q + 1) * k)));
    }
  });

  it('returns pgvector-style distances, ascending', async () => {
    const idx = await build(metric);
    const res = await idx.bruteForce(queries, { k, threads: 2 });
    for (let q = 0; q < nq; q++) {
      for (let j = 0; j < k; j++) {
        const id = Number(res.ids[q * k + j]);
        const ref = refDistance(metric, row(queries, dim, q), row(data, dim, id));
        expect(Math.abs(res.distances[q * k + j] - ref)).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(ref)));
        if (j) expect(res.distances[q * k + j]).toBeGreaterThanOrEqual(res.distances[q * k + j - 1]);
      }
      // And brute force really is the exact top-k (float64 reference ranking).
      const all = Array.from({ length: n }, (_, i) => ({ i, d: refDistance(metric, row(queries, dim, q), row(data, dim, i)) }));
      all.sort((a, b) => a.d - b.d);
      const kth = all[k - 1].d;
      for (let j = 0; j < k; j++) expect(res.distances[q * k + j]).toBeLessThanOrEqual(kth + 1e-4 * Math.max(1, Math.abs(kth)));
    }
  });

  it('default parameters give high recall on clustered data', async () => {
    const idx = await build(metric);
    const approx = await idx.searchBatch(queries, { k });
    const exact = await idx.bruteForce(queries, { k });
    let hit = 0;
    for (let q = 0; q < nq; q++) {
      const truth = new Set(Array.from(exact.ids.subarray(q * k, (q + 1) * k)));
      for (const id of approx.ids.subarray(q * k, (q + 1) * k)) if (truth.has(id)) hit++;
    }
    expect(hit / (nq * k)).toBeGreaterThanOrEqual(0.9);
  });
});

describe('float16 storage', () => {
  it('refines on half-precision vectors with small distance error and equal ranking to its own brute force', async () => {
    const idx = await build('l2', 'float16');
    const approx = await idx.searchBatch(queries, { k, nprobe: 16, kFactor: 400 });
    const exact = await idx.bruteForce(queries, { k });
    expect(Array.from(approx.ids)).toEqual(Array.from(exact.ids));
    for (let i = 0; i < nq * k; i++) {
      const ref = refDistance('l2', row(queries, dim, Math.floor(i / k)), row(data, dim, Number(exact.ids[i])));
      expect(Math.abs(exact.distances[i] - ref)).toBeLessThan(0.01 * ref + 1e-3);
    }
    const s = idx.stats();
    expect(s.filterBytesPerVector).toBe(2); // reducedDim 8 → 4 sub-quantisers × 4 bits
    expect(s.totalBytesPerVector).toBeGreaterThan(dim * 2);
    expect(s.totalBytesPerVector).toBeLessThan(dim * 4);
  });
});

describe('filtered search', () => {
  it('honours the allowed-id list inside the scan and still returns k results (IVF path)', async () => {
    const idx = await build('l2');
    // Every 3rd id: large enough to use the IVF scan, not the brute-force fallback.
    const allowed = seqIds(n).filter((id) => id % 3n === 0n);
    const res = await idx.searchBatch(queries, { k, nprobe: 1, kFactor: 2, filter: allowed, bruteForceBelow: 0 });
    const exact = await idx.bruteForce(queries, { k, filter: allowed });
    let hit = 0;
    for (let i = 0; i < nq * k; i++) {
      expect(res.ids[i] % 3n).toBe(0n);
      expect(res.ids[i]).not.toBe(-1n);
    }
    for (let q = 0; q < nq; q++) {
      const truth = new Set(Array.from(exact.ids.subarray(q * k, (q + 1) * k)));
      for (const id of res.ids.subarray(q * k, (q + 1) * k)) if (truth.has(id)) hit++;
    }
    expect(hit / (nq * k)).toBeGreaterThan(0.5);
    expect(hit).toBeLessThan(nq * k); // really the approximate path (nprobe 1, kFactor 2)
    const full = await idx.searchBatch(queries, { k, nprobe: 16, kFactor: 400, filter: allowed, bruteForceBelow: 0 });
    // The default switches this small collection to exact brute force.
    const dflt = await idx.searchBatch(queries, { k, nprobe: 1, kFactor: 2, filter: allowed });
    expect(Array.from(dflt.ids)).toEqual(Array.from(exact.ids));
    expect(Array.from(full.ids)).toEqual(Array.from(exact.ids));
  });

  it('a selective filter (brute-force fallback) is exact, and fewer than k matches are padded', async () => {
    const idx = await build('cos');
    const allowed = new BigInt64Array([5n, 17n, 999n, 2500n, 123456789n /* unknown id */]);
    const res = idx.search(row(queries, dim, 0), { k, filter: allowed });
    const got = Array.from(res.ids.subarray(0, 4)).sort((a, b) => Number(a - b));
    expect(got).toEqual([5n, 17n, 999n, 2500n]);
    expect(Array.from(res.ids.subarray(4))).toEqual(new Array(6).fill(-1n));
    expect(Array.from(res.distances.subarray(4))).toEqual(new Array(6).fill(Infinity));
    const empty = idx.search(row(queries, dim, 0), { k: 3, filter: new BigInt64Array(0) });
    expect(Array.from(empty.ids)).toEqual([-1n, -1n, -1n]);
  });
});

describe('mutations', () => {
  it('remove, update and compact keep results exact', async () => {
    const idx = await build('l2');
    const removed = idx.remove(seqIds(1000)); // ids 0..999
    expect(removed).toBe(1000);
    expect(idx.remove(seqIds(10))).toBe(0);
    expect(idx.size).toBe(n - 1000);
    expect(idx.stats().deleted).toBe(1000);
    // Update: id 2000 gets the vector of query 0, so it must be query 0's nearest.
    await idx.add(new BigInt64Array([2000n]), row(queries, dim, 0).slice());
    expect(idx.size).toBe(n - 1000);
    const check = async () => {
      const approx = await idx.searchBatch(queries, { k, nprobe: 16, kFactor: 400 });
      const exact = await idx.bruteForce(queries, { k });
      expect(Array.from(approx.ids)).toEqual(Array.from(exact.ids));
      for (const id of approx.ids) expect(id >= 1000n).toBe(true);
      expect(approx.ids[0]).toBe(2000n);
      expect(approx.distances[0]).toBe(0);
      return approx;
    };
    const before = await check();
    await idx.compact();
    expect(idx.stats().deleted).toBe(0);
    expect(idx.size).toBe(n - 1000);
    const after = await check();
    expect(Array.from(after.ids)).toEqual(Array.from(before.ids));
    expect(Array.from(after.distances)).toEqual(Array.from(before.distances));
  });

  it('vectors added before training are searchable (brute force) and encoded by train()', async () => {
    const idx = new VectorIndex({ dim, metric: 'l2', nlist: 8, reducedDim: 8 });
    idx.addSync(seqIds(500), data.subarray(0, 500 * dim));
    expect(idx.isTrained).toBe(false);
    const pre = idx.search(row(data, dim, 7), { k: 1 });
    expect(pre.ids[0]).toBe(7n);
    const phases = new Set<string>();
    await idx.train(data, (phase, done, total) => {
      phases.add(phase);
      expect(done).toBeLessThanOrEqual(total);
    });
    // Progress reaches JS through its own async queue, which may be drained after the promise settles.
    for (let i = 0; i < 100 && !(phases.has('ivf') && phases.has('encode')); i++) await new Promise((r) => setTimeout(r, 10));
    expect(phases.has('ivf')).toBe(true);
    expect(phases.has('encode')).toBe(true);
    await idx.add(seqIds(n - 500, 500), data.subarray(500 * dim));
    const approx = await idx.searchBatch(queries, { k, nprobe: 8, kFactor: 400 });
    const exact = await idx.bruteForce(queries, { k });
    expect(Array.from(approx.ids)).toEqual(Array.from(exact.ids));
  });
});

describe('search parameters (HAKES decoupling)', () => {
  it('search params can be replaced without re-encoding and reset to the insert params', async () => {
    const idx = await build('l2');
    const ins = idx.getParams('insert')!;
    const sp = idx.getParams('search')!;
    expect(Array.from(sp.centroids)).toEqual(Array.from(ins.centroids));
    expect(ins.transform.length).toBe(8 * dim);
    expect(ins.centroids.length).toBe(16 * 8);
    expect(ins.codebooks.length).toBe(4 * 16 * 2);
    const base = idx.search(row(queries, dim, 1), { k, nprobe: 1, kFactor: 1 });
    // Scrambled probe centroids send nprobe=1 to a different list: results change,
    // stored codes (insert params) do not.
    const scrambled = { ...sp, centroids: sp.centroids.map((v, i) => sp.centroids[(i + 8 * 5) % sp.centroids.length]) };
    idx.setSearchParams(scrambled);
    expect(Array.from(idx.getParams('search')!.centroids)).toEqual(Array.from(scrambled.centroids));
    expect(Array.from(idx.getParams('insert')!.centroids)).toEqual(Array.from(ins.centroids));
    const changed = idx.search(row(queries, dim, 1), { k, nprobe: 1, kFactor: 1 });
    expect(Array.from(changed.ids)).not.toEqual(Array.from(base.ids));
    // Exhaustive settings are unaffected by which centroids order the probes.
    const ex = await idx.searchBatch(queries, { k, nprobe: 16, kFactor: 400 });
    expect(Array.from(ex.ids)).toEqual(Array.from((await idx.bruteForce(queries, { k })).ids));
    expect(() => idx.setSearchParams({ ...sp, centroids: new Float32Array(3) })).toThrow(/shapes must match/);
    expect(() => idx.setSearchParams({ ...sp, mean: new Float32Array(dim).fill(NaN) })).toThrow(/non-finite/);
    idx.resetSearchParams();
    expect(Array.from(idx.search(row(queries, dim, 1), { k, nprobe: 1, kFactor: 1 }).ids)).toEqual(Array.from(base.ids));
  });
});
