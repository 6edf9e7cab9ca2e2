// ALTER TABLE on an indexed table's columns, through Winnow or straight in Postgres: an index follows
// its columns as a Postgres index does (IndexManager.followColumns). A dropped column takes the index
// with it, and queries naming it get Postgres's 42703; a renamed column is served under its new name;
// the sync of every other index goes on.
import { afterAll, beforeAll, expect, test } from 'vitest';
import pg from 'pg';
import { plannerStats } from '../../sql/planner/session.ts';
import { plannerClients, closePlannerClients, fillTable, randomVector, prng, type PlannerHarness } from '../planner/helpers.ts';

const DIM = 8;
let h: PlannerHarness;
let c: pg.Client;
let d: pg.Client;
const rnd = prng(5);

beforeAll(async () => {
  ({ h, c, d } = await plannerClients());
  for (const t of ['a', 'b', 'keep']) {
    await c.query(`CREATE TABLE ${t} (id bigint PRIMARY KEY, cat int NOT NULL, v vector(${DIM}))`);
    await fillTable(d, t, 500, DIM, t.length);
    await c.query(`CREATE INDEX ${t}_v ON ${t} USING winnow (v vector_l2_ops) INCLUDE (cat)`);
  }
});

afterAll(async () => {
  await closePlannerClients({ h, c, d });
});

const indexes = async () => (await d.query(`SELECT name, column_name FROM winnow.indexes ORDER BY name`)).rows.map((r) => `${r.name}:${r.column_name}`);
const placeholders = async () => (await d.query(`SELECT indexname FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1`)).rows.map((r) => r.indexname).filter((n: string) => n.endsWith('_v'));

async function byIndex<T>(f: () => Promise<T>): Promise<{ r: T; index: boolean }> {
  const before = plannerStats.nativeSearches;
  const r = await f();
  return { r, index: plannerStats.nativeSearches > before };
}

/** Another table's index still follows its table: a row inserted now is its own nearest neighbour. */
async function keepSyncing(): Promise<void> {
  const q = randomVector(DIM, rnd);
  const id = 10_000 + Math.floor(rnd() * 1e6);
  await c.query(`INSERT INTO keep VALUES (${id}, 1, '${q.pgv}')`);
  const r = await byIndex(() => c.query(`SELECT id FROM keep ORDER BY v <-> '${q.pgv}' LIMIT 1`));
  expect(r.index).toBe(true);
  expect(Number(r.r.rows[0].id)).toBe(id);
}

test('DROP COLUMN of the vector column (through Winnow) drops the index and its placeholder; the column is unknown after', async () => {
  await c.query('ALTER TABLE a DROP COLUMN v');
  await c.query('SHOW winnow.index_status'); // one poll
  expect(await indexes()).toEqual(['b_v:v', 'keep_v:v']);
  expect(await placeholders()).toEqual(['b_v', 'keep_v']);
  const q = randomVector(DIM, rnd);
  await expect(c.query(`SELECT id FROM a ORDER BY v <-> '${q.pgv}' LIMIT 3`)).rejects.toMatchObject({ code: '42703' });
  await expect(c.query(`SELECT id FROM a ORDER BY v <-> $1 LIMIT 3`, [q.pgv])).rejects.toMatchObject({ code: '42703' });
  // A new column of the same name is not the old one: no index on it until CREATE INDEX.
  await c.query(`ALTER TABLE a ADD COLUMN v vector(${DIM})`);
  await c.query(`UPDATE a SET v = '${q.pgv}' WHERE id = 7`);
  const r = await byIndex(() => c.query(`SELECT id FROM a ORDER BY v <-> '${q.pgv}' LIMIT 1`));
  expect(r.index).toBe(false);
  expect(Number(r.r.rows[0].id)).toBe(7);
  await keepSyncing();
});

test('DROP COLUMN of an INCLUDE column straight in Postgres (which drops the placeholder) drops the index; changes to the table after it do not stop the sync', async () => {
  await d.query('ALTER TABLE b DROP COLUMN cat');
  const q = randomVector(DIM, rnd);
  await d.query(`INSERT INTO b VALUES (9001, '${q.arr}')`);
  await c.query('SHOW winnow.index_status');
  expect(await indexes()).toEqual(['keep_v:v']);
  await expect(c.query(`SELECT id FROM b WHERE cat = 1 ORDER BY v <-> '${q.pgv}' LIMIT 3`)).rejects.toMatchObject({ code: '42703' });
  const r = await byIndex(() => c.query(`SELECT id FROM b ORDER BY v <-> '${q.pgv}' LIMIT 1`));
  expect(r.index).toBe(false);
  expect(Number(r.r.rows[0].id)).toBe(9001);
  await keepSyncing();
});

test('RENAME COLUMN: the index is rebuilt under the new name and follows changes; the old name is unknown', async () => {
  await d.query('ALTER TABLE keep RENAME COLUMN v TO emb');
  await d.query('ALTER TABLE keep RENAME COLUMN cat TO kind');
  await c.query('SHOW winnow.index_status');
  expect(await indexes()).toEqual(['keep_v:emb']);
  const q = randomVector(DIM, rnd);
  await d.query(`INSERT INTO keep VALUES (424242, 3, '${q.arr}')`);
  await expect(c.query(`SELECT id FROM keep ORDER BY v <-> '${q.pgv}' LIMIT 3`)).rejects.toMatchObject({ code: '42703' });
  // The rebuild runs in the background: Postgres answers until it is ready.
  let r = await byIndex(() => c.query(`SELECT id FROM keep WHERE kind = 3 ORDER BY emb <-> '${q.pgv}' LIMIT 1`));
  for (let i = 0; i < 100 && !r.index; i++) {
    expect(Number(r.r.rows[0].id)).toBe(424242);
    await new Promise((res) => setTimeout(res, 100));
    r = await byIndex(() => c.query(`SELECT id FROM keep WHERE kind = 3 ORDER BY emb <-> '${q.pgv}' LIMIT 1`));
  }
  expect(r.index).toBe(true);
  expect(Number(r.r.rows[0].id)).toBe(424242);
  const e = await c.query(`EXPLAIN SELECT id FROM keep WHERE kind = 3 ORDER BY emb <-> '${q.pgv}' LIMIT 1`);
  expect(e.rows.map((x) => x['QUERY PLAN']).join('\n')).toContain('keep_v');
  // And it follows changes made after the rename.
  const w = randomVector(DIM, rnd);
  await c.query(`INSERT INTO keep VALUES (434343, 3, '${w.pgv}')`);
  const after = await byIndex(() => c.query(`SELECT id FROM keep ORDER BY emb <-> '${w.pgv}' LIMIT 1`));
  expect(after.index).toBe(true);
  expect(Number(after.r.rows[0].id)).toBe(434343);
});
