// CREATE INDEX … USING winnow … WITH (learn = on): HAKES's learning runs after the build (issue 7's
// "a setting to do it automatically after a build"), and again after REINDEX.
import { afterAll, beforeAll, expect, test } from 'vitest';
import pg from 'pg';
import { plannerHarness, fillTable, type PlannerHarness } from './helpers.ts';

let h: PlannerHarness;
let c: pg.Client;
let d: pg.Client;
const notices: string[] = [];

beforeAll(async () => {
  h = await plannerHarness();
  c = await h.client();
  c.on('notice', (n) => notices.push(n.message ?? ''));
  d = await h.direct();
  await c.query('CREATE EXTENSION vector');
  await c.query('CREATE TABLE big (id bigint PRIMARY KEY, cat int NOT NULL, v vector(16))');
  await fillTable(d, 'big', 12_000, 16, 21);
  await c.query('CREATE TABLE small (id bigint PRIMARY KEY, cat int NOT NULL, v vector(16))');
  await fillTable(d, 'small', 500, 16, 22);
});

afterAll(async () => {
  await c?.end();
  await d?.end();
  await h?.close();
});

test('learn = on learns after CREATE INDEX and REINDEX; the option is checked and kept', async () => {
  notices.length = 0;
  await c.query('CREATE INDEX big_v ON big USING winnow (v vector_l2_ops) WITH (learn = on)');
  expect(notices.some((n) => n.includes('learning search parameters of index "big_v"'))).toBe(true);
  expect(notices.some((n) => /index "big_v" searches with learnt parameters|learnt parameters of index "big_v" were not installed/.test(n))).toBe(true);
  const meta = await d.query(`SELECT options FROM winnow.indexes WHERE name = 'big_v'`);
  expect(meta.rows[0].options).toMatchObject({ learn: true });
  notices.length = 0;
  await c.query('REINDEX INDEX big_v');
  expect(notices.some((n) => n.includes('learning search parameters of index "big_v"'))).toBe(true);
  // Searches still equal the exact answer's top hit for a stored vector.
  const r = await c.query(`SELECT id FROM big ORDER BY v <-> (SELECT v FROM big WHERE id = 77) LIMIT 1`);
  expect(r.rows[0].id).toBe('77');
});

test('learn = on on a table too small to train says when learning will be possible; bad values are 22023', async () => {
  notices.length = 0;
  await c.query('CREATE INDEX small_v ON small USING winnow (v vector_l2_ops) WITH (learn = true)');
  expect(notices.some((n) => n.includes('it learns its search parameters once it has trained on growth'))).toBe(true);
  await expect(c.query('CREATE INDEX small_v2 ON small USING winnow (v vector_l2_ops) WITH (learn = maybe)')).rejects.toMatchObject({ code: '22023' });
  await expect(c.query('CREATE INDEX small_v3 ON small USING hnsw (v vector_l2_ops) WITH (learn = on)')).rejects.toMatchObject({ code: '22023' });
});

test('learn = on learns again, in the background, once an index created small has trained on growth', async () => {
  await fillTable(d, 'small', 11_000, 16, 23, 1000);
  const db = await h.mgr.forDatabase(h.db.user, h.db.database);
  const li = db.indexes.get('public.small_v')!;
  const deadline = Date.now() + 60_000;
  while (!li.lastLearn && Date.now() < deadline) {
    await c.query('SHOW winnow.index_status');
    await new Promise((r) => setTimeout(r, 200));
  }
  expect(li.index.isTrained).toBe(true);
  expect(li.lastLearn).not.toBeNull();
});
