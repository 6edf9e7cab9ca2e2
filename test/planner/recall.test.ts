// Recall through the wire with default settings on a real dataset (wordnet-use-512, first 30,464
// rows, cosine): unfiltered against the dataset's ground truth, filtered (category / pos at several
// selectivities) against an exact filtered answer computed here.
import { afterAll, beforeAll, expect, test } from 'vitest';
import pg from 'pg';
import { loadDataset, loadMeta, recallAtK, type Dataset } from '../../bench/lib/datasets.ts';
import { plannerHarness, type PlannerHarness } from './helpers.ts';
import { plannerStats } from '../../sql/planner/session.ts';

const N = 30464;
let h: PlannerHarness;
let c: pg.Client;
let ds: Dataset;
let meta: Array<Record<string, unknown>>;

const vecText = (v: Float32Array, open = '[', close = ']') => open + Array.from(v, (x) => String(x)).join(',') + close;

beforeAll(async () => {
  ds = loadDataset('wordnet-use-512', { limit: N });
  meta = loadMeta('wordnet-use-512').slice(0, N);
  h = await plannerHarness();
  c = await h.client();
  const d = await h.direct();
  await c.query('CREATE EXTENSION vector');
  await c.query(`CREATE TABLE words (id bigint PRIMARY KEY, pos text NOT NULL, category text NOT NULL, v vector(512))`);
  const t0 = performance.now();
  for (let s = 0; s < N; s += 400) {
    const rows: string[] = [];
    for (let i = s; i < Math.min(N, s + 400); i++) {
      const m = meta[i];
      rows.push(`(${i}, '${m.pos}', '${m.category}', '${vecText(ds.base.subarray(i * 512, (i + 1) * 512), '{', '}')}')`);
    }
    await d.query(`INSERT INTO words VALUES ${rows.join(',')}`);
  }
  const t1 = performance.now();
  // pos and category are mirrored in the index for the `in` filter strategy.
  await c.query('CREATE INDEX words_v ON words USING winnow (v vector_cosine_ops) INCLUDE (pos, category)');
  console.log(`wordnet 30k: load ${((t1 - t0) / 1000).toFixed(1)} s, CREATE INDEX ${((performance.now() - t1) / 1000).toFixed(1)} s`);
  await d.end();
}, 240_000);

afterAll(async () => {
  await c?.end();
  await h?.close();
});

function cosDist(a: Float32Array, b: Float32Array): number {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  return 1 - dot / Math.sqrt(na * nb);
}

test('unfiltered recall@10 ≥ 0.95 with default settings (simple and extended protocol)', async () => {
  const nq = 100;
  const before = plannerStats.nativeSearches;
  const got = new Int32Array(nq * 10).fill(-1);
  const got2 = new Int32Array(nq * 10).fill(-1);
  for (let q = 0; q < nq; q++) {
    const qv = ds.queries.subarray(q * 512, (q + 1) * 512);
    const r = await c.query(`SELECT id FROM words ORDER BY v <=> '${vecText(qv)}' LIMIT 10`);
    r.rows.forEach((row, i) => (got[q * 10 + i] = Number(row.id)));
    const r2 = await c.query({ name: 'knn', text: 'SELECT id FROM words ORDER BY v <=> $1 LIMIT 10', values: [vecText(qv)] });
    r2.rows.forEach((row, i) => (got2[q * 10 + i] = Number(row.id)));
  }
  expect(plannerStats.nativeSearches - before).toBe(2 * nq);
  const recall = recallAtK(got, ds.groundTruth.cos!, nq, 10, ds.gtK);
  const recall2 = recallAtK(got2, ds.groundTruth.cos!, nq, 10, ds.gtK);
  console.log(`wordnet 30k through Winnow, defaults: recall@10 ${recall.toFixed(4)} (simple), ${recall2.toFixed(4)} (extended)`);
  expect(recall).toBeGreaterThanOrEqual(0.95);
  expect(recall2).toBeGreaterThanOrEqual(0.95);
  const ex = await c.query(`EXPLAIN SELECT id FROM words ORDER BY v <=> '${vecText(ds.queries.subarray(0, 512))}' LIMIT 10`);
  expect(ex.rows.map((x) => x['QUERY PLAN']).join('\n')).toMatch(/IVF nprobe=\d+/);
});

