// Readers and writers hammer one index concurrently (libuv pool threads + the JS
// thread) for WINNOW_STRESS_SECONDS (default 20); then every live id must be found by
// its own vector and no removed id may come back. Also run under ASan/TSan by
// native/scripts/sanitize.sh.
import { describe, expect, it } from 'vitest';
import { VectorIndex } from '../../native/index.ts';
import { lowRank, rng, tempDir } from './helpers.ts';

const seconds = Number(process.env.WINNOW_STRESS_SECONDS ?? 20);
const dim = 32;

describe('concurrent readers and writers', () => {
  it(`stays consistent over ${seconds} s of mixed load`, { timeout: Number(process.env.WINNOW_STRESS_TIMEOUT_S ?? seconds + 90) * 1000 }, async () => {
    const pool = lowRank(40_000, dim, 12, 40, 21, 0.2);
    let next = 0;
    const fresh = () => pool.slice((next % 40_000) * dim, ((next++ % 40_000) + 1) * dim).map((v, i) => v + (next >> 15) * 0.01 * ((i % 3) - 1));
    const idx = new VectorIndex({ dim, metric: 'l2', nlist: 32, reducedDim: 16, seed: 3 });
    await idx.train(pool.subarray(0, 5000 * dim));
    const model = new Map<bigint, Float32Array>(); // what the index must contain at the end
    const everInserted = new Set<bigint>();

    async function addBatch(ids: bigint[]) {
      const vecs = new Float32Array(ids.length * dim);
      const rows = ids.map(() => fresh());
      rows.forEach((r, i) => vecs.set(r, i * dim));
      ids.forEach((id) => everInserted.add(id));
      await idx.add(BigInt64Array.from(ids), vecs, 1);
      ids.forEach((id, i) => model.set(id, rows[i]));
    }

    const deadline = Date.now() + seconds * 1000;
    const counts = { adds: 0, updates: 0, removes: 0, searches: 0, compacts: 0, brute: 0 };
    const problems: string[] = [];

    const writer = async (lane: number) => {
      const r = rng(100 + lane);
      let id = BigInt(lane) * 1_000_000n;
      await addBatch(Array.from({ length: 2000 }, () => id++));
      while (Date.now() < deadline) {
        await addBatch(Array.from({ length: 100 }, () => id++));
        counts.adds += 100;
        const mine = [...model.keys()].filter((k) => k / 1_000_000n === BigInt(lane));
        const upd = new Set<bigint>();
        for (let i = 0; i < 20 && mine.length; i++) upd.add(mine[Math.floor(r() * mine.length)]);
        await addBatch([...upd]);
        counts.updates += upd.size;
        const del = new Set<bigint>();
        for (let i = 0; i < 60 && mine.length; i++) del.add(mine[Math.floor(r() * mine.length)]);
        for (const d of del) if (upd.has(d)) del.delete(d);
        const removed = idx.remove(BigInt64Array.from(del));
        if (removed !== del.size) problems.push(`remove returned ${removed}, expected ${del.size}`);
        del.forEach((d) => model.delete(d));
        counts.removes += removed;
      }
    };

    const reader = async (lane: number) => {
      const r = rng(200 + lane);
      while (Date.now() < deadline) {
        const nq = 32;
        const q = new Float32Array(nq * dim);
        for (let i = 0; i < nq; i++) {
          const at = Math.floor(r() * 40_000);
          q.set(pool.subarray(at * dim, (at + 1) * dim), i * dim);
        }
        const useFilter = r() < 0.3;
        const filter = useFilter ? BigInt64Array.from([...everInserted].filter((_, i) => i % 4 === 0)).sort() : undefined;
        const allowed = filter ? new Set(filter) : undefined;
        const res = r() < 0.1 ? (counts.brute++, await idx.bruteForce(q, { k: 10, threads: 1, filter })) : await idx.searchBatch(q, { k: 10, nprobe: 4, threads: 1, filter });
        for (let i = 0; i < nq; i++) {
          for (let j = 0; j < 10; j++) {
            const id = res.ids[i * 10 + j], d = res.distances[i * 10 + j];
            if (id === -1n) continue;
            if (!everInserted.has(id)) problems.push(`unknown id ${id}`);
            if (!Number.isFinite(d)) problems.push(`non-finite distance ${d}`);
            if (j && d < res.distances[i * 10 + j - 1]) problems.push('distances not ascending');
            if (allowed && !allowed.has(id)) problems.push(`id ${id} outside the filter`);
          }
        }
        // Synchronous searches from the JS thread interleave with the async work.
        idx.search(q.subarray(0, dim), { k: 5 });
        counts.searches += nq + 1;
      }
    };

    const compactor = async () => {
      while (Date.now() < deadline) {
        await new Promise((res) => setTimeout(res, 1500));
        await idx.compact();
        counts.compacts++;
        idx.stats();
      }
    };

    await Promise.all([writer(1), writer(2), reader(1), reader(2), reader(3), compactor()]);
    console.log('stress counts', counts, 'live', model.size, idx.stats());
    expect(problems.slice(0, 5)).toEqual([]);
    expect(counts.searches).toBeGreaterThan(100);
    expect(counts.adds).toBeGreaterThan(100);
    expect(counts.compacts).toBeGreaterThan(0);
    expect(idx.size).toBe(model.size);

    const check = async (index: VectorIndex) => {
      const ids = [...model.keys()];
      const q = new Float32Array(ids.length * dim);
      ids.forEach((id, i) => q.set(model.get(id)!, i * dim));
      const found = (res: { ids: BigInt64Array; distances: Float32Array }, i: number, id: bigint, k: number) => {
        const at = Array.from(res.ids.subarray(i * k, (i + 1) * k)).indexOf(id);
        return at >= 0 && res.distances[i * k + at] === 0;
      };
      // Approximate path: the filter stage may rank a handful of near-duplicates
      // (the stream reuses pool rows with tiny offsets) above a vector's own code.
      const res = await index.searchBatch(q, { k: 10, nprobe: 4, kFactor: 50 });
      const missing = ids.filter((id, i) => !found(res, i, id, 10));
      console.log(`approximate self-search misses: ${missing.length} of ${ids.length}`);
      expect(missing.length).toBeLessThanOrEqual(Math.ceil(ids.length * 0.001));
      // Exact path: every live id (the approximate misses and a sample of the rest)
      // is stored with exactly its last-written vector.
      const sample = [...missing, ...ids.filter((_, i) => i % 50 === 0)];
      const sq = new Float32Array(sample.length * dim);
      sample.forEach((id, i) => sq.set(model.get(id)!, i * dim));
      const exact = await index.bruteForce(sq, { k: 10 });
      expect(sample.filter((id, i) => !found(exact, i, id, 10))).toEqual([]);
      // Removed ids never come back.
      const gone = [...everInserted].filter((id) => !model.has(id)).slice(0, 2000);
      if (gone.length) {
        const g = await index.bruteForce(q.subarray(0, 200 * dim), { k: 50 });
        for (const id of g.ids) expect(id === -1n || model.has(id)).toBe(true);
      }
    };
    await check(idx);
    const dir = tempDir();
    await idx.save(dir);
    const back = await VectorIndex.load(dir);
    expect(back.size).toBe(model.size);
    await check(back);
  });
});
