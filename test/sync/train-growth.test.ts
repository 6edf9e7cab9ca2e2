// Train on growth: an index created on an empty table is untrained (exact brute force); when COPY
// brings it past TRAIN_THRESHOLD it is rebuilt and trained in the background and then serves IVF
// searches, with recall@10 against the exact answer ≥ 0.95 on real data (glove-100). Searches and
// change application keep working while it trains.
import { afterAll, beforeAll, expect, test } from 'vitest';
import pg from 'pg';
import postgres from 'postgres';
import { loadDataset } from '../../bench/lib/datasets.ts';
import { TRAIN_THRESHOLD } from '../../sync/index-manager.ts';
import { plannerHarness, type PlannerHarness } from '../planner/helpers.ts';

const N = 20_000;
let h: PlannerHarness;
let c: pg.Client;

beforeAll(async () => {
  h = await plannerHarness();
  c = await h.client();
  await c.query('CREATE EXTENSION vector');
});

afterAll(async () => {
  await c?.end();
  await h?.close();
});

function exactTop(base: Float32Array, dim: number, n: number, q: Float32Array, k: number): number[] {
  // Cosine distance, as the index's metric.
  let qn = 0;
  for (let j = 0; j < dim; j++) qn += q[j] * q[j];
  const d = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let dot = 0, nn = 0;
    for (let j = 0; j < dim; j++) { const x = base[i * dim + j]; dot += x * q[j]; nn += x * x; }
    d[i] = 1 - dot / Math.sqrt(nn * qn);
  }
  return Array.from({ length: n }, (_, i) => i).sort((a, b) => d[a] - d[b]).slice(0, k);
}

test(`an index created on an empty table trains in the background once COPY brings it past ${TRAIN_THRESHOLD} rows; recall@10 ≥ 0.95`, async () => {
  const ds = loadDataset('glove-100', { limit: N });
  const dim = ds.dim;
  await c.query(`CREATE TABLE words (id bigint PRIMARY KEY, v vector(${dim}))`);
  await c.query('CREATE INDEX words_v ON words USING winnow (v vector_cosine_ops)');
  const db = await h.mgr.forDatabase(h.db.user, h.db.database);
  const li = db.indexes.get('public.words_v')!;
  expect(li.index.isTrained).toBe(false);

  // COPY straight into Postgres (the index follows through the slot), in 4 COPY statements.
  const sql = postgres({ host: h.db.host, port: h.db.port, user: h.db.user, database: h.db.database, max: 1, onnotice: () => {} });
  try {
    for (let part = 0; part < 4; part++) {
      const w = await sql.unsafe('COPY words (id, v) FROM STDIN').writable();
      for (let s = part * (N / 4); s < (part + 1) * (N / 4); s += 1000) {
        let chunk = '';
        for (let i = s; i < s + 1000; i++) chunk += `${i}\t{${Array.from(ds.base.subarray(i * dim, (i + 1) * dim), String).join(',')}}\n`;
        if (!w.write(chunk)) await new Promise((r) => w.once('drain', r));
      }
      await new Promise<void>((resolve, reject) => { w.on('finish', () => resolve()); w.on('error', reject); w.end(); });
    }
  } finally {
    await sql.end();
  }

  // While the background rebuild runs, queries are answered (exact, untrained) and see every row.
  const q0 = ds.queries.subarray(0, dim);
  const pgv = (v: Float32Array) => '[' + Array.from(v, String).join(',') + ']';
  const early = await c.query(`SELECT id FROM words ORDER BY v <=> '${pgv(q0)}' LIMIT 10`);
  expect(early.rows.length).toBe(10);
  expect(li.index.size).toBe(N);

  const t0 = Date.now();
  while (!li.index.isTrained) {
    if (Date.now() - t0 > 120_000) throw new Error('index did not train within 120 s');
    // A change applied during training must survive the swap.
    await c.query(`UPDATE words SET v = v WHERE id = ${Math.floor((Date.now() - t0) / 100) % N}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  console.log(`trained ${((Date.now() - t0) / 1000).toFixed(1)} s after the COPY; nlist ${li.index.stats().nlist}, rows ${li.index.size}, trainedRows ${li.trainedRows}`);
  expect(li.trainedRows).toBeGreaterThanOrEqual(TRAIN_THRESHOLD);
  const explain = (await c.query(`EXPLAIN SELECT id FROM words ORDER BY v <=> '${pgv(q0)}' LIMIT 10`)).rows.map((r) => r['QUERY PLAN']).join('\n');
  expect(explain).toMatch(/IVF nprobe=/);

  // A row inserted after training is found (the trained index follows changes).
  await c.query(`INSERT INTO words VALUES (${N + 5}, '${pgv(q0)}')`);
  expect((await c.query(`SELECT id::int FROM words ORDER BY v <=> '${pgv(q0)}' LIMIT 1`)).rows[0].id).toBe(N + 5);
  await c.query(`DELETE FROM words WHERE id = ${N + 5}`);
  await db.waitFor(await db.currentLsn());
  expect(li.index.size).toBe(N);

  // recall@10 of IVF searches through Winnow against the exact answer over the loaded rows.
  const nq = 100;
  let hit = 0;
  for (let qi = 0; qi < nq; qi++) {
    const q = ds.queries.subarray(qi * dim, (qi + 1) * dim);
    const got = (await c.query(`SELECT id::int FROM words ORDER BY v <=> '${pgv(q)}' LIMIT 10`)).rows.map((r) => r.id);
    const truth = new Set(exactTop(ds.base, dim, N, q, 10));
    for (const id of got) if (truth.has(id)) hit++;
  }
  const recall = hit / (nq * 10);
  console.log(`recall@10 after training on growth (glove-100, ${N} rows, ${nq} queries, default nprobe): ${recall.toFixed(3)}`);
  expect(recall).toBeGreaterThanOrEqual(0.95);
}, 300_000);
