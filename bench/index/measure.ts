// Measurement helpers shared by the in-process (Node) systems: data loading for a run,
// per-query recall, the single-query timing loop and the tune/eval split.
import { loadDataset, type Dataset } from '../lib/datasets.ts';
import type { RunSpec, SweepPoint } from './types.ts';

export interface RunData {
  ds: Dataset;
  /** Base/queries as the peers see them: L2-normalised copies for cosine, the originals for l2. */
  base: Float32Array;
  queries: Float32Array;
  gt: Int32Array;
  /** Queries [0, tuneEnd) are the tuning half, [tuneEnd, nq) the evaluation half. */
  tuneEnd: number;
}

export function loadRunData(spec: RunSpec): RunData {
  const ds = loadDataset(spec.datasetName, { limit: spec.limit ?? undefined, root: rootOf(spec.datasetDir) });
  const gt = ds.groundTruth[spec.metric];
  if (!gt) throw new Error(`${spec.datasetName}: no ground truth for metric ${spec.metric} at n=${ds.n}`);
  const base = spec.metric === 'cos' ? normalized(ds.base, ds.dim) : ds.base;
  const queries = spec.metric === 'cos' ? normalized(ds.queries, ds.dim) : ds.queries;
  return { ds, base, queries, gt, tuneEnd: Math.floor(ds.nq / 2) };
}

function rootOf(dir: string): string {
  return dir.replace(/\/+$/, '').split('/').slice(0, -1).join('/') || '/';
}

export function normalized(x: Float32Array, dim: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i += dim) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += x[i + j] * x[i + j];
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < dim; j++) out[i + j] = x[i + j] * inv;
  }
  return out;
}

/** Number of true top-k neighbours among the k returned ids, per query. */
export function hitsPerQuery(ids: ArrayLike<number>, gt: Int32Array, nq: number, k: number, gtK: number): Int32Array {
  const hits = new Int32Array(nq);
  for (let i = 0; i < nq; i++) {
    const truth = new Set<number>();
    for (let j = 0; j < k; j++) truth.add(gt[i * gtK + j]);
    let h = 0;
    for (let j = 0; j < k; j++) if (truth.has(ids[i * k + j])) h++;
    hits[i] = h;
  }
  return hits;
}

export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

/**
 * Runs every query one at a time on this thread, timing each call, `repeat` times; keeps the repetition with
 * the smallest total time (best-of-N, to damp interference on a shared machine).
 * `searchOne(qi, out)` writes query qi's k ids into out (fill -1 for missing).
 */
export function timeSingleQueries(
  data: RunData,
  k: number,
  searchOne: (qi: number, out: Int32Array) => void,
  repeat = 1,
): Omit<SweepPoint, 'params' | 'qps2'> {
  const { ds, gt, tuneEnd } = data;
  const nq = ds.nq;
  const ids = new Int32Array(nq * k).fill(-1);
  let best: Float64Array | null = null;
  let bestSum = Infinity;
  for (let r = 0; r < Math.max(1, repeat); r++) {
    const lat = new Float64Array(nq);
    let sum = 0;
    for (let qi = 0; qi < nq; qi++) {
      const out = ids.subarray(qi * k, (qi + 1) * k);
      const t0 = process.hrtime.bigint();
      searchOne(qi, out);
      lat[qi] = Number(process.hrtime.bigint() - t0) / 1e6;
      sum += lat[qi];
    }
    if (sum < bestSum) {
      bestSum = sum;
      best = lat;
    }
  }
  return summarizeTimings(ids, best!, gt, nq, k, ds.gtK, tuneEnd);
}

/** Splits per-query ids and latencies (ms) into the tuning and evaluation halves. */
export function summarizeTimings(
  ids: ArrayLike<number>,
  latMs: ArrayLike<number>,
  gt: Int32Array,
  nq: number,
  k: number,
  gtK: number,
  tuneEnd: number,
): Omit<SweepPoint, 'params' | 'qps2'> {
  const hits = hitsPerQuery(ids, gt, nq, k, gtK);
  let hitT = 0, hitE = 0, msT = 0, msE = 0;
  for (let i = 0; i < nq; i++) {
    if (i < tuneEnd) { hitT += hits[i]; msT += latMs[i]; } else { hitE += hits[i]; msE += latMs[i]; }
  }
  const evalLat = Float64Array.from(Array.from(latMs).slice(tuneEnd)).sort();
  const nT = tuneEnd, nE = nq - tuneEnd;
  return {
    recallTune: hitT / (nT * k),
    recallEval: hitE / (nE * k),
    qps1Tune: nT / (msT / 1000),
    qps1Eval: nE / (msE / 1000),
    p50Ms: quantile(evalLat, 0.5),
    p99Ms: quantile(evalLat, 0.99),
  };
}

export function rssMiB(): number {
  return process.memoryUsage.rss() / 2 ** 20;
}

/** Peak RSS of this process so far, MiB (getrusage ru_maxrss). */
export function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

export function seconds(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

export function log(msg: string): void {
  process.stderr.write(`  ${msg}\n`);
}
