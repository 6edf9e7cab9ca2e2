// Measures filtered-query latency of the IVF scan vs brute force over the allowed ids
// as the allowed set shrinks, to place the brute-force switch (WINNOW_FILTER_BRUTE_WORK).
// Queries are base vectors (not the evaluation query set).
// usage: npx tsx native/scripts/filter-threshold.ts   (uses /tmp/winnow-prof-wordnet from profile-search.ts)
import { loadDataset } from '../../bench/lib/datasets.ts';
import { VectorIndex } from '../index.ts';

const idx = await VectorIndex.load(process.env.CACHE ?? '/tmp/winnow-prof-wordnet');
const ds = loadDataset('wordnet-use-512', { limit: 2000 });
const n = idx.size, d = idx.dim, nq = 200;
for (const allowed of [500, 1000, 2000, 3000, 5000, 10000, 20000]) {
  const step = Math.floor(n / allowed);
  const filter = new BigInt64Array(allowed).map((_, i) => BigInt(i * step));
  const time = (fn: (q: Float32Array) => unknown) => {
    const c0 = process.cpuUsage();
    for (let i = 0; i < nq; i++) fn(ds.base.subarray((i * 7 % 2000) * d, (i * 7 % 2000 + 1) * d));
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / nq;
  };
  // search() decides by WINNOW_FILTER_BRUTE_WORK; run twice with the env forced either way.
  const ivf = time((q) => idx.search(q, { k: 10, nprobe: 24, kFactor: 5, filter }));
  console.log(`allowed=${allowed} work=${allowed * d} search(): ${ivf.toFixed(1)} us/query`);
}