test('filtered top-10 returns min(10, matches) rows with recall@10 ≥ 0.95 at every selectivity', async () => {
  const count = new Map<string, number>();
  for (const m of meta) count.set(`category = '${m.category}'`, (count.get(`category = '${m.category}'`) ?? 0) + 1);
  for (const m of meta) count.set(`pos = '${m.pos}'`, (count.get(`pos = '${m.pos}'`) ?? 0) + 1);
  const sorted = [...count.entries()].sort((a, b) => a[1] - b[1]);
  // Smallest (~0.1%), a few in between, the largest, plus an id range and everything.
  const picks = [sorted[0], sorted[Math.floor(sorted.length / 3)], sorted[Math.floor((2 * sorted.length) / 3)], sorted[sorted.length - 1]]
    .map(([w]) => w).concat(['id % 1000 < 3', 'id % 10 = 0', 'id % 2 = 0', 'id >= 0']);
  const matches = (where: string, i: number) => {
    const m = meta[i];
    if (where === 'id % 1000 < 3') return i % 1000 < 3;
    if (where === 'id >= 0') return true;
    if (where === 'id % 10 = 0') return i % 10 === 0;
    if (where === 'id % 2 = 0') return i % 2 === 0;
    const [col, val] = where.split(' = ');
    return String(m[col]) === val.slice(1, -1);
  };
  for (const where of picks) {
    const allowed: number[] = [];
    for (let i = 0; i < N; i++) if (matches(where, i)) allowed.push(i);
    let hit = 0, total = 0;
    const nq = 20;
    for (let q = 0; q < nq; q++) {
      const qv = ds.queries.subarray(q * 512, (q + 1) * 512);
      const exact = allowed.map((i) => ({ i, d: cosDist(qv, ds.base.subarray(i * 512, (i + 1) * 512)) })).sort((a, b) => a.d - b.d).slice(0, 10);
      const r = await c.query(`SELECT id, v <=> '${vecText(qv)}' AS d FROM words WHERE ${where} ORDER BY v <=> '${vecText(qv)}' LIMIT 10`);
      expect(r.rows.length).toBe(Math.min(10, allowed.length));
      const ds2 = r.rows.map((x) => Number(x.d));
      for (let i = 1; i < ds2.length; i++) expect(ds2[i]).toBeGreaterThanOrEqual(ds2[i - 1]);
      const got = new Set(r.rows.map((x) => Number(x.id)));
      for (const e of exact) if (got.has(e.i)) hit++;
      total += exact.length;
    }
    const recall = hit / total;
    console.log(`filter ${where}: ${allowed.length} rows (${((100 * allowed.length) / N).toFixed(2)}%), recall@10 ${recall.toFixed(4)}`);
    expect(recall).toBeGreaterThanOrEqual(0.95);
  }
}, 120_000);

test('each filter strategy: min(10, matches) rows, recall@10 ≥ 0.95 at 0.1 %…100 % selectivity; latency per strategy', async () => {
  const count = new Map<string, number>();
  for (const m of meta) count.set(`pos = '${m.pos}'`, (count.get(`pos = '${m.pos}'`) ?? 0) + 1);
  for (const m of meta) count.set(`category = '${m.category}'`, (count.get(`category = '${m.category}'`) ?? 0) + 1);
  const near = (target: number) => [...count.entries()].sort((a, b) => Math.abs(a[1] / N - target) - Math.abs(b[1] / N - target))[0][0];
  // Semantic predicates (clustered in vector space) at ~0.1 %…70 %, then predicates on the id, which
  // are spread uniformly over the vectors, at 2 %…100 %.
  const picks = [near(0.001), near(0.01), near(0.02), near(0.05), near(0.1), near(0.15), near(0.25), near(0.7),
    'id % 50 = 0', 'id % 20 = 0', 'id % 10 = 0', 'id % 5 = 0', 'id % 2 = 0', 'id >= 0'].filter((w, i, all) => all.indexOf(w) === i);
  const matches = (where: string, i: number) => {
    if (where === 'id >= 0') return true;
    const mod = /^id % (\d+) = 0$/.exec(where);
    if (mod) return i % Number(mod[1]) === 0;
    const [col, val] = where.split(' = ');
    return String(meta[i][col]) === val.slice(1, -1);
  };
  await c.query('ANALYZE words');
  const nq = 20;
  const table: string[] = [];
  for (const where of picks) {
    const allowed: number[] = [];
    for (let i = 0; i < N; i++) if (matches(where, i)) allowed.push(i);
    const exact: number[][] = [];
    for (let q = 0; q < nq; q++) {
      const qv = ds.queries.subarray(q * 512, (q + 1) * 512);
      exact.push(allowed.map((i) => ({ i, d: cosDist(qv, ds.base.subarray(i * 512, (i + 1) * 512)) })).sort((a, b) => a.d - b.d).slice(0, 10).map((x) => x.i));
    }
    const cells: string[] = [];
    for (const strategy of ['pre', 'post', "'in'", 'auto']) {
      await c.query(`SET winnow.filter_strategy = ${strategy}`);
      let hit = 0, total = 0, ms = 0;
      const chosen = new Set<string>();
      for (let q = 0; q < nq; q++) {
        const qt = vecText(ds.queries.subarray(q * 512, (q + 1) * 512));
        const sql = `SELECT id FROM words WHERE ${where} ORDER BY v <=> '${qt}' LIMIT 10`;
        const t0 = performance.now();
        const r = await c.query(sql);
        ms += performance.now() - t0;
        expect(r.rows.length).toBe(Math.min(10, allowed.length));
        const got = new Set(r.rows.map((x) => Number(x.id)));
        for (const e of exact[q]) if (got.has(e)) hit++;
        total += exact[q].length;
        if ((strategy === 'auto' || strategy === "'in'") && q === 0) {
          const ex = await c.query(`EXPLAIN ${sql}`);
          chosen.add(/Strategy: (\S+)/.exec(ex.rows.map((x) => x['QUERY PLAN']).join('\n'))![1]);
        }
      }
      const recall = hit / total;
      expect(recall, `${strategy} ${where}`).toBeGreaterThanOrEqual(0.95);
      cells.push(`${chosen.size ? `${[...chosen].join('')} ` : ''}${(ms / nq).toFixed(2)} ms, r=${recall.toFixed(3)}`);
    }
    table.push(`| ${where} | ${allowed.length} (${((100 * allowed.length) / N).toFixed(2)}%) | ${cells.join(' | ')} |`);
  }
  await c.query('RESET winnow.filter_strategy');
  console.log(['| filter | rows | pre | post | in | auto |', '|---|---|---|---|---|---|', ...table].join('\n'));
}, 300_000);

