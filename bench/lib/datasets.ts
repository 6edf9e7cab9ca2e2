// Readers for the real embedding datasets in ../shared/data (TEXMEX fvecs/ivecs, float16 hvecs).
// Used by recall tests and benchmarks; the data is read in place, never copied into the repo.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type Metric = 'l2' | 'cos';

export interface Dataset {
  name: string;
  dir: string;
  dim: number;
  /** Number of base vectors loaded (may be a prefix of the file). */
  n: number;
  /** Row-major n × dim; row i has id i. */
  base: Float32Array;
  nq: number;
  queries: Float32Array;
  /** Exact top-100 per query (nq × 100 ids), by metric, for exactly the loaded base. */
  groundTruth: Partial<Record<Metric, Int32Array>>;
  gtK: number;
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where the datasets live: WINNOW_DATASETS_DIR, else ../shared/data beside the repository. */
export function datasetsRoot(): string {
  return process.env.WINNOW_DATASETS_DIR ?? path.resolve(repoRoot, '..', 'shared', 'data');
}

/** Names of the dataset folders that have a base and queries. */
export function listDatasets(root = datasetsRoot()): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(path.join(root, e.name, 'query.fvecs')))
    .map((e) => e.name)
    .sort();
}

/** Reads fvecs (float32) or hvecs (float16) rows; at most `limit` rows. */
export function readVectors(file: string, limit = Infinity): { dim: number; n: number; data: Float32Array } {
  const buf = readFileSync(file);
  const dim = buf.readInt32LE(0);
  const half = file.endsWith('.hvecs');
  const rowBytes = 4 + dim * (half ? 2 : 4);
  const n = Math.min(limit, Math.floor(buf.length / rowBytes));
  const data = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const off = i * rowBytes;
    if (buf.readInt32LE(off) !== dim) throw new Error(`${file}: row ${i} has a different dimension`);
    if (half) {
      const row = new Uint16Array(buf.buffer.slice(buf.byteOffset + off + 4, buf.byteOffset + off + rowBytes));
      for (let j = 0; j < dim; j++) data[i * dim + j] = HALF_TO_FLOAT[row[j]];
    } else {
      data.set(new Float32Array(buf.buffer.slice(buf.byteOffset + off + 4, buf.byteOffset + off + rowBytes)), i * dim);
    }
  }
  return { dim, n, data };
}

/** Reads ivecs rows (k int32 each). */
export function readIvecs(file: string): { k: number; n: number; data: Int32Array } {
  const buf = readFileSync(file);
  const k = buf.readInt32LE(0);
  const n = buf.length / (4 * (k + 1));
  const data = new Int32Array(n * k);
  for (let i = 0; i < n; i++) {
    data.set(new Int32Array(buf.buffer.slice(buf.byteOffset + i * 4 * (k + 1) + 4, buf.byteOffset + (i + 1) * 4 * (k + 1))), i * k);
  }
  return { k, n, data };
}

const HALF_TO_FLOAT = (() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) t[h] = float16ToFloat32(h);
  return t;
})();

export function float16ToFloat32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/**
 * Loads a dataset. `limit` loads a prefix of the base; ground truth is only
 * attached when a file for exactly that prefix exists (wordnet-use-512 has gt30k_* for 30,464 rows).
 */
export function loadDataset(name: string, opts: { limit?: number; root?: string } = {}): Dataset {
  const dir = path.join(opts.root ?? datasetsRoot(), name);
  const baseFile = existsSync(path.join(dir, 'base.fvecs')) ? path.join(dir, 'base.fvecs') : path.join(dir, 'base.hvecs');
  const base = readVectors(baseFile, opts.limit);
  const q = readVectors(path.join(dir, 'query.fvecs'));
  const fullN = countRows(baseFile, base.dim);
  const groundTruth: Partial<Record<Metric, Int32Array>> = {};
  let gtK = 0;
  for (const metric of ['l2', 'cos'] as Metric[]) {
    const candidates = base.n === fullN ? [`gt_${metric}.ivecs`] : [`gt${Math.round(base.n / 1000)}k_${metric}.ivecs`];
    for (const f of candidates) {
      const p = path.join(dir, f);
      if (!existsSync(p)) continue;
      const gt = readIvecs(p);
      if (base.n !== fullN && !gtMatchesPrefix(gt.data, base.n)) continue;
      groundTruth[metric] = gt.data;
      gtK = gt.k;
    }
  }
  return { name, dir, dim: base.dim, n: base.n, base: base.data, nq: q.n, queries: q.data, groundTruth, gtK };
}

function countRows(file: string, dim: number): number {
  return statSync(file).size / (4 + dim * (file.endsWith('.hvecs') ? 2 : 4));
}

function gtMatchesPrefix(gt: Int32Array, n: number): boolean {
  for (let i = 0; i < gt.length; i++) if (gt[i] >= n) return false;
  return true;
}

/** Per-row JSON metadata (labels, categories, texts), same order as the base. */
export function loadMeta(name: string, root = datasetsRoot()): Array<Record<string, unknown>> {
  return readFileSync(path.join(root, name, 'meta.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

/** recall@k of `result` (nq × k ids) against ground truth rows of width gtK. */
export function recallAtK(result: ArrayLike<number>, gt: Int32Array, nq: number, k: number, gtK: number): number {
  let hit = 0;
  for (let i = 0; i < nq; i++) {
    const truth = new Set<number>();
    for (let j = 0; j < k; j++) truth.add(gt[i * gtK + j]);
    for (let j = 0; j < k; j++) if (truth.has(result[i * k + j])) hit++;
  }
  return hit / (nq * k);
}
