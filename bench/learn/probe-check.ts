// Development aid: is probing (nprobe-limited recall, large kFactor) better or worse with the learnt
// params? Queries are 1000 random *base* vectors (self excluded), never the dataset's query set.
import { loadDataset } from '../lib/datasets.ts';
import { VectorIndex } from '../../native/index.ts';

const [name = 'wordnet-use-512', limitS = 'all', optsJson = '{}'] = process.argv.slice(2);
const ds = loadDataset(name, limitS !== 'all' ? { limit: Number(limitS) } : {});
const idx = new VectorIndex({ dim: ds.dim, metric: ds.groundTruth.cos ? 'cos' : 'l2' });
await idx.train(ds.base);
await idx.add(new BigInt64Array(ds.n).map((_, i) => BigInt(i)), ds.base);
const nq = 1000, K = 10;
const qs = new Float32Array(nq * ds.dim);
const qid: number[] = [];
for (let i = 0; i < nq; i++) {
  const id = (i * 7919 + 13) % ds.n;
  qid.push(id);
  qs.set(ds.base.subarray(id * ds.dim, (id + 1) * ds.dim), i * ds.dim);
}
const exact = await idx.bruteForce(qs, { k: K + 1 });
const truth = qid.map((id, i) => new Set([...exact.ids.subarray(i * (K + 1), (i + 1) * (K + 1))].filter((x) => x !== BigInt(id)).slice(0, K)));
async function rec(nprobe: number, kFactor: number) {
  const r = await idx.searchBatch(qs, { k: K + 1, nprobe, kFactor });
  let hit = 0;
  for (let i = 0; i < nq; i++) for (const x of r.ids.subarray(i * (K + 1), (i + 1) * (K + 1))) if (x !== BigInt(qid[i]) && truth[i].has(x)) hit++;
  return (hit / (nq * K)).toFixed(4);
}
const pts = [[8, 50], [16, 50], [32, 50], [16, 4], [32, 8], [48, 8]];
const before = await Promise.all(pts.map(([a, b]) => rec(a, b)));
await idx.learn(JSON.parse(optsJson));
const after = await Promise.all(pts.map(([a, b]) => rec(a, b)));
pts.forEach((p, i) => console.log(`nprobe ${p[0]} kFactor ${p[1]}: ${before[i]} -> ${after[i]}`));
