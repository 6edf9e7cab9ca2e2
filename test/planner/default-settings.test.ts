// Out of the box, recall@10 ≥ 0.95 on every dataset in ../shared/data (issue 5): the planner's default
// nprobe / k_factor on an index built the way CREATE INDEX builds it (add the rows, train on a sample).
// The queries are the datasets' own query sets; the defaults were chosen from these numbers, so the
// floors here check that nothing moved, they do not measure generalisation (bench:e2e does, on held-out
// queries).
import { describe, expect, it } from 'vitest';
import { loadDataset, recallAtK } from '../../bench/lib/datasets.ts';
import { VectorIndex, type Metric } from '../../native/index.ts';
import { PLANNER_DEFAULT_K_FACTOR, PLANNER_DEFAULT_NPROBE, gucsFromStartup, settingsFrom, noGucs } from '../../sql/planner/settings.ts';

async function defaultRecall(name: string, metric: Metric, limit?: number): Promise<number> {
  const ds = loadDataset(name, limit ? { limit } : {});
  const idx = new VectorIndex({ dim: ds.dim, metric });
  await idx.add(BigInt64Array.from({ length: ds.n }, (_, i) => BigInt(i)), ds.base);
  await idx.train(ds.base.subarray(0, Math.min(ds.n, 100_000) * ds.dim));
  const s = settingsFrom(noGucs(), 10);
  const r = await idx.searchBatch(ds.queries, { k: 10, nprobe: s.nprobe, kFactor: s.kFactor });
  return recallAtK(Array.from(r.ids, Number), ds.groundTruth[metric as 'l2' | 'cos']!, ds.nq, 10, ds.gtK);
}

describe(`default settings (nprobe ${PLANNER_DEFAULT_NPROBE}, k_factor ${PLANNER_DEFAULT_K_FACTOR}) reach recall@10 ≥ 0.95`, () => {
  it('are what a session without SET gets', () => {
    expect(settingsFrom(noGucs(), 10)).toEqual({ nprobe: PLANNER_DEFAULT_NPROBE, kFactor: PLANNER_DEFAULT_K_FACTOR });
    expect(settingsFrom(gucsFromStartup(undefined), 10)).toEqual({ nprobe: PLANNER_DEFAULT_NPROBE, kFactor: PLANNER_DEFAULT_K_FACTOR });
  });
  it('startup options are read as Postgres reads them (-c x=y, --x=y, -cx=y, dashes folded, \\ escapes a space)', () => {
    expect(gucsFromStartup('-c winnow.nprobe=24 --winnow.k-factor=5 -chnsw.ef_search=80 -c statement_timeout=5s')).toMatchObject({ nprobe: '24', kFactor: '5', efSearch: '80' });
    expect(gucsFromStartup('-c winnow.filter_strategy=pre\\ x -c ivfflat.probes=9')).toMatchObject({ filterStrategy: 'pre x', probes: '9' });
    expect(gucsFromStartup('-c winnow.nprobe')).toEqual(noGucs());
  });
  for (const [name, metric, limit] of [['glove-100', 'cos'], ['fashion-mnist-784', 'l2'], ['wordnet-use-512', 'cos', 30464]] as const) {
    it(`${name}${limit ? ` (first ${limit} rows)` : ''}, ${metric}`, async () => {
      const recall = await defaultRecall(name, metric, limit);
      console.log(`${name} ${metric}: recall@10 ${recall.toFixed(4)} with the planner's defaults`);
      expect(recall).toBeGreaterThanOrEqual(0.95);
    });
  }
});
