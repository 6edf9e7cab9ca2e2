// Development aid: learn() with option variants on one index and print the *validation* numbers
// (split of the training samples; the dataset's queries are not used). Used to choose defaults.
// usage: node --import tsx bench/learn/validate.ts <dataset> [limit] '<json options>'...
import { loadDataset } from '../lib/datasets.ts';
import { VectorIndex } from '../../native/index.ts';

const [name = 'wordnet-use-512', limitS, ...variants] = process.argv.slice(2);
const ds = loadDataset(name, limitS && limitS !== 'all' ? { limit: Number(limitS) } : {});
const idx = new VectorIndex({ dim: ds.dim, metric: ds.groundTruth.cos ? 'cos' : 'l2' });
await idx.train(ds.base);
await idx.add(new BigInt64Array(ds.n).map((_, i) => BigInt(i)), ds.base);
for (const v of variants.length ? variants : ['{}']) {
  const t = performance.now();
  const r = await idx.learn({ ...JSON.parse(v), install: false });
  console.log(v, `lr=${r.learningRate} loss ${r.validationLossBefore.toFixed(4)}->${r.validationLossAfter.toFixed(4)} recall ${r.validationRecallBefore.toFixed(4)}->${r.validationRecallAfter.toFixed(4)} (no recenter ${r.validationRecallWithoutRecenter.toFixed(4)}; probe ${r.probeLearned} ${r.validationRecallProbe.toFixed(4)} loss ${r.probeLossBefore.toFixed(4)}->${r.probeLossAfter.toFixed(4)} lr ${r.probeLearningRate}) ${((performance.now() - t) / 1000).toFixed(1)}s`);
}