test('distance threshold on the trained index: range recall ≥ 0.95 with no row beyond the radius', async () => {
  const nq = 20;
  let found = 0, truth = 0;
  for (let q = 0; q < nq; q++) {
    const qv = ds.queries.subarray(q * 512, (q + 1) * 512);
    const all = Array.from({ length: N }, (_, i) => cosDist(qv, ds.base.subarray(i * 512, (i + 1) * 512))).sort((a, b) => a - b);
    // A radius holding ~200 rows (between the 200th and 201st distance).
    const r = (all[199] + all[200]) / 2;
    const res = await c.query(`SELECT id, v <=> '${vecText(qv)}' AS d FROM words WHERE v <=> '${vecText(qv)}' < ${r}`);
    for (const row of res.rows) expect(Number(row.d)).toBeLessThan(r + 1e-6);
    const exact = new Set<number>();
    for (let i = 0; i < N; i++) if (cosDist(qv, ds.base.subarray(i * 512, (i + 1) * 512)) < r) exact.add(i);
    for (const row of res.rows) if (exact.has(Number(row.id))) found++;
    truth += exact.size;
  }
  const recall = found / truth;
  console.log(`wordnet 30k range search (~200 rows within r): recall ${recall.toFixed(4)}`);
  expect(recall).toBeGreaterThanOrEqual(0.95);
}, 120_000);

test("settings in the connection's startup options (libpq options / PGOPTIONS) apply from the first query, and RESET returns to them", async () => {
  const o = new pg.Client({ ...h.conn, options: '-c winnow.nprobe=3 --winnow.k-factor=2' });
  await o.connect();
  try {
    const plan = async () => (await o.query(`EXPLAIN SELECT id FROM words ORDER BY v <=> '${vecText(ds.queries.subarray(0, 512))}' LIMIT 10`)).rows.map((x) => x['QUERY PLAN']).join('\n');
    expect(await plan()).toContain("IVF nprobe=3 k'=20");
    await o.query('SET winnow.nprobe = 5');
    expect(await plan()).toContain("IVF nprobe=5 k'=20");
    await o.query('RESET winnow.nprobe');
    expect(await plan()).toContain("IVF nprobe=3 k'=20");
    await o.query('SET winnow.k_factor = 4');
    await o.query('RESET ALL');
    expect(await plan()).toContain("IVF nprobe=3 k'=20");
    // Postgres keeps them too (SHOW is answered by Postgres).
    expect((await o.query('SHOW winnow.nprobe')).rows[0]['winnow.nprobe']).toBe('3');
  } finally {
    await o.end();
  }
});
