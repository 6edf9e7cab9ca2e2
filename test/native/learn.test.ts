// HAKES learned search parameters (issue 7): the loss's gradients against finite
// differences, training lowers the held-out loss, learnt params persist bit for bit,
// and searches running while params are learnt/installed/reset never fail or return
// garbage.
import { describe, expect, it } from 'vitest';
import { VectorIndex, testing, type FilterParams } from '../../native/index.ts';
import { loadDataset } from '../../bench/lib/datasets.ts';
import { gaussian, lowRank, refDistance, rng, row, seqIds, tempDir } from './helpers.ts';

// A small random instance of the loss: B queries, each with K neighbours among `rows` rows.
function lossInstance(seed: number, ip: boolean) {
  const r = rng(seed);
  const d = 12, dr = 8, m = dr / 2, K = 6, B = 5, rows = 15;
  const g = (s: number) => gaussian(r) * s;
  const A = new Float64Array(dr * d).map(() => g(0.3));
  const C = new Float64Array(m * 32).map(() => g(0.5));
  const Q = new Float32Array(B * d).map(() => g(1));
  const Y = new Float32Array(rows * dr).map(() => g(0.8));
  const codes = new Uint8Array(rows * m).map(() => Math.floor(r() * 16));
  const nbr = new Uint32Array(B * K).map(() => Math.floor(r() * rows));
  const orig = new Float32Array(B * K).map(() => g(1));
  const shape = { d, dr, K, ip, tau: 0.7 };
  return { shape, A, C, Q, Y, codes, nbr, orig };
}

