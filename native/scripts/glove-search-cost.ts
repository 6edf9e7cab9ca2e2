// CPU per unfiltered native search on GloVe 341k (bench:e2e's glove-341k set, cached by
// bench/lib/large-datasets.ts) at the grid points bench:e2e picks, with the index CREATE INDEX would
// build (nlist 0.75·√n, trained on a 100k-row sample). For comparing with bench:e2e's end-to-end times:
//   node --import tsx native/scripts/glove-search-cost.ts
import { loadGlove341k } from '../../bench/lib/large-datasets.ts';
import { VectorIndex } from '../index.ts';
const ds = loadGlove341k(() => {});
const idx = new VectorIndex({ dim: ds.dim, metric: 'cos' });
const t = performance.now();
await idx.train(ds.base.subarray(0, Math.min(ds.n, 100_000) * ds.dim), undefined, undefined, Math.round(0.75 * Math.sqrt(ds.n)));
await idx.add(BigInt64Array.from({ length: ds.n }, (_, i) => BigInt(i)), ds.base);
console.log(`build ${((performance.now() - t) / 1000).toFixed(1)} s, nlist ${idx.stats().nlist}`);
for (const [nprobe, kFactor] of [[40, 16], [96, 32], [128, 48], [128, 16]]) {
  let best = Infinity;
  for (let r = 0; r < 3; r++) {
    const c0 = process.cpuUsage();
    for (let i = 0; i < 500; i++) idx.search(ds.queries.subarray(i * ds.dim, (i + 1) * ds.dim), { k: 10, nprobe, kFactor });
    const c = process.cpuUsage(c0);
    best = Math.min(best, (c.user + c.system) / 500);
  }
  console.log(`nprobe ${nprobe} kf ${kFactor}: ${best.toFixed(0)} µs CPU/query (best of 3)`);
}
