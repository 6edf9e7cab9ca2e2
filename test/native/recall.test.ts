// recall@10 on real datasets (../shared/data) at fixed default-ish parameters. The
// parameters were picked on the wordnet-use-512 full set and base-vector queries, not
// on these query sets; floors sit a little under the values measured on this machine.
import { describe, expect, it } from 'vitest';
import { loadDataset, recallAtK } from '../../bench/lib/datasets.ts';
import { VectorIndex, type Metric } from '../../native/index.ts';
import { seqIds } from './helpers.ts';

async function measure(name: string, metric: Metric, opts: { limit?: number; nprobe: number; kFactor: number; storage?: 'float32' | 'float16' }) {
  const ds = loadDataset(name, opts.limit ? { limit: opts.limit } : {});
  const gt = ds.groundTruth[metric as 'l2' | 'cos'];
  if (!gt) throw new Error(`${name}: no ${metric} ground truth for ${ds.n} rows`);
  const idx = new VectorIndex({ dim: ds.dim, metric, vectorStorage: opts.storage });
  await idx.train(ds.base);
  await idx.add(seqIds(ds.n), ds.base);
  const k = 10;
  const res = await idx.searchBatch(ds.queries, { k, nprobe: opts.nprobe, kFactor: opts.kFactor });
  const ids = Array.from(res.ids, Number);
  return { recall: recallAtK(ids, gt, ds.nq, k, ds.gtK), stats: idx.stats() };
}

describe('recall@10 on real data', () => {
  it('glove-100 (50k × 100, cos): ≥ 0.94 at nprobe 64, kFactor 10', async () => {
    const { recall, stats } = await measure('glove-100', 'cos', { nprobe: 64, kFactor: 10 });
    console.log(`glove-100 cos recall@10 ${recall.toFixed(4)}`, stats);
    expect(recall).toBeGreaterThanOrEqual(0.94);
  });

  it('fashion-mnist-784 (10k × 784, l2): ≥ 0.99 at nprobe 16, kFactor 10', async () => {
    const { recall, stats } = await measure('fashion-mnist-784', 'l2', { nprobe: 16, kFactor: 10 });
    console.log(`fashion-mnist-784 l2 recall@10 ${recall.toFixed(4)}`, stats);
    expect(recall).toBeGreaterThanOrEqual(0.99);
    expect(stats.filterBytesPerVector).toBeLessThanOrEqual(784 / 8);
  });

  it('wordnet-use-512 first 30,464 rows (cos, float16 storage): ≥ 0.97 at nprobe 32, kFactor 10', async () => {
    const { recall, stats } = await measure('wordnet-use-512', 'cos', { limit: 30464, nprobe: 32, kFactor: 10, storage: 'float16' });
    console.log(`wordnet-use-512[30k] cos recall@10 ${recall.toFixed(4)}`, stats);
    expect(recall).toBeGreaterThanOrEqual(0.97);
    expect(stats.filterBytesPerVector).toBeLessThanOrEqual(512 / 8);
  });
});