describe('learned search parameters', () => {
  for (const ip of [false, true]) {
    it(`loss gradients match central finite differences (${ip ? 'inner product' : 'negative squared L2'})`, () => {
      const t = lossInstance(ip ? 7 : 8, ip);
      const f = (A: Float64Array, C: Float64Array) => testing.klLoss(t.shape, A, C, t.Q, t.nbr, t.orig, t.Y, t.codes);
      const base = f(t.A, t.C);
      expect(base.loss).toBeGreaterThan(0);
      expect(base.loss).toBeCloseTo(base.term1 + base.term2, 12);
      const h = 1e-5;
      let checked = 0, maxRel = 0;
      for (const [which, P, G] of [['A', t.A, base.gA], ['C', t.C, base.gC]] as const) {
        for (let i = 0; i < P.length; i++) {
          const plus = P.slice(), minus = P.slice();
          plus[i] += h;
          minus[i] -= h;
          const lp = which === 'A' ? f(plus, t.C).loss : f(t.A, plus).loss;
          const lm = which === 'A' ? f(minus, t.C).loss : f(t.A, minus).loss;
          const fd = (lp - lm) / (2 * h);
          const err = Math.abs(fd - G[i]) / Math.max(1e-6, Math.abs(fd) + Math.abs(G[i]));
          maxRel = Math.max(maxRel, Math.abs(fd) + Math.abs(G[i]) > 1e-7 ? err : 0);
          expect(Math.abs(fd - G[i])).toBeLessThan(1e-7 + 1e-5 * Math.abs(fd));
          if (G[i] !== 0) checked++;
        }
      }
      // Codebook entries no neighbour uses have exactly zero gradient; most entries are non-zero.
      expect(checked).toBeGreaterThan(t.A.length);
      expect(maxRel).toBeLessThan(1e-4);
    });
  }

  for (const [ip, cutoff] of [[false, 0], [true, 0], [false, 4], [true, 4]] as const) {
    it(`learned-probe loss gradients match central finite differences (${ip ? 'inner product' : 'negative squared L2'}, ${cutoff ? 'coverage surrogate' : 'cross-entropy'})`, () => {
      const r = rng((ip ? 31 : 32) + cutoff);
      const d = 10, dr = 6, K = 5, B = 4, nlist = 7;
      const g = (s: number) => gaussian(r) * s;
      const shape = { d, dr, K, ip, tau: 0.6, cutoff, targetK: cutoff ? 2 : 0 };
      const A = new Float64Array(dr * d).map(() => g(0.3));
      const C = new Float64Array(nlist * dr).map(() => g(0.7));
      const Q = new Float32Array(B * d).map(() => g(1));
      const orig = new Float32Array(B * K).map(() => g(1));
      const lists = new Uint32Array(B * K).map(() => Math.floor(r() * nlist));
      const base = testing.probeLoss(shape, A, C, Q, orig, lists);
      expect(base.loss).toBeGreaterThan(0);
      const h = 1e-5;
      for (let i = 0; i < C.length; i++) {
        const plus = C.slice(), minus = C.slice();
        plus[i] += h;
        minus[i] -= h;
        const fd = (testing.probeLoss(shape, A, plus, Q, orig, lists).loss - testing.probeLoss(shape, A, minus, Q, orig, lists).loss) / (2 * h);
        expect(Math.abs(fd - base.gC[i])).toBeLessThan(1e-7 + 1e-5 * Math.abs(fd));
      }
      expect(base.gC.some((v) => v !== 0)).toBe(true);
    });
  }

  const dim = 48, n = 6000;
  const all = lowRank(n + 200 + 4000, dim, 10, 30, 5, 0.1);
  const data = all.subarray(0, n * dim);
  const heldOut = all.slice(n * dim, (n + 200) * dim); // never indexed, never sampled for training
  const pool = all.slice((n + 200) * dim); // inserted while params are being learnt and installed

  async function built(metric: 'l2' | 'cos' | 'ip' = 'l2') {
    const idx = new VectorIndex({ dim, metric, nlist: 32, reducedDim: 12, seed: 4 });
    await idx.train(data);
    await idx.add(seqIds(n), data);
    return idx;
  }
  const quick = { sampleQueries: 3000, neighbors: 20, batchSize: 64, epochs: 2, learningRates: [1e-4, 1e-3] };

  for (const metric of ['l2', 'cos', 'ip'] as const) {
    it(`training lowers the held-out loss and keeps insert params (${metric})`, async () => {
      const idx = await built(metric);
      const ins = idx.getParams('insert')!;
      const phases = new Set<string>();
      const rep = await idx.learn(quick, (phase) => phases.add(phase.split(' ')[0]));
      expect(rep.trainQueries + rep.validationQueries).toBeGreaterThan(2900);
      expect(rep.validationQueries).toBe(300);
      expect(rep.sweep.map((s) => s.learningRate)).toEqual([1e-4, 1e-3]);
      // scaleLearningRates 'auto': one way for every rate, scaled only when the codebooks' units differ from the transform's.
      const scaled = rep.codebookLrScale !== 1;
      expect(rep.sweep.map((s) => s.scaled)).toEqual([scaled, scaled]);
      expect(rep.learningRate).toBeGreaterThan(0);
      expect(rep.validationLossAfter).toBeLessThan(rep.validationLossBefore * 0.995);
      expect(Math.min(...rep.sweep.map((s) => s.validationLoss))).toBe(rep.validationLossAfter);
      expect(rep.installed).toBe(rep.validationRecallAfter >= rep.validationRecallBefore);
      for (const p of ['neighbors', 'train', 'validate']) expect(phases).toContain(p);
      // Insert params and codes are untouched; search params changed only where learnt.
      expect(idx.getParams('insert')).toEqual(ins);
      const sp = idx.getParams('search')!;
      if (rep.installed) {
        expect(sp.transform).not.toEqual(ins.transform);
        expect(sp.codebooks).not.toEqual(ins.codebooks);
        expect(sp.mean).toEqual(ins.mean);
        if (!rep.recentered && !rep.probeLearned) expect(sp.centroids).toEqual(ins.centroids);
      } else {
        expect(sp).toEqual(ins);
      }
      // Held-out queries: recall with the installed params is not worse than with the insert params.
      const exact = await idx.bruteForce(heldOut, { k: 10 });
      const recall = async () => {
        const got = await idx.searchBatch(heldOut, { k: 10, nprobe: 8, kFactor: 4 });
        let hit = 0;
        for (let q = 0; q < 200; q++) {
          const truth = new Set(exact.ids.subarray(q * 10, q * 10 + 10));
          for (const id of got.ids.subarray(q * 10, q * 10 + 10)) if (truth.has(id)) hit++;
        }
        return hit / 2000;
      };
      const learnt = await recall();
      idx.resetSearchParams();
      const untrained = await recall();
      expect(learnt).toBeGreaterThan(untrained - 0.02);
      expect(idx.getParams('search')).toEqual(ins);
    });
  }

  it('learnt params persist and reload bit for bit, and can be dropped after reload', async () => {
    const idx = await built('cos');
    // Installed regardless of the validation verdict so the round trip is always exercised.
    const rep = await idx.learn({ ...quick, install: 'always' });
    expect(rep.installed).toBe(true);
    const learnt = idx.getParams('search')!;
    expect(learnt.transform).not.toEqual(idx.getParams('insert')!.transform);
    const dir = tempDir();
    await idx.save(dir);
    const back = await VectorIndex.load(dir);
    const bytes = (p: FilterParams) =>
      [p.transform, p.mean, p.centroids, p.codebooks].map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex'));
    expect(bytes(back.getParams('search')!)).toEqual(bytes(learnt));
    expect(bytes(back.getParams('insert')!)).toEqual(bytes(idx.getParams('insert')!));
    const opts = { k: 10, nprobe: 4, kFactor: 2 };
    expect(await back.searchBatch(heldOut, opts)).toEqual(await idx.searchBatch(heldOut, opts));
    back.resetSearchParams();
    expect(bytes(back.getParams('search')!)).toEqual(bytes(idx.getParams('insert')!));
  });

  it('searches and inserts during learning and repeated installs never fail or return garbage', { timeout: 120_000 }, async () => {
    const idx = await built('l2');
    const ins = idx.getParams('insert')!;
    const alt = await (async () => {
      const rep = await idx.learn({ ...quick, install: false });
      expect(rep.installed).toBe(false);
      expect(idx.getParams('search')).toEqual(ins); // install: false leaves search params alone
      return rep;
    })();
    expect(alt.trainQueries).toBeGreaterThan(0);
    const problems: string[] = [];
    let searches = 0, inserts = 0, installs = 0;
    let done = false;
    const inserted = new Map<bigint, Float32Array>();
    const r = rng(77);
    const check = (q: Float32Array, ids: BigInt64Array, dist: Float32Array) => {
      for (let j = 0; j < ids.length; j++) {
        const id = ids[j];
        if (id < 0n) return problems.push(`padding in an unfiltered result (${j})`);
        const v = id < BigInt(n) ? row(data, dim, Number(id)) : inserted.get(id);
        if (!v) return problems.push(`unknown id ${id}`);
        if (Math.abs(refDistance('l2', q, v) - dist[j]) > 1e-3 * (1 + dist[j])) return problems.push(`wrong distance for ${id}`);
        if (j > 0 && dist[j] < dist[j - 1]) return problems.push('distances not ascending');
      }
    };
    const searcher = async () => {
      while (!done) {
        const qi = Math.floor(r() * 200);
        const q = heldOut.subarray(qi * dim, (qi + 1) * dim);
        const res = await idx.searchBatch(q, { k: 10, nprobe: 1 + Math.floor(r() * 16), kFactor: 1 + Math.floor(r() * 8), threads: 1 });
        check(q, res.ids, res.distances);
        const s = idx.search(q, { k: 5, nprobe: 3, kFactor: 2 }); // on the JS thread, between installs
        check(q, s.ids, s.distances);
        searches += 2;
      }
    };
    const inserter = async () => {
      let id = 1_000_000n;
      while (!done) {
        const at = Number(id - 1_000_000n) % 4000;
        const v = pool.slice(at * dim, (at + 10) * dim);
        const ids = seqIds(10, Number(id));
        for (let i = 0; i < 10; i++) inserted.set(ids[i], v.slice(i * dim, (i + 1) * dim));
        await idx.add(ids, v, 1);
        id += 10n;
        inserts += 10;
      }
    };
    const installer = async () => {
      for (let round = 0; round < 3; round++) {
        await idx.learn({ ...quick, sampleQueries: 1500, seed: round + 2 });
        installs++;
        for (let i = 0; i < 50; i++) {
          idx.setSearchParams(i % 2 ? ins : idx.getParams('search')!);
          idx.resetSearchParams();
          installs++;
          await new Promise((res) => setImmediate(res));
        }
      }
      done = true;
    };
    await Promise.all([searcher(), searcher(), inserter(), installer()]);
    expect(problems.slice(0, 5)).toEqual([]);
    expect(searches).toBeGreaterThan(50);
    expect(inserts).toBeGreaterThan(0);
    expect(installs).toBe(153);
    // Inserts kept using the frozen insert params throughout.
    expect(idx.getParams('insert')).toEqual(ins);
    // Every inserted vector is findable by itself afterwards (encoded with the insert params).
    const some = [...inserted.entries()].slice(0, 50);
    for (const [id, v] of some) expect(idx.search(v, { k: 10, nprobe: 32, kFactor: 100 }).ids).toContain(id);
  });

  it('learns on float16 storage with deletions, after compaction, and again over learnt params', async () => {
    const idx = new VectorIndex({ dim, metric: 'cos', nlist: 32, reducedDim: 12, vectorStorage: 'float16', seed: 6 });
    await idx.train(data);
    await idx.add(seqIds(n), data);
    expect(idx.remove(seqIds(1500))).toBe(1500);
    const ins = idx.getParams('insert')!;
    const a = await idx.learn({ ...quick, install: 'always' });
    expect(a.trainQueries + a.validationQueries).toBe(3000);
    await idx.compact(); // ids renumbered; search params survive
    expect(idx.getParams('search')!.transform).not.toEqual(ins.transform);
    const b = await idx.learn({ ...quick, seed: 9, install: 'always' }); // starts again from the insert params
    expect(b.validationLossBefore).toBeGreaterThan(b.validationLossAfter);
    expect(idx.getParams('insert')).toEqual(ins);
    // Deleted rows are never returned and every result is a live row.
    const res = await idx.searchBatch(heldOut, { k: 10, nprobe: 8, kFactor: 4 });
    for (const id of res.ids) expect(id >= 1500n && id < BigInt(n)).toBe(true);
  });

  it('scales the codebooks\' rate to the data\'s units, so data in large units (raw pixels) is learnt too', async () => {
    // The same data ×1000: the codebooks are in the data's units (rms in the thousands), the
    // transform's entries are not. With one absolute rate AdamW cannot move the codebooks measurably.
    const big = data.map((v) => v * 1000);
    const idx = new VectorIndex({ dim, metric: 'l2', nlist: 32, reducedDim: 12, seed: 4 });
    await idx.train(big);
    await idx.add(seqIds(n), big);
    const ins = idx.getParams('insert')!;
    const rms = (a: Float32Array) => Math.sqrt(a.reduce((s, x) => s + x * x, 0) / a.length);
    const moved = (a: Float32Array, b: Float32Array) => rms(a.map((x, i) => x - b[i])) / rms(b);
    const opts = { ...quick, learningRates: [1e-3], learnProbe: false, recenter: false, install: 'always' as const };
    const off = await idx.learn({ ...opts, scaleLearningRates: false });
    const cbOff = idx.getParams('search')!.codebooks;
    expect(off.codebookLrScale).toBe(1);
    // Only the weight decay (lr × 0.01 of the value per step, relative whatever the units) moves them.
    const movedOff = moved(cbOff, ins.codebooks);
    expect(movedOff).toBeLessThan(2e-3);
    const on = await idx.learn({ ...opts, scaleLearningRates: true });
    expect(on.codebookLrScale).toBeCloseTo(rms(ins.codebooks) / rms(ins.transform), 3);
    expect(on.codebookLrScale).toBeGreaterThan(100);
    expect(moved(idx.getParams('search')!.codebooks, ins.codebooks)).toBeGreaterThan(10 * movedOff);
    expect(on.validationLossAfter).toBeLessThan(off.validationLossAfter);
    // 'auto' (the default) scales here; 'both' tries both and keeps whichever the validation loss prefers.
    const auto = await idx.learn(opts);
    expect(auto.sweep.map((s) => s.scaled)).toEqual([true]);
    expect(auto.codebookLrScale).toBe(on.codebookLrScale);
    const both = await idx.learn({ ...opts, scaleLearningRates: 'both' });
    expect(both.sweep.map((s) => s.scaled)).toEqual([false, true]);
    const bestScaled = both.sweep.reduce((a, b) => (b.validationLoss < a.validationLoss ? b : a)).scaled;
    expect(both.codebookLrScale === 1).toBe(!bestScaled);
    expect(idx.getParams('insert')).toEqual(ins);
  });

  it('rejects bad options and untrained indexes', async () => {
    const raw = new VectorIndex({ dim: 4, metric: 'l2' });
    raw.addSync(seqIds(100), new Float32Array(400).map((_, i) => Math.sin(i)));
    await expect(raw.learn()).rejects.toThrow(/not trained/);
    const idx = await built('l2');
    await expect(idx.learn({ learningRates: [] })).rejects.toThrow(/learningRates/);
    await expect(idx.learn({ learningRates: [-1] })).rejects.toThrow(/learningRates/);
    await expect(idx.learn({ batchSize: 0 })).rejects.toThrow(/batchSize/);
    await expect(idx.learn({ validationFraction: 1.5 })).rejects.toThrow(/validationFraction/);
    await expect(idx.learn({ temperatureScale: 0 })).rejects.toThrow(/temperatureScale/);
    await expect(idx.learn({ probeLoss: 'hinge' as never })).rejects.toThrow(/probeLoss/);
    await expect(idx.learn({ probeTemperatureScales: [] })).rejects.toThrow(/probeTemperatureScales/);
    await expect(idx.learn({ probeLearningRates: [0] })).rejects.toThrow(/probeLearningRates/);
    await expect(idx.learn({ probeEpochs: -1 })).rejects.toThrow(/probeEpochs/);
    await expect(idx.learn({ reductionTermWeight: -1 })).rejects.toThrow(/reductionTermWeight/);
    await expect(idx.learn({ scaleLearningRates: 'yes' as never })).rejects.toThrow(/scaleLearningRates/);
    await expect(idx.learn({ neighbors: n + 5 })).rejects.toThrow(/need more than/);
  });
});

