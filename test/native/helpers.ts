// Shared helpers for the native index tests: seeded data, exact reference distances.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { seededRandom } from '../support/random.ts';

/** Seeded PRNG so every run sees the same data. */
export const rng = seededRandom;

export function gaussian(r: () => number): number {
  const u = Math.max(r(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
}

/** n × dim points around `clusters` random centres (structure for IVF/PCA to find). */
export function clustered(n: number, dim: number, clusters: number, seed: number): Float32Array {
  const r = rng(seed);
  const centres = new Float32Array(clusters * dim).map(() => gaussian(r) * 3);
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(r() * clusters);
    for (let j = 0; j < dim; j++) out[i * dim + j] = centres[c * dim + j] + gaussian(r);
  }
  return out;
}

/**
 * Like real embeddings, most variance lives in a low-dimensional subspace: clustered
 * points in `latent` dims, mapped linearly to `dim`, plus small isotropic noise.
 */
export function lowRank(n: number, dim: number, latent: number, clusters: number, seed: number, noise = 0.05): Float32Array {
  const r = rng(seed ^ 0x5bd1e995);
  const z = clustered(n, latent, clusters, seed);
  const W = new Float32Array(latent * dim).map(() => gaussian(r) / Math.sqrt(latent));
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < dim; j++) {
      let v = 0;
      for (let t = 0; t < latent; t++) v += z[i * latent + t] * W[t * dim + j];
      out[i * dim + j] = v + gaussian(r) * noise;
    }
  return out;
}

export function seqIds(n: number, start = 0): BigInt64Array {
  const ids = new BigInt64Array(n);
  for (let i = 0; i < n; i++) ids[i] = BigInt(start + i);
  return ids;
}

export function row(x: Float32Array, dim: number, i: number): Float32Array {
  return x.subarray(i * dim, (i + 1) * dim);
}

/** pgvector semantics in float64: <-> Euclidean, <#> negative inner product, <=> 1 − cosine. */
export function refDistance(metric: 'l2' | 'ip' | 'cos', a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0, na = 0, nb = 0, l2 = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
    l2 += (a[i] - b[i]) ** 2;
  }
  if (metric === 'l2') return Math.sqrt(l2);
  if (metric === 'ip') return -dot;
  return 1 - dot / Math.sqrt(na * nb);
}

export function tempDir(prefix = 'winnow-native-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}
