// Quick single-thread QPS/recall sweep (the full harness lives in bench/).
// usage: npx tsx native/scripts/quickbench.ts <dataset> <metric> [limit] [nlist] [reducedDim] [storage]
import { loadDataset, recallAtK } from '../../bench/lib/datasets.ts';
import { VectorIndex, type Metric } from '../index.ts';

const [name = 'wordnet-use-512', metric = 'cos', limitS, nlistS, drS, storage = 'float32'] = process.argv.slice(2);
const ds = loadDataset(name, limitS ? { limit: Number(limitS) } : {});
const gt = ds.groundTruth[metric as 'l2' | 'cos']!;
const idx = new VectorIndex({
  dim: ds.dim,
  metric: metric as Metric,
  nlist: nlistS ? Number(nlistS) : undefined,
  reducedDim: drS ? Number(drS) : undefined,
  vectorStorage: storage as 'float32' | 'float16',
});
let t = performance.now();
await idx.train(ds.base, process.env.PROGRESS ? (p, d, tot) => console.log(`${(performance.now() - t).toFixed(0)} ms ${p} ${d}/${tot}`) : undefined);
const tTrain = performance.now() - t;
const ids = new BigInt64Array(ds.n).map((_, i) => BigInt(i));
t = performance.now();
await idx.add(ids, ds.base);
const tAdd = performance.now() - t;
console.log(`${name} n=${ds.n} d=${ds.dim} ${metric} train ${tTrain.toFixed(0)} ms add ${tAdd.toFixed(0)} ms build ${(tTrain + tAdd).toFixed(0)} ms`, idx.stats());
const k = 10;
const kfs = (process.env.KFS ?? '5,10').split(',').map(Number);
const nps = (process.env.NPS ?? '16,32,64,128').split(',').map(Number);
for (const kFactor of kfs) {
  for (const nprobe of nps) {
    const res = new Float64Array(ds.nq * k);
    // warm
    for (let i = 0; i < 50; i++) idx.search(ds.queries.subarray(i * ds.dim, (i + 1) * ds.dim), { k, nprobe, kFactor });
    const cpu0 = process.cpuUsage();
    t = performance.now();
    for (let i = 0; i < ds.nq; i++) {
      const r = idx.search(ds.queries.subarray(i * ds.dim, (i + 1) * ds.dim), { k, nprobe, kFactor });
      for (let j = 0; j < k; j++) res[i * k + j] = Number(r.ids[j]);
    }
    const dt = performance.now() - t;
    const cpu = process.cpuUsage(cpu0);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    console.log(`kFactor=${kFactor} nprobe=${nprobe} recall@10=${recallAtK(res, gt, ds.nq, k, ds.gtK).toFixed(4)} QPS=${((ds.nq / dt) * 1000).toFixed(0)} cpuQPS=${((ds.nq / cpuMs) * 1000).toFixed(0)}`);
  }
}
