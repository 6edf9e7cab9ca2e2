// Development aid for issue 7: where does recall go at the recall-0.99 operating points, untrained vs
// learned search params? For the *tuning half* of the dataset's queries (0–499; the evaluation half is
// left alone) it splits lost recall@10 into
//   probe: a true top-10 neighbour is stored in a list that is not among the nprobe probed lists
//          (computed exactly: the neighbour's list under the insert params, the query's list ranking
//          under the search params), and
//   rank:  the neighbour's list is probed but the 4-bit PQ filter did not keep it in the top k·kFactor.
// With WINNOW_PROFILE=1 the native search prints its per-phase time at exit (one variant and point
// per process: --only untrained|learned --nprobe N --kfactor K).
//
//   npx tsx bench/learn/diagnose.ts --dataset wordnet-use-512 [--learn '{"learnProbe":true}'] [--tag default]
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadDataset } from '../lib/datasets.ts';
import { VectorIndex, type FilterParams } from '../../native/index.ts';

const { values: a } = parseArgs({
  options: {
    dataset: { type: 'string', default: 'wordnet-use-512' },
    learn: { type: 'string', default: '{}' },
    tag: { type: 'string', default: 'default' },
    only: { type: 'string' },
    nprobe: { type: 'string' },
    kfactor: { type: 'string' },
    reps: { type: 'string', default: '20' },
    points: { type: 'string', default: '24:10,32:8,32:14,48:6,48:8,48:10,64:10' },
    // Also rank the probed lists' vectors by exact reduced-space distance (no 4-bit PQ): how much of the
    // ranking loss is the reduction d -> reducedDim and how much the quantisation.
    reduced: { type: 'boolean', default: false },
  },
});

const K = 10;
const ds = loadDataset(a.dataset!);
const metric = ds.groundTruth.cos ? 'cos' : 'l2';
const gt = ds.groundTruth[metric]!;
const half = Math.floor(ds.nq / 2);
const dir = `/tmp/winnow-learn-diag-${a.dataset}-${a.tag}`;

let idx: VectorIndex;
if (existsSync(dir + '/index.winnow')) idx = await VectorIndex.load(dir);
else {
  idx = new VectorIndex({ dim: ds.dim, metric });
  await idx.train(ds.base);
  await idx.add(new BigInt64Array(ds.n).map((_, i) => BigInt(i)), ds.base);
  const t = performance.now();
  const rep = await idx.learn({ threads: 2, install: 'always', ...JSON.parse(a.learn!) });
  console.log(`learned in ${((performance.now() - t) / 1000).toFixed(1)} s`, JSON.stringify(rep));
  await idx.save(dir);
}
const learned = idx.getParams('search')!;
const ins = idx.getParams('insert')!;
const d = ds.dim, dr = ins.centroids.length / idx.stats().nlist, nlist = idx.stats().nlist;

function prep(v: Float32Array): Float32Array {
  const x = Float32Array.from(v);
  if (metric === 'cos') {
    let s = 0;
    for (const t of x) s += t * t;
    s = Math.sqrt(s);
    for (let i = 0; i < x.length; i++) x[i] /= s;
  }
  return x;
}
function reduce(P: FilterParams, x: Float32Array): Float64Array {
  const z = new Float64Array(dr);
  for (let r = 0; r < dr; r++) {
    let s = 0;
    for (let c = 0; c < d; c++) s += P.transform[r * d + c] * (x[c] - P.mean[c]);
    z[r] = s;
  }
  return z;
}
function l2(z: Float64Array, C: Float32Array, l: number): number {
  let s = 0;
  for (let r = 0; r < dr; r++) s += (z[r] - C[l * dr + r]) ** 2;
  return s;
}
// List of every true neighbour (insert params: where it is stored).
const listOf = new Map<number, number>();
for (let q = 0; q < half; q++)
  for (let j = 0; j < K; j++) {
    const id = gt[q * ds.gtK + j];
    if (listOf.has(id)) continue;
    const z = reduce(ins, prep(ds.base.subarray(id * d, (id + 1) * d)));
    let best = 0, bd = Infinity;
    for (let l = 0; l < nlist; l++) {
      const v = l2(z, ins.centroids, l);
      if (v < bd) (bd = v), (best = l);
    }
    listOf.set(id, best);
  }
