// CPU per filtered search with a PreparedFilter on wordnet-use-512's tag predicates, for A/B runs of
// two addon builds (compact filter copies, id_filter.h, against the build before them):
//   node --import tsx native/scripts/filter-ab.ts                        (this checkout's addon)
//   WINNOW_NATIVE_ADDON=<other>/native/build/Release/winnow_native.node node --import tsx native/scripts/filter-ab.ts
// Alternate the two a few times: this 2-core VM drifts. The index is built once and kept in
// WINNOW_FILTER_AB_CACHE (default /tmp/winnow-filter-ab). Queries are the dataset's query vectors;
// nothing is tuned on them (the settings are the planner's defaults and bench:e2e's tuned ones).
import { existsSync } from 'node:fs';
import { loadDataset, loadMeta } from '../../bench/lib/datasets.ts';
import { PreparedFilter, VectorIndex } from '../index.ts';
const ds = loadDataset('wordnet-use-512');
const tags = loadMeta('wordnet-use-512').slice(0, ds.n).map((m) => String(m.category));
const dir = process.env.WINNOW_FILTER_AB_CACHE ?? '/tmp/winnow-filter-ab';
let idx: VectorIndex;
if (existsSync(dir + '/index.winnow')) idx = await VectorIndex.load(dir);
else {
  idx = new VectorIndex({ dim: ds.dim, metric: 'cos' });
  await idx.train(ds.base);
  await idx.add(BigInt64Array.from({ length: ds.n }, (_, i) => BigInt(i)), ds.base);
  await idx.save(dir);
}
const preds: Record<string, (t: string) => boolean> = {
  'verb.social': (t) => t === 'verb.social',
  'noun.artifact': (t) => t === 'noun.artifact',
  '8 tags': (t) => ['adj.all', 'noun.artifact', 'noun.person', 'noun.act', 'noun.communication', 'noun.state', 'noun.attribute', 'verb.change'].includes(t),
};
const nq = 500, k = 10;
for (const [name, p] of Object.entries(preds)) {
  const allowed = BigInt64Array.from(tags.flatMap((t, i) => (p(t) ? [BigInt(i)] : [])));
  const f = new PreparedFilter(allowed);
  const frac = allowed.length / ds.n;
  const mult = Math.min(6, Math.max(1, Math.sqrt(1 / frac)));
  for (const [np, kf] of [[40, 16], [32, 4]]) {
    const nprobe = Math.ceil(np * mult);
    idx.search(ds.queries.subarray(0, ds.dim), { k, nprobe, kFactor: kf, filter: f, bruteForceBelow: 0 });
    let best = Infinity;
    for (let rep = 0; rep < 5; rep++) {
      const c0 = process.cpuUsage();
      for (let i = 0; i < nq; i++) idx.search(ds.queries.subarray(i * ds.dim, (i + 1) * ds.dim), { k, nprobe, kFactor: kf, filter: f, bruteForceBelow: 0 });
      const c = process.cpuUsage(c0);
      best = Math.min(best, (c.user + c.system) / nq);
    }
    console.log(`${name} ${(100 * frac).toFixed(1)}% nprobe ${nprobe} kf ${kf}: ${best.toFixed(1)} µs/query (best of 5)`);
  }
}
