// End-to-end: CREATE INDEX … USING winnow|hnsw|ivfflat through the wire, nearest-neighbour queries
// answered through the native index compared with Postgres's exact answer, changes from any
// connection followed through logical decoding (read-your-writes), DROP INDEX cleans up.
import { afterAll, beforeAll, expect, test } from 'vitest';
import pg from 'pg';
import { plannerStats } from '../../sql/planner/session.ts';
import { FACTS_TTL_MS } from '../../sql/planner/visibility.ts';
import { sharedParseCache } from '../../sql/parse.ts';
import { plannerClients, closePlannerClients, fillTable, randomVector, prng, type PlannerHarness } from './helpers.ts';

const DIM = 8;
let h: PlannerHarness;
let c: pg.Client; // through Winnow
let d: pg.Client; // straight to Postgres

beforeAll(async () => {
  ({ h, c, d } = await plannerClients());
  await c.query(`CREATE TABLE items (id bigint PRIMARY KEY, cat int NOT NULL, v vector(${DIM}))`);
  await fillTable(d, 'items', 2000, DIM, 7);
});

afterAll(async () => {
  await closePlannerClients({ h, c, d });
});

/** Postgres's exact answer (straight to Postgres: no Winnow planning). */
async function exact(op: string, q: { arr: string }, k: number, where = ''): Promise<{ id: string; d: number }[]> {
  const r = await d.query(`SELECT id::text, v ${op} '${q.arr}' AS d FROM items ${where ? 'WHERE ' + where : ''} ORDER BY v ${op} '${q.arr}', id LIMIT ${k}`);
  return r.rows.map((x) => ({ id: x.id, d: Number(x.d) }));
}

async function viaWinnow(op: string, q: { pgv: string }, k: number, where = ''): Promise<{ id: string; d: number }[]> {
  const r = await c.query(`SELECT id::text, v ${op} '${q.pgv}' AS d FROM items ${where ? 'WHERE ' + where : ''} ORDER BY v ${op} '${q.pgv}' LIMIT ${k}`);
  return r.rows.map((x) => ({ id: x.id, d: Number(x.d) }));
}

function expectSame(a: { id: string; d: number }[], b: { id: string; d: number }[]) {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) expect(a[i].d).toBeCloseTo(b[i].d, 4);
  // Ties aside, the same ids.
  expect(new Set(a.map((x) => x.id))).toEqual(new Set(b.map((x) => x.id)));
}

test('CREATE INDEX USING hnsw builds a Winnow index; \\di/pg_indexes show the placeholder', async () => {
  const r = await c.query(`CREATE INDEX items_v_idx ON items USING hnsw (v vector_cosine_ops) WITH (m = 16, ef_construction = 64)`);
  expect(r.command).toBe('CREATE');
  const pi = await d.query(`SELECT indexname FROM pg_indexes WHERE tablename = 'items' ORDER BY 1`);
  expect(pi.rows.map((x) => x.indexname)).toEqual(['items_pkey', 'items_v_idx']);
  const meta = await d.query(`SELECT metric, access_method, dim, key_column FROM winnow.indexes`);
  expect(meta.rows).toEqual([{ metric: 'cos', access_method: 'hnsw', dim: DIM, key_column: 'id' }]);
  const slots = await d.query(`SELECT plugin FROM pg_replication_slots WHERE database = current_database()`);
  expect(slots.rows).toEqual([{ plugin: 'pgoutput' }]);
});

