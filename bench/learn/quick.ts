import { loadDataset, recallAtK } from '../lib/datasets.ts';
import { VectorIndex } from '../../native/index.ts';
const [name = 'wordnet-use-512', metric = 'cos', limitS] = process.argv.slice(2);
const ds = loadDataset(name, limitS ? { limit: Number(limitS) } : {});
const gt = ds.groundTruth[metric as 'l2' | 'cos']!;
const idx = new VectorIndex({ dim: ds.dim, metric: metric as 'cos', vectorStorage: 'float16' });
let t = performance.now();
await idx.train(ds.base);
await idx.add(new BigInt64Array(ds.n).map((_, i) => BigInt(i)), ds.base);
console.log('build', (performance.now() - t).toFixed(0), idx.stats());
function sweep(label: string) {
  const k = 10;
  for (const kFactor of (process.env.KFS ?? '2,3,5,10').split(',').map(Number))
    for (const nprobe of (process.env.NPS ?? '8,16,32,64').split(',').map(Number)) {
      const res = new Float64Array(ds.nq * k);
      const c0 = process.cpuUsage();
      for (let i = 0; i < ds.nq; i++) {
        const r = idx.search(ds.queries.subarray(i * ds.dim, (i + 1) * ds.dim), { k, nprobe, kFactor });
        for (let j = 0; j < k; j++) res[i * k + j] = Number(r.ids[j]);
      }
      const c = process.cpuUsage(c0);
      console.log(`${label} kf=${kFactor} np=${nprobe} recall=${recallAtK(res, gt, ds.nq, k, ds.gtK).toFixed(4)} cpuQPS=${(ds.nq / ((c.user + c.system) / 1e6)).toFixed(0)}`);
    }
}
sweep('base');
t = performance.now();
const rep = await idx.learn({ sampleQueries: Number(process.env.SQ ?? 65536), epochs: Number(process.env.EP ?? 1), recenter: process.env.RC !== '0' }, (p, d, tot, v) => {
  if (!p.startsWith('train') || d === tot) console.log(`${((performance.now() - t) / 1000).toFixed(1)}s ${p} ${d}/${tot} ${v ?? ''}`);
});
console.log(rep);
sweep('learn');