// The learned probe (extension beyond HAKES) on a slice of a real dataset: validation probe coverage
// chooses the temperature and rate, and held-out queries (rows never indexed) find more of their
// true neighbours in the first nprobe lists than with the same learnt params and the original centroids.
describe('learned probe on real data', () => {
  it('raises validation probe coverage and held-out probe-limited recall (wordnet-use-512 slice)', { timeout: 300_000 }, async () => {
    const ds = loadDataset('wordnet-use-512', { limit: 21000 });
    const n = 20000, nh = 500, dim = ds.dim;
    const idx = new VectorIndex({ dim, metric: 'cos', seed: 7 });
    await idx.train(ds.base.subarray(0, n * dim));
    await idx.add(seqIds(n), ds.base.subarray(0, n * dim));
    const nlist = idx.stats().nlist;
    const rep = await idx.learn({ sampleQueries: 8000, probeTemperatureScales: [1, 2], probeLearningRates: [1e-3], install: 'always' });
    expect(rep.probeSweep.map((p) => p.temperatureScale)).toEqual([1, 2]);
    expect(rep.probeCoverageNprobe).toBe(Math.max(8, Math.floor(nlist / 8)));
    expect(rep.probeCoverageAfter).toBeGreaterThan(rep.probeCoverageBefore);
    expect(rep.probeCoverageAfter).toBe(Math.max(...rep.probeSweep.map((p) => p.validationCoverage)));
    expect(rep.probeLearned).toBe(true);
    const learnt = idx.getParams('search')!;
    const held = ds.base.slice(n * dim, (n + nh) * dim);
    const exact = await idx.bruteForce(held, { k: 10 });
    const nprobe = rep.probeCoverageNprobe;
    const probeLimited = async () => {
      const got = await idx.searchBatch(held, { k: 10, nprobe, kFactor: 200 });
      let hit = 0;
      for (let q = 0; q < nh; q++) {
        const truth = new Set(exact.ids.subarray(q * 10, q * 10 + 10));
        for (const id of got.ids.subarray(q * 10, q * 10 + 10)) if (truth.has(id)) hit++;
      }
      return hit / (nh * 10);
    };
    const withProbe = await probeLimited();
    // Same learnt transform and codebooks, centroids before probe training (re-centred or insert ones).
    const rc = await idx.learn({ sampleQueries: 8000, learnProbe: false, install: 'always' });
    const withoutProbe = await probeLimited();
    console.log(`probe coverage ${rep.probeCoverageBefore.toFixed(4)} -> ${rep.probeCoverageAfter.toFixed(4)}; held-out probe-limited recall at nprobe ${nprobe}: ${withoutProbe.toFixed(4)} (recentered ${rc.recentered}) -> ${withProbe.toFixed(4)}`);
    expect(withProbe).toBeGreaterThan(withoutProbe);
    idx.setSearchParams(learnt);
  });
});