test('ORDER BY v <=> q LIMIT k is answered through the index and equals the exact answer', async () => {
  const rnd = prng(11);
  for (let i = 0; i < 5; i++) {
    const q = randomVector(DIM, rnd);
    expectSame(await viaWinnow('<=>', q, 10), await exact('<=>', q, 10));
  }
  const q = randomVector(DIM, rnd);
  const ex = await c.query(`EXPLAIN SELECT id FROM items ORDER BY v <=> '${q.pgv}' LIMIT 5`);
  const plan = ex.rows.map((x) => x['QUERY PLAN']).join('\n');
  expect(plan).toContain('Winnow KNN Scan using items_v_idx');
  expect(plan).toContain('exact');
  // Other select lists, aliases, OFFSET, unnamed distance column; vectors come back in pgvector text.
  const r = await c.query(`SELECT i.*, i.v <=> '${q.pgv}' FROM items i ORDER BY i.v <=> '${q.pgv}' LIMIT 3 OFFSET 2`);
  const e = await exact('<=>', q, 5);
  expect(r.rows.map((x) => String(x.id))).toEqual(e.slice(2).map((x) => x.id));
  expect(r.fields.map((f) => f.name)).toEqual(['id', 'cat', 'v', '?column?']);
  expect(String(r.rows[0].v)).toMatch(/^\[/);
  // Another metric with no index: plain Postgres, still exact.
  expectSame(await viaWinnow('<->', q, 5), await exact('<->', q, 5));
});

test('rewritten statements (one-off texts with ids) do not take places in the shared parse cache', async () => {
  const rnd = prng(16);
  const before = sharedParseCache.size;
  for (let i = 0; i < 5; i++) await viaWinnow('<=>', randomVector(DIM, rnd), 3);
  // Five new client texts are cached; their five rewritten forms are not.
  expect(sharedParseCache.size - before).toBe(5);
});

test('WHERE filters (pre-filter) return min(k, matches) in distance order', async () => {
  const rnd = prng(12);
  for (const where of ['cat = 3', 'id < 40', 'id in (5, 17, 900)', 'cat = 99']) {
    const q = randomVector(DIM, rnd);
    const a = await viaWinnow('<=>', q, 10, where);
    expectSame(a, await exact('<=>', q, 10, where));
  }
  const ex = await c.query(`EXPLAIN ANALYZE SELECT id FROM items WHERE cat = 1 ORDER BY v <=> '${randomVector(DIM, rnd).pgv}' LIMIT 5`);
  expect(ex.rows.map((x) => x['QUERY PLAN']).join('\n')).toMatch(/pre-filter[\s\S]*Allowed ids: 200/);
});

/**
 * Changes made by other sessions reach the index within the replication lag (README); SHOW
 * winnow.index_status waits until everything committed so far is applied.
 */
const caughtUp = () => c.query('SHOW winnow.index_status');

test('inserts, updates and deletes from another connection are applied in commit order, rolled-back ones never', async () => {
  const q = randomVector(DIM, prng(13));
  await d.query(`INSERT INTO items VALUES (100001, 1, '${q.arr}')`);
  await caughtUp();
  let top = await viaWinnow('<=>', q, 1);
  expect(top[0].id).toBe('100001');
  expect(top[0].d).toBeCloseTo(0, 5);
  await d.query(`UPDATE items SET v = '${q.arr}' WHERE id = 5`);
  await d.query(`DELETE FROM items WHERE id = 100001`);
  await caughtUp();
  top = await viaWinnow('<=>', q, 2);
  expect(top[0].id).toBe('5');
  // Rolled back: never applied.
  await d.query('BEGIN');
  await d.query(`INSERT INTO items VALUES (100002, 1, '${q.arr}')`);
  await d.query('ROLLBACK');
  // Out-of-order commits: A begins first, B commits first.
  const a = await h.direct();
  await a.query('BEGIN');
  await a.query(`INSERT INTO items VALUES (100003, 1, '${q.arr}')`);
  await d.query('BEGIN');
  await d.query(`INSERT INTO items VALUES (100004, 1, '${q.arr}')`);
  await d.query('COMMIT');
  await a.query('COMMIT');
  await a.end();
  await caughtUp();
  top = await viaWinnow('<=>', q, 3);
  expect(top.map((x) => x.id).sort()).toEqual(['100003', '100004', '5']);
  // The index itself holds exactly the table's rows.
  const db = await h.mgr.forDatabase(h.db.user, h.db.database);
  const li = db.indexes.get('public.items_v_idx')!;
  const n = Number((await d.query('SELECT count(*) FROM items')).rows[0].count);
  expect(li.index.size).toBe(n);
  const hit = await li.index.bruteForce(new Float32Array(q.v), { k: 1, filter: BigInt64Array.from([100002n]) });
  expect(hit.ids[0]).toBe(-1n);
  // Writes through Winnow in autocommit, then the same session's query.
  const w = randomVector(DIM, prng(14));
  await c.query(`INSERT INTO items VALUES (100005, 2, '${w.pgv}')`);
  expect((await viaWinnow('<=>', w, 1))[0].id).toBe('100005');
  // Inside a transaction block with uncommitted writes: exact execution in Postgres sees them.
  await c.query('BEGIN');
  await c.query(`UPDATE items SET v = '${q.pgv}' WHERE id = 100005`);
  expect((await viaWinnow('<=>', q, 4)).map((x) => x.id)).toContain('100005');
  await c.query('ROLLBACK');
  expect((await viaWinnow('<=>', q, 4)).map((x) => x.id)).not.toContain('100005');
});

test('zero vectors are left out of a cosine index, as in pgvector, and do not stall the build or the sync', async () => {
  const zero = `[${new Array(DIM).fill(0).join(',')}]`;
  const zeroArr = `{${new Array(DIM).fill(0).join(',')}}`;
  await d.query(`INSERT INTO items VALUES (200001, 1, '${zeroArr}')`);
  await d.query(`UPDATE items SET v = '${zeroArr}' WHERE id = 7`);
  const q = randomVector(DIM, prng(15));
  await d.query(`INSERT INTO items VALUES (200002, 1, '${q.arr}')`);
  await caughtUp();
  // The change after the zero vectors was applied: the sync did not stop at them.
  const top = await viaWinnow('<=>', q, 20);
  expect(top[0].id).toBe('200002');
  expect(top.map((x) => x.id)).not.toContain('200001');
  expect(top.map((x) => x.id)).not.toContain('7');
  const db = await h.mgr.forDatabase(h.db.user, h.db.database);
  const li = db.indexes.get('public.items_v_idx')!;
  const nonZero = Number((await d.query(`SELECT count(*) FROM items WHERE v <> '${zeroArr}'`)).rows[0].count);
  expect(li.index.size).toBe(nonZero);
  // A fresh build over a table that holds zero vectors succeeds and leaves them out too.
  await c.query(`CREATE TABLE zeros (id int PRIMARY KEY, v vector(${DIM}))`);
  await c.query(`INSERT INTO zeros VALUES (1, '${zero}'), (2, '${q.pgv}')`);
  await c.query(`CREATE INDEX zeros_v_idx ON zeros USING winnow (v vector_cosine_ops)`);
  const r = await c.query(`SELECT id FROM zeros ORDER BY v <=> '${q.pgv}' LIMIT 5`);
  expect(r.rows.map((x) => x.id)).toEqual([2]);
  await c.query('DROP INDEX zeros_v_idx');
  await c.query('DROP TABLE zeros');
  await d.query('DELETE FROM items WHERE id IN (200001, 200002)');
});

test('tables and columns named with reserved words are indexed, followed and planned', async () => {
  await c.query(`CREATE TABLE "select" ("user" bigint PRIMARY KEY, "order" vector(3))`);
  await c.query(`INSERT INTO "select" VALUES (1, '[1,0,0]'), (2, '[0,1,0]'), (3, '[0,0,1]')`);
  await c.query(`CREATE INDEX "from" ON "select" USING winnow ("order" vector_l2_ops)`);
  await d.query(`INSERT INTO "select" VALUES (4, '{0.9,0.1,0}')`);
  const r = await c.query(`SELECT "user" FROM "select" ORDER BY "order" <-> '[1,0,0]' LIMIT 2`);
  expect(r.rows.map((x) => String(x.user))).toEqual(['1', '4']);
  const ex = await c.query(`EXPLAIN SELECT "user" FROM "select" ORDER BY "order" <-> '[1,0,0]' LIMIT 2`);
  expect(ex.rows.map((x) => x['QUERY PLAN']).join('\n')).toContain('Winnow KNN Scan using from');
  await c.query(`DROP INDEX "from"`);
  await c.query(`DROP TABLE "select"`);
});

test('extended protocol: parameterised query vector and LIMIT, named statements reused, also in a transaction block', async () => {
  const rnd = prng(21);
  const before = plannerStats.nativeSearches;
  const text = `SELECT id::text, v <=> $1 AS d FROM items ORDER BY v <=> $1 LIMIT $2`;
  for (let i = 0; i < 4; i++) {
    const q = randomVector(DIM, rnd);
    const r = await c.query({ name: 'knn', text, values: [q.pgv, 7] });
    expectSame(r.rows.map((x) => ({ id: x.id, d: Number(x.d) })), await exact('<=>', q, 7));
  }
  const q = randomVector(DIM, rnd);
  const r = await c.query(`SELECT id::text, v <=> $1 AS d FROM items ORDER BY v <=> $1 LIMIT 4`, [q.pgv]);
  expectSame(r.rows.map((x) => ({ id: x.id, d: Number(x.d) })), await exact('<=>', q, 4));
  expect(plannerStats.nativeSearches - before).toBe(5);
  // A WHERE clause (no INCLUDE columns here: pre/post filtering), and the prepared statement inside a
  // read-only transaction block (transactions.test.ts): the same answer as Postgres's exact one.
  const w = await c.query(`SELECT id::text, v <=> $1 AS d FROM items WHERE cat = $2 ORDER BY v <=> $1 LIMIT 5`, [q.pgv, 4]);
  expectSame(w.rows.map((x) => ({ id: x.id, d: Number(x.d) })), await exact('<=>', q, 5, 'cat = 4'));
  await c.query('BEGIN');
  const t = await c.query({ name: 'knn', text, values: [q.pgv, 3] });
  await c.query('COMMIT');
  expectSame(t.rows.map((x) => ({ id: x.id, d: Number(x.d) })), await exact('<=>', q, 3));
  // Settings: SET winnow.nprobe / hnsw.ef_search are accepted and shown in EXPLAIN.
  await c.query('SET winnow.nprobe = 7');
  const ex = await c.query(`EXPLAIN SELECT id FROM items ORDER BY v <=> '${q.pgv}' LIMIT 5`);
  expect(ex.rows.map((x) => x['QUERY PLAN']).join('\n')).toContain('Winnow KNN Scan');
  await c.query('RESET winnow.nprobe');
});

test('privileges and row-level security apply to vector results', async () => {
  const role = `reader_${h.db.database}`;
  await d.query(`CREATE ROLE ${role} LOGIN`);
  const r = new pg.Client({ ...h.conn, user: role });
  await r.connect();
  const q = randomVector(DIM, prng(31));
  await expect(r.query(`SELECT id FROM items ORDER BY v <=> '${q.pgv}' LIMIT 5`)).rejects.toMatchObject({ code: '42501' });
  await expect(r.query(`SELECT id FROM items ORDER BY v <=> $1 LIMIT 5`, [q.pgv])).rejects.toMatchObject({ code: '42501' });
  // Through a Winnow session: every session's cached privilege/RLS facts are dropped at once.
  await c.query(`GRANT SELECT ON items TO ${role}`);
  await c.query(`ALTER TABLE items ENABLE ROW LEVEL SECURITY`);
  await c.query(`CREATE POLICY only_cat_3 ON items FOR SELECT TO ${role} USING (cat = 3)`);
  const before = plannerStats.nativeSearches;
  const a = await r.query(`SELECT id::text, cat, v <=> '${q.pgv}' AS d FROM items ORDER BY v <=> '${q.pgv}' LIMIT 8`);
  // Answered through the index (one search with the pre-filter, or a few while the post-filter deepens).
  expect(plannerStats.nativeSearches - before).toBeGreaterThanOrEqual(1);
  expect(a.rows.length).toBe(8);
  expect(a.rows.every((x) => x.cat === 3)).toBe(true);
  expectSame(a.rows.map((x) => ({ id: x.id, d: Number(x.d) })), await exact('<=>', { arr: q.arr }, 8, 'cat = 3'));
  const b = await r.query(`SELECT id::text, cat, v <=> $1 AS d FROM items ORDER BY v <=> $1 LIMIT 8`, [q.pgv]);
  expect(b.rows.map((x) => x.id)).toEqual(a.rows.map((x) => x.id));
  // Straight to Postgres (Winnow does not see the statement): in effect after at most FACTS_TTL_MS.
  await d.query(`DROP POLICY only_cat_3 ON items`);
  await d.query(`CREATE POLICY only_cat_4 ON items FOR SELECT TO ${role} USING (cat = 4)`);
  await new Promise((res) => setTimeout(res, FACTS_TTL_MS + 50));
  const e = await r.query(`SELECT id::text, cat FROM items ORDER BY v <=> $1 LIMIT 8`, [q.pgv]);
  expect(e.rows.length).toBe(8);
  expect(e.rows.every((x) => x.cat === 4)).toBe(true);
  await d.query(`REVOKE ALL ON items FROM ${role}`);
  await new Promise((res) => setTimeout(res, FACTS_TTL_MS + 50));
  await expect(r.query(`SELECT id FROM items ORDER BY v <=> $1 LIMIT 5`, [q.pgv])).rejects.toMatchObject({ code: '42501' });
  await r.end();
  await d.query(`DROP POLICY only_cat_4 ON items`);
  await d.query(`ALTER TABLE items DISABLE ROW LEVEL SECURITY`);
  await d.query(`DROP ROLE ${role}`);
});

test('bad index definitions get clear errors and change nothing', async () => {
  await c.query(`CREATE TABLE nokey (a int, v vector(3))`);
  await expect(c.query(`CREATE INDEX ON nokey USING winnow (v vector_l2_ops)`)).rejects.toMatchObject({ code: '0A000', message: expect.stringContaining('integer primary key') });
  await expect(c.query(`CREATE INDEX ON missing USING winnow (v)`)).rejects.toMatchObject({ code: '42P01' });
  await expect(c.query(`CREATE INDEX ON items USING winnow (v vector_foo_ops)`)).rejects.toMatchObject({ code: '42704' });
  await expect(c.query(`CREATE INDEX ON items USING ivfflat (v) WITH (bogus = 1)`)).rejects.toMatchObject({ code: '22023' });
  await expect(c.query(`CREATE INDEX items_v_idx ON items USING winnow (v)`)).rejects.toMatchObject({ code: '42P07' });
  const meta = await d.query(`SELECT count(*)::int AS n FROM winnow.indexes`);
  expect(meta.rows[0].n).toBe(1);
});

test('ALTER INDEX … RENAME and REINDEX of a Winnow index', async () => {
  await c.query('ALTER INDEX items_v_idx RENAME TO items_vec');
  expect((await d.query(`SELECT name FROM winnow.indexes`)).rows).toEqual([{ name: 'items_vec' }]);
  expect((await d.query(`SELECT indexname FROM pg_indexes WHERE tablename = 'items' ORDER BY 1`)).rows.map((x) => x.indexname)).toEqual(['items_pkey', 'items_vec']);
  const q = randomVector(DIM, prng(41));
  const before = plannerStats.nativeSearches;
  expectSame(await viaWinnow('<=>', q, 5), await exact('<=>', q, 5));
  await c.query('REINDEX INDEX items_vec');
  expectSame(await viaWinnow('<=>', q, 5), await exact('<=>', q, 5));
  expect(plannerStats.nativeSearches - before).toBe(2);
  await c.query('ALTER INDEX items_vec RENAME TO items_v_idx');
});

test('DROP INDEX removes the index, the placeholder, and the slot with the last index', async () => {
  await c.query(`CREATE INDEX items_l2 ON items USING ivfflat (v vector_l2_ops) WITH (lists = 10)`);
  const q = randomVector(DIM, prng(15));
  expectSame(await viaWinnow('<->', q, 5), await exact('<->', q, 5));
  await c.query('DROP INDEX items_v_idx');
  expect((await d.query(`SELECT count(*)::int AS n FROM pg_replication_slots WHERE database = current_database()`)).rows[0].n).toBe(1);
  await c.query('DROP INDEX items_l2');
  expect((await d.query(`SELECT count(*)::int AS n FROM pg_replication_slots WHERE database = current_database()`)).rows[0].n).toBe(0);
  expect((await d.query(`SELECT count(*)::int AS n FROM winnow.indexes`)).rows[0].n).toBe(0);
  expect((await d.query(`SELECT count(*)::int AS n FROM pg_indexes WHERE tablename = 'items'`)).rows[0].n).toBe(1);
  expectSame(await viaWinnow('<=>', q, 5), await exact('<=>', q, 5));
});
