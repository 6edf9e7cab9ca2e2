// Winnow's own index (native/index.ts, class VectorIndex): dimensionality reduction + IVF + 4-bit PQ fast-scan
// filter, exact refine. Cosine datasets are given to it as-is with metric 'cos' (the product path).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadRunData, log, peakRssMiB, rssMiB, seconds, timeSingleQueries } from '../measure.ts';
import type { RunSpec, SweepPoint, SystemResult } from '../types.ts';

export const NPROBE_SWEEP = [2, 4, 8, 16, 32, 64, 128, 256];
export const KFACTOR_SWEEP = [2, 4, 8, 16, 32, 64, 128];
export const NPROBE_SWEEP_QUICK = [4, 16, 64];
export const KFACTOR_SWEEP_QUICK = [4, 16];

const INDEX_TS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'native', 'index.ts');

// The parts of native/index.ts this benchmark uses (kept loose: the index is developed alongside).
interface SearchResultLike { ids: BigInt64Array | ArrayLike<bigint | number> }
interface VectorIndexLike {
  train(sample: Float32Array, onProgress?: (p: unknown) => void): Promise<void> | void;
  add(ids: BigInt64Array, vectors: Float32Array): Promise<void> | void;
  search(query: Float32Array, opts: { k: number; nprobe?: number; kFactor?: number }): SearchResultLike;
  searchBatch?(queries: Float32Array, opts: { k: number; nprobe?: number; kFactor?: number; threads?: number }): Promise<unknown>;
  stats(): Record<string, unknown>;
  close?(): void;
}

export function winnowAvailable(): boolean {
  return existsSync(INDEX_TS);
}

export async function runWinnow(spec: RunSpec): Promise<SystemResult> {
  if (!winnowAvailable()) throw new Error(`Winnow index not available yet (${path.relative(process.cwd(), INDEX_TS)} missing)`);
  const mod = (await import(INDEX_TS)) as { VectorIndex: new (opts: Record<string, unknown>) => VectorIndexLike };
  const data = loadRunData(spec);
  const { ds } = data;
  const baseRss = rssMiB();
  const opts: Record<string, unknown> = { dim: ds.dim, metric: spec.metric, seed: 1 };
  for (const key of ['nlist', 'reducedDim', 'vectorStorage']) if (spec.build[key] !== undefined) opts[key] = spec.build[key];
  // Cosine: the raw vectors (the index normalises); l2: the raw vectors.
  const base = ds.base;
  const queries = ds.queries;
  const index = new mod.VectorIndex(opts);

  let t0 = process.hrtime.bigint();
  await index.train(base);
  const trainSeconds = seconds(t0);
  t0 = process.hrtime.bigint();
  const ids = new BigInt64Array(ds.n);
  for (let i = 0; i < ds.n; i++) ids[i] = BigInt(i);
  await index.add(ids, base);
  const addSeconds = seconds(t0);
  const indexRss = rssMiB() - baseRss;
  const stats = index.stats();
  log(`winnow: trained in ${trainSeconds.toFixed(1)} s, added ${ds.n} in ${addSeconds.toFixed(1)} s; stats ${JSON.stringify(stats)}`);

  const k = spec.k;
  const nlist = typeof stats.nlist === 'number' ? stats.nlist : Infinity;
  const nprobes = (spec.quick ? NPROBE_SWEEP_QUICK : NPROBE_SWEEP).filter((p) => p <= nlist);
  const kfs = spec.quick ? KFACTOR_SWEEP_QUICK : KFACTOR_SWEEP;
  let cur = { nprobe: nprobes[0], kFactor: kfs[0] };
  const search = (qi: number, out: Int32Array) => {
    const r = index.search(queries.subarray(qi * ds.dim, (qi + 1) * ds.dim), { k, nprobe: cur.nprobe, kFactor: cur.kFactor });
    const n = Math.min(k, r.ids.length);
    for (let j = 0; j < n; j++) out[j] = Number(r.ids[j]);
  };
  cur = { nprobe: nprobes[Math.floor(nprobes.length / 2)], kFactor: kfs[Math.floor(kfs.length / 2)] };
  for (let qi = 0; qi < Math.min(100, ds.nq); qi++) search(qi, new Int32Array(k)); // warm-up

  const points: SweepPoint[] = [];
  for (const nprobe of nprobes) {
    for (const kFactor of kfs) {
      cur = { nprobe, kFactor };
      const m = timeSingleQueries(data, k, search, spec.repeat);
      points.push({ params: { nprobe, kFactor }, ...m, qps2: null });
      log(`winnow nprobe=${nprobe} kFactor=${kFactor}: recall ${m.recallEval.toFixed(4)} qps1 ${m.qps1Eval.toFixed(0)}`);
    }
  }
  const peakRss = peakRssMiB();

  let twoThreadNote = 'not measured: VectorIndex has no searchBatch';
  if (typeof index.searchBatch === 'function') {
    twoThreadNote = 'searchBatch over all queries with threads: 2';
    for (const p of points) {
      const o = { k, nprobe: p.params.nprobe, kFactor: p.params.kFactor, threads: 2 };
      await index.searchBatch(queries.subarray(0, Math.min(50, ds.nq) * ds.dim), o); // warm-up
      let best = 0;
      for (let r = 0; r < Math.max(1, spec.repeat); r++) {
        const t = process.hrtime.bigint();
        await index.searchBatch(queries, o);
        best = Math.max(best, ds.nq / seconds(t));
      }
      p.qps2 = best;
    }
  }
  const num = (v: unknown) => (typeof v === 'number' ? v : NaN);
  const buildParams: Record<string, number | string> = {};
  for (const key of ['nlist', 'reducedDim', 'pqM', 'vectorStorage', 'nbits']) {
    const v = stats[key] ?? (index as unknown as { options?: Record<string, unknown> }).options?.[key] ?? spec.build[key];
    if (typeof v === 'number' || typeof v === 'string') buildParams[key] = v;
  }
  index.close?.();
  return {
    system: 'winnow',
    config: Object.entries(buildParams).map(([a, b]) => `${a}=${b}`).join(' ') || 'defaults',
    buildParams,
    trainSeconds,
    addSeconds,
    buildThreads: typeof stats.threads === 'number' ? stats.threads : 2,
    filterBytesPerVector: num(stats.filterBytesPerVector),
    totalBytesPerVector: num(stats.totalBytesPerVector),
    bytesNote: 'VectorIndex.stats() (filter = 4-bit PQ code bytes only; total = all resident bytes)',
    peakRssMiB: peakRss,
    baseRssMiB: baseRss,
    indexRssMiB: indexRss,
    twoThreadNote,
    notes: [],
    points,
  };
}
