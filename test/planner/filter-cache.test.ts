// The `in` strategy's allowed-id sets are cached per predicate (matching-cache.ts) as native
// PreparedFilters whose bitsets are reused query after query. A named prepared statement with a
// WHERE clause on an INCLUDE column must still return exactly min(k, matching rows) rows that pass,
// with the rows' current values, after the values change between its executions (UPDATE of the
// INCLUDE column, of the vector, INSERT, DELETE) and after REINDEX swaps in a new index. The index is
// trained and the allowed sets are large enough for the IVF path (not brute force).
import { afterAll, beforeAll, expect, test } from 'vitest';
import pg from 'pg';
import { matchingCacheStats } from '../../sql/planner/matching-cache.ts';
import { filterStats } from '../../sql/planner/filter.ts';
import { plannerStats } from '../../sql/planner/search.ts';
import { plannerClients, closePlannerClients, prng, randomVector, type PlannerHarness } from './helpers.ts';

const DIM = 256;
const N = 12_000; // above the training threshold; 'a' ≈ 6,000 ids > 1M floats / 256 (brute-force limit)
let h: PlannerHarness;
let c: pg.Client;
let d: pg.Client;
const rnd = prng(21);
const q = randomVector(DIM, rnd);

beforeAll(async () => {
  ({ h, c, d } = await plannerClients());
  await c.query(`CREATE TABLE items (id bigint PRIMARY KEY, tag text, v vector(${DIM}))`);
  for (let s = 0; s < N; s += 500) {
    const rows: string[] = [];
    for (let id = s + 1; id <= s + 500; id++) rows.push(`(${id}, '${id % 2 === 0 ? 'a' : id % 1000 === 1 ? 'rare' : 'b'}', '${randomVector(DIM, rnd).arr}')`);
    await d.query(`INSERT INTO items VALUES ${rows.join(',')}`);
  }
  await d.query('ANALYZE items');
  await c.query(`CREATE INDEX items_v ON items USING winnow (v vector_l2_ops) INCLUDE (tag)`);
}, 120_000);

afterAll(async () => {
  await closePlannerClients({ h, c, d });
});

/** Through Winnow with a named statement per k (the tag is a parameter: the same statement every time). */
async function viaWinnow(tag: string, k: number, vec = q.pgv): Promise<string[]> {
  const r = await c.query({ name: `fc_${k}`, text: `SELECT id FROM items WHERE tag = $2 ORDER BY v <-> $1 LIMIT ${k}`, values: [vec, tag] });
  return r.rows.map((x) => String(x.id));
}

/** The rows' current tags straight from Postgres, and how many rows have `tag`. */
async function truth(ids: string[], tag: string): Promise<{ tags: Map<string, string>; matches: number }> {
  const t = await d.query(`SELECT id::text, tag FROM items WHERE id = ANY($1::bigint[])`, [ids]);
  const m = await d.query(`SELECT count(*)::int AS n FROM items WHERE tag = $1`, [tag]);
  return { tags: new Map(t.rows.map((x) => [x.id as string, x.tag as string])), matches: m.rows[0].n };
}

async function expectFiltered(tag: string, k: number, vec = q.pgv): Promise<string[]> {
  const ids = await viaWinnow(tag, k, vec);
  const { tags, matches } = await truth(ids, tag);
  expect(ids.length).toBe(Math.min(k, matches));
  expect(new Set(ids).size).toBe(ids.length);
  for (const id of ids) expect(tags.get(id), `row ${id}`).toBe(tag);
  return ids;
}

test('the cached allowed set is reused, and the answers follow INCLUDE values, vectors, inserts and deletes', async () => {
  const first = await expectFiltered('a', 10);
  const hits = matchingCacheStats.hits;
  const indexOnly = plannerStats.indexOnly;
  const inFilters = filterStats.inIndexFilters;
  expect(await expectFiltered('a', 10)).toEqual(first);
  expect(filterStats.inIndexFilters).toBe(inFilters + 1);
  expect(matchingCacheStats.hits).toBe(hits + 1);
  expect(plannerStats.indexOnly).toBe(indexOnly + 1); // answered without Postgres

  // The three nearest leave the set (through Winnow: read-your-writes).
  await c.query(`UPDATE items SET tag = 'b' WHERE id = ANY($1::bigint[])`, [first.slice(0, 3)]);
  const after = await expectFiltered('a', 10);
  for (const id of first.slice(0, 3)) expect(after).not.toContain(id);

  // A 'b' row joins the set and moves onto the query vector: first.
  await c.query(`UPDATE items SET tag = 'a', v = $1 WHERE id = 3`, [q.pgv]);
  expect((await expectFiltered('a', 10))[0]).toBe('3');
  // Only its vector changes (a new version of the row in the index, same tag).
  await c.query(`UPDATE items SET v = $1 WHERE id = 3`, [randomVector(DIM, rnd).pgv]);
  expect((await expectFiltered('a', 10))[0]).not.toBe('3');

  // Inserted rows, one of them on the query vector.
  await c.query(`INSERT INTO items VALUES (${N + 1}, 'a', $1), (${N + 2}, 'b', $1)`, [q.pgv]);
  const ins = await expectFiltered('a', 10);
  expect(ins[0]).toBe(String(N + 1));
  expect(ins).not.toContain(String(N + 2));

  // Deleted rows never come back.
  await c.query(`DELETE FROM items WHERE id = ANY($1::bigint[])`, [ins.slice(0, 5)]);
  const del = await expectFiltered('a', 10);
  for (const id of ins.slice(0, 5)) expect(del).not.toContain(id);

  // Fewer matching rows than k: all of them.
  const rare = await expectFiltered('rare', 20);
  expect(rare.length).toBe(12);
  await c.query(`UPDATE items SET tag = 'rare' WHERE id = 2`);
  expect((await expectFiltered('rare', 20)).length).toBe(13);
  await c.query(`DELETE FROM items WHERE tag = 'rare' AND id <> 2`);
  expect(await expectFiltered('rare', 20)).toEqual(['2']);
  expect(await expectFiltered('nothing', 10)).toEqual([]);
}, 120_000);

test('after REINDEX (a new native index) the cached set still answers correctly', async () => {
  await expectFiltered('a', 10);
  await c.query('REINDEX INDEX items_v'); // retrained: the approximate answer may differ
  const after = await expectFiltered('a', 10);
  await c.query(`UPDATE items SET tag = 'b' WHERE id = $1`, [after[0]]);
  expect(await expectFiltered('a', 10)).not.toContain(after[0]);
  await c.query(`UPDATE items SET tag = 'a', v = $1 WHERE id = 5`, [q.pgv]);
  expect((await expectFiltered('a', 10))[0]).toBe('5');
}, 120_000);