// With --reduced: every base vector through the insert params, and its list.
const Y = new Float32Array(a.reduced ? ds.n * dr : 0);
const allList = new Int32Array(a.reduced ? ds.n : 0);
const m = dr / 2;
const codes = new Uint8Array(a.reduced ? ds.n * m : 0); // the stored codes (insert codebooks)
if (a.reduced)
  for (let id = 0; id < ds.n; id++) {
    const z = reduce(ins, prep(ds.base.subarray(id * d, (id + 1) * d)));
    Y.set(z, id * dr);
    let best = 0, bd = Infinity;
    for (let l = 0; l < nlist; l++) {
      const v = l2(z, ins.centroids, l);
      if (v < bd) (bd = v), (best = l);
    }
    allList[id] = best;
    for (let j = 0; j < m; j++) {
      let bc = 0, bd2 = Infinity;
      for (let c = 0; c < 16; c++) {
        const v = (z[2 * j] - ins.codebooks[j * 32 + 2 * c]) ** 2 + (z[2 * j + 1] - ins.codebooks[j * 32 + 2 * c + 1]) ** 2;
        if (v < bd2) (bd2 = v), (bc = c);
      }
      codes[id * m + j] = bc;
    }
  }
// Within-cell variance of the stored vectors per (sub-quantiser, code): E||y_j - c||^2 given the code.
const cellVar = new Float64Array(m * 16);
if (a.reduced) {
  const cnt = new Float64Array(m * 16);
  for (let id = 0; id < ds.n; id++)
    for (let j = 0; j < m; j++) {
      const c = codes[id * m + j];
      cellVar[j * 16 + c] += (Y[id * dr + 2 * j] - ins.codebooks[j * 32 + 2 * c]) ** 2 + (Y[id * dr + 2 * j + 1] - ins.codebooks[j * 32 + 2 * c + 1]) ** 2;
      cnt[j * 16 + c]++;
    }
  for (let i = 0; i < m * 16; i++) cellVar[i] /= Math.max(1, cnt[i]);
}
// Rank of each neighbour's list in the query's probe order under params P.
function listRanks(P: FilterParams): Int32Array {
  const out = new Int32Array(half * K);
  for (let q = 0; q < half; q++) {
    const z = reduce(P, prep(ds.queries.subarray(q * d, (q + 1) * d)));
    const dist = Array.from({ length: nlist }, (_, l) => l2(z, P.centroids, l));
    const order = dist.map((v, l) => [v, l]).sort((x, y) => x[0] - y[0]);
    const rank = new Int32Array(nlist);
    order.forEach(([, l], i) => (rank[l] = i));
    for (let j = 0; j < K; j++) out[q * K + j] = rank[listOf.get(gt[q * ds.gtK + j])!];
  }
  return out;
}
function recallOf(ids: BigInt64Array, from: number, to: number): number {
  let hit = 0;
  for (let q = from; q < to; q++) {
    const t = new Set(Array.from(gt.subarray(q * ds.gtK, q * ds.gtK + K)));
    for (let j = 0; j < K; j++) if (t.has(Number(ids[(q - from) * K + j]))) hit++;
  }
  return hit / ((to - from) * K);
}
const use = (v: string) => (v === 'learned' ? idx.setSearchParams(learned) : idx.resetSearchParams());

