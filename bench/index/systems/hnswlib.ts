// Peer: hnswlib-node (the npm binding of hnswlib; compiled by node-gyp without -march=native).
// Cosine datasets are L2-normalised by the harness and searched with inner product.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import hnswlib from 'hnswlib-node';
import { loadRunData, log, peakRssMiB, rssMiB, seconds, timeSingleQueries } from '../measure.ts';
import type { RunSpec, SweepPoint, SystemResult } from '../types.ts';

export const EF_SWEEP = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512];
export const EF_SWEEP_QUICK = [16, 32, 64, 128, 256];

export async function runHnswlib(spec: RunSpec): Promise<SystemResult> {
  const data = loadRunData(spec);
  const { ds } = data;
  const baseRss = rssMiB();
  const M = Number(spec.build.M ?? 16);
  const efC = Number(spec.build.efConstruction ?? 200);
  const space = spec.metric === 'cos' ? 'ip' : 'l2';
  const index = new hnswlib.HierarchicalNSW(space, ds.dim);
  index.initIndex({ maxElements: ds.n, m: M, efConstruction: efC, randomSeed: 100 });
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < ds.n; i++) index.addPoint(Array.from(data.base.subarray(i * ds.dim, (i + 1) * ds.dim)), i);
  const addSeconds = seconds(t0);
  const indexRss = rssMiB() - baseRss;
  log(`hnswlib M=${M}: built ${ds.n} in ${addSeconds.toFixed(1)} s`);

  // Queries are converted to plain arrays once, outside the timed loop (the binding takes number[]).
  const qArr: number[][] = [];
  for (let i = 0; i < ds.nq; i++) qArr.push(Array.from(data.queries.subarray(i * ds.dim, (i + 1) * ds.dim)));
  const k = spec.k;
  const search = (qi: number, out: Int32Array) => {
    const r = index.searchKnn(qArr[qi], k);
    for (let j = 0; j < r.neighbors.length; j++) out[j] = r.neighbors[j];
  };
  index.setEf(64);
  for (let qi = 0; qi < Math.min(100, ds.nq); qi++) search(qi, new Int32Array(k)); // warm-up

  const sweep = spec.quick ? EF_SWEEP_QUICK : EF_SWEEP;
  const points: SweepPoint[] = [];
  for (const ef of sweep) {
    index.setEf(ef);
    const m = timeSingleQueries(data, k, search, spec.repeat);
    points.push({ params: { ef }, ...m, qps2: null });
    log(`hnswlib M=${M} ef=${ef}: recall ${m.recallEval.toFixed(4)} qps1 ${m.qps1Eval.toFixed(0)}`);
  }
  const peakRss = peakRssMiB(); // before the 2-thread phase, which loads two more copies of the index

  // Size: the serialized index (vectors + links + labels), and 2-thread QPS from two workers that load it.
  const dir = mkdtempSync(path.join(tmpdir(), 'winnow-bench-hnsw-'));
  const file = path.join(dir, 'index.bin');
  index.writeIndexSync(file);
  const totalBytes = statSync(file).size;
  try {
    const qps2 = await twoThreadQps(file, space, ds.dim, data.queries, k, points.map((p) => p.params.ef), spec.repeat);
    points.forEach((p, i) => (p.qps2 = qps2[i]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    system: 'hnswlib',
    config: `M=${M} efC=${efC}`,
    buildParams: { M, efConstruction: efC },
    trainSeconds: 0,
    addSeconds,
    buildThreads: 1,
    filterBytesPerVector: null,
    totalBytesPerVector: totalBytes / ds.n,
    bytesNote: 'writeIndex file size / n',
    peakRssMiB: peakRss,
    baseRssMiB: baseRss,
    indexRssMiB: indexRss,
    twoThreadNote: '2 worker threads, each with its own copy of the index, each searching half the queries one at a time',
    notes: ['hnswlib-node 3.0.0 (node-gyp build, no -march=native); build single-threaded (binding has no parallel add)'],
    points,
  };
}

/** Two worker threads, each loading the saved index, each running half the queries single-query; wall-clock QPS per ef. */
async function twoThreadQps(file: string, space: string, dim: number, queries: Float32Array, k: number, efs: number[], repeat: number): Promise<number[]> {
  const nq = queries.length / dim;
  const halves = [queries.slice(0, Math.floor(nq / 2) * dim), queries.slice(Math.floor(nq / 2) * dim)];
  const workers = halves.map(
    (q) => new Worker(new URL('./hnswlib-thread.mjs', import.meta.url), { workerData: { file, space, dim, queries: q, k } }),
  );
  const ask = (w: Worker, msg: unknown) =>
    new Promise<void>((resolve, reject) => {
      const onError = (e: Error) => reject(e);
      w.once('message', () => {
        w.off('error', onError);
        resolve();
      });
      w.once('error', onError);
      w.postMessage(msg);
    });
  try {
    await Promise.all(workers.map((w) => ask(w, { ready: true })));
    const out: number[] = [];
    for (const ef of efs) {
      await Promise.all(workers.map((w) => ask(w, { ef, warm: true })));
      let best = 0;
      for (let r = 0; r < Math.max(1, repeat); r++) {
        const t0 = process.hrtime.bigint();
        await Promise.all(workers.map((w) => ask(w, { ef })));
        best = Math.max(best, nq / seconds(t0));
      }
      out.push(best);
    }
    return out;
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
