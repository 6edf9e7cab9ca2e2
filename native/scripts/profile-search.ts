// Builds (or loads from /tmp cache) the full wordnet index and loops searches, for perf.
import { existsSync } from 'node:fs';
import { loadDataset, recallAtK } from '../../bench/lib/datasets.ts';
import { VectorIndex } from '../index.ts';

const dir = process.env.CACHE ?? '/tmp/winnow-prof-wordnet';
const nprobe = Number(process.env.NPROBE ?? 32), kFactor = Number(process.env.KF ?? 10), reps = Number(process.env.REPS ?? 5);
const ds = loadDataset('wordnet-use-512');
let idx: VectorIndex;
if (existsSync(dir + '/index.winnow')) {
  const t = performance.now();
  idx = await VectorIndex.load(dir);
  console.log(`load ${(performance.now() - t).toFixed(0)} ms`);
} else {
  idx = new VectorIndex({ dim: ds.dim, metric: 'cos', vectorStorage: (process.env.STORAGE as 'float16') ?? 'float32', nlist: process.env.NLIST ? Number(process.env.NLIST) : undefined, reducedDim: process.env.RDIM ? Number(process.env.RDIM) : undefined });
  let t = performance.now();
  await idx.train(ds.base);
  await idx.add(new BigInt64Array(ds.n).map((_, i) => BigInt(i)), ds.base);
  console.log(`build ${(performance.now() - t).toFixed(0)} ms`);
  t = performance.now();
  await idx.save(dir);
  console.log(`save ${(performance.now() - t).toFixed(0)} ms`);
}
const k = 10;
for (let r = 0; r < reps; r++) {
  const res = new Float64Array(ds.nq * k);
  const t = performance.now();
  for (let i = 0; i < ds.nq; i++) {
    const out = idx.search(ds.queries.subarray(i * ds.dim, (i + 1) * ds.dim), { k, nprobe, kFactor });
    for (let j = 0; j < k; j++) res[i * k + j] = Number(out.ids[j]);
  }
  const dt = performance.now() - t;
  console.log(`nprobe=${nprobe} kFactor=${kFactor} recall=${recallAtK(res, ds.groundTruth.cos!, ds.nq, k, ds.gtK).toFixed(4)} QPS=${((ds.nq / dt) * 1000).toFixed(0)}`);
}