if (a.only) {
  // Profiling mode: one variant, one point, many passes over the tuning half.
  use(a.only);
  const nprobe = Number(a.nprobe), kFactor = Number(a.kfactor);
  const t = performance.now();
  let n = 0;
  for (let r = 0; r < Number(a.reps); r++)
    for (let q = 0; q < half; q++, n++) idx.search(ds.queries.subarray(q * d, (q + 1) * d), { k: K, nprobe, kFactor });
  console.log(`${a.only} nprobe ${nprobe} kFactor ${kFactor}: ${((n / (performance.now() - t)) * 1000).toFixed(0)} QPS wall`);
} else {
  const pts = a.points!.split(',').map((s) => s.split(':').map(Number));
  for (const v of ['untrained', 'learned']) {
    use(v);
    const ranks = listRanks(v === 'learned' ? learned : ins);
    console.log(`\n${v}: probe-limited recall (true neighbour's list among the first nprobe) ` +
      [8, 12, 16, 24, 32, 48, 64, 96].map((np) => `${np}:${(ranks.filter((r) => r < np).length / ranks.length).toFixed(4)}`).join(' '));
    const P = v === 'learned' ? learned : ins;
    for (const [nprobe, kFactor] of pts) {
      const r = await idx.searchBatch(ds.queries.subarray(0, half * d), { k: K, nprobe, kFactor });
      const rec = recallOf(r.ids, 0, half);
      const cap = ranks.filter((x) => x < nprobe).length / ranks.length;
      let extra = '';
      if (a.reduced) {
        // Exact reduced-space ranking of the probed lists' members (queries through P, data through the insert params).
        const hits = [0, 0, 0, 0];
        for (let q = 0; q < half; q++) {
          const z = reduce(P, prep(ds.queries.subarray(q * d, (q + 1) * d)));
          const order = Array.from({ length: nlist }, (_, l) => [l2(z, P.centroids, l), l]).sort((x, y) => x[0] - y[0]);
          const probed = new Set(order.slice(0, nprobe).map((x) => x[1]));
          // LUT as the search builds it: per sub-quantiser minimum subtracted, one global uint8 scale.
          const lut = new Float64Array(m * 16);
          let maxrange = 0;
          for (let j = 0; j < m; j++) {
            let mn = Infinity, mx = -Infinity;
            for (let c = 0; c < 16; c++) {
              const v = (z[2 * j] - P.codebooks[j * 32 + 2 * c]) ** 2 + (z[2 * j + 1] - P.codebooks[j * 32 + 2 * c + 1]) ** 2;
              lut[j * 16 + c] = v;
              mn = Math.min(mn, v), mx = Math.max(mx, v);
            }
            for (let c = 0; c < 16; c++) lut[j * 16 + c] -= mn;
            maxrange = Math.max(maxrange, mx - mn);
          }
          const scale = 255 / maxrange;
          const sc: [number, number][] = [], sp: [number, number][] = [], sq: [number, number][] = [], sv: [number, number][] = [];
          for (let id = 0; id < ds.n; id++) {
            if (!probed.has(allList[id])) continue;
            let s = 0, f = 0, u = 0, vb = 0;
            for (let t = 0; t < dr; t++) s += (z[t] - Y[id * dr + t]) ** 2;
            for (let j = 0; j < m; j++) {
              const e = lut[j * 16 + codes[id * m + j]];
              f += e;
              vb += e + cellVar[j * 16 + codes[id * m + j]];
              u += Math.min(255, Math.floor(e * scale + 0.5));
            }
            sc.push([s, id]), sp.push([f, id]), sq.push([u, id]), sv.push([vb, id]);
          }
          for (const [arr, w] of [[sc, 0], [sp, 1], [sq, 2], [sv, 3]] as const) {
            arr.sort((x, y) => x[0] - y[0]);
            const keep = new Set(arr.slice(0, K * kFactor).map((x) => x[1]));
            for (let j = 0; j < K; j++) if (keep.has(gt[q * ds.gtK + j])) hits[w]++;
          }
        }
        extra = `; filter keeps with exact reduced distances ${(hits[0] / (half * K)).toFixed(4)}, float PQ LUT ${(hits[1] / (half * K)).toFixed(4)}, uint8 LUT ${(hits[2] / (half * K)).toFixed(4)}, float LUT + within-cell variance ${(hits[3] / (half * K)).toFixed(4)}`;
      }
      console.log(`  nprobe ${nprobe} kFactor ${kFactor}: recall ${rec.toFixed(4)}; lost to probing ${(1 - cap).toFixed(4)}, lost to PQ ranking ${(cap - rec).toFixed(4)}${extra}`);
    }
  }
}
