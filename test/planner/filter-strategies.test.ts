// winnow.filter_strategy = auto | pre | post | in on a small table whose index is exact (below the
// training threshold): every strategy must return exactly Postgres's filtered top-k — min(k, matching
// rows), in distance order — at selectivities from 0 to 100 %, with RLS, and EXPLAIN must show what
// ran. Recall on real data (wordnet-use-512 30k, trained index) is in recall.test.ts.
import { afterAll, beforeAll, expect, test } from 'vitest';
import pg from 'pg';
import { plannerStats } from '../../sql/planner/session.ts';
import { clearSelectivityCache, estimateQueries } from '../../sql/planner/selectivity.ts';
import { filterStats } from '../../sql/planner/filter.ts';
import { preparedIdsStats } from '../../sql/planner/matching-cache.ts';
import { plannerClients, closePlannerClients, randomVector, prng, type PlannerHarness } from './helpers.ts';

const DIM = 8;
const N = 4000;
let h: PlannerHarness;
let c: pg.Client;
let d: pg.Client;

beforeAll(async () => {
  ({ h, c, d } = await plannerClients());
  await c.query(`CREATE TABLE docs (id bigint PRIMARY KEY, cat int, tag text, flag bool, v vector(${DIM}))`);
  const rnd = prng(9);
  for (let s = 0; s < N; s += 500) {
    const rows: string[] = [];
    for (let id = s + 1; id <= Math.min(N, s + 500); id++) {
      const tag = ['red', 'green', 'blue', 'rare'][id % 997 === 0 ? 3 : id % 3];
      rows.push(`(${id}, ${id % 10 === 9 ? 'NULL' : id % 10}, '${tag}', ${id % 2 === 0}, '${randomVector(DIM, rnd).arr}')`);
    }
    await d.query(`INSERT INTO docs VALUES ${rows.join(',')}`);
  }
  await d.query('ANALYZE docs');
  // cat and tag are mirrored in the index (strategy `in`); flag is not.
  await c.query(`CREATE INDEX docs_v ON docs USING winnow (v vector_l2_ops) INCLUDE (cat, tag)`);
});

afterAll(async () => {
  await closePlannerClients({ h, c, d });
});

async function exact(q: { arr: string }, where: string, k: number, client = d) {
  const r = await client.query(`SELECT id::text, v <-> '${q.arr}' AS d FROM docs WHERE ${where} ORDER BY v <-> '${q.arr}', id LIMIT ${k}`);
  return r.rows.map((x) => ({ id: x.id as string, d: Number(x.d) }));
}

async function viaWinnow(q: { pgv: string }, where: string, k: number, client = c) {
  const r = await client.query(`SELECT id::text, v <-> '${q.pgv}' AS d FROM docs WHERE ${where} ORDER BY v <-> '${q.pgv}' LIMIT ${k}`);
  return r.rows.map((x) => ({ id: x.id as string, d: Number(x.d) }));
}

function expectSame(a: { id: string; d: number }[], b: { id: string; d: number }[], what: string) {
  expect(a.length, what).toBe(b.length);
  for (let i = 0; i < a.length; i++) expect(a[i].d, what).toBeCloseTo(b[i].d, 5);
  for (let i = 1; i < a.length; i++) expect(a[i].d, what).toBeGreaterThanOrEqual(a[i - 1].d);
  expect(new Set(a.map((x) => x.id)), what).toEqual(new Set(b.map((x) => x.id)));
}

async function plan(sql: string): Promise<string> {
  const r = await c.query(`EXPLAIN ANALYZE ${sql}`);
  return r.rows.map((x) => x['QUERY PLAN']).join('\n');
}

// 0 %, 0.1 %, 1 %, 10 %, 30 %, 50 %, 90 %, 100 % of the rows; NULLs and three-valued logic included.
const WHERES = ['cat = 42', "tag = 'rare'", 'id % 100 = 0', 'cat = 3', "tag = 'red'", 'flag', 'cat IS NOT NULL', 'true'];

test('every strategy returns exactly the filtered top-k (min(k, matches), distance order)', async () => {
  const rnd = prng(21);
  for (const strategy of ['pre', 'post', 'auto', "'in'"]) {
    await c.query(`SET winnow.filter_strategy = ${strategy}`);
    for (const where of WHERES) {
      for (const k of [1, 10, 50]) {
        const q = randomVector(DIM, rnd);
        const before = plannerStats.nativeSearches;
        const got = await viaWinnow(q, where, k);
        expect(plannerStats.nativeSearches - before, `${strategy} ${where}`).toBeGreaterThanOrEqual(1);
        expectSame(got, await exact(q, where, k), `${strategy} ${where} k=${k}`);
      }
    }
  }
  await c.query('RESET winnow.filter_strategy');
});

test('post-filter deepens k\' until k rows pass, and finishes with the pre-filter when few rows match', async () => {
  await c.query('SET winnow.filter_strategy = post');
  const q = randomVector(DIM, prng(22));
  // 1 %: the first k' = 2k candidates hold ~0.2 matches, so it takes several rounds.
  let p = await plan(`SELECT id FROM docs WHERE id % 100 = 0 ORDER BY v <-> '${q.pgv}' LIMIT 5`);
  expect(p).toContain('Strategy: post-filter');
  const rounds = Number(/Rounds: (\d+)/.exec(p)?.[1]);
  expect(rounds).toBeGreaterThanOrEqual(3);
  expect(p).toMatch(/Actual candidates: \d+/);
  expect(p).toMatch(/post-filter checks [\d.]+ ms/);
  // 0.1 %: deepening would pass half of the index; the pre-filter's id list finishes.
  p = await plan(`SELECT id FROM docs WHERE tag = 'rare' ORDER BY v <-> '${q.pgv}' LIMIT 10`);
  expect(p).toContain('finished with pre-filter');
  expect(p).toContain('Returned ids: 4');
  // 90 %: one round.
  p = await plan(`SELECT id FROM docs WHERE cat IS NOT NULL ORDER BY v <-> '${q.pgv}' LIMIT 10`);
  expect(p).toContain('Rounds: 1');
  await c.query('RESET winnow.filter_strategy');
});

test('auto chooses by Postgres\'s selectivity estimate; EXPLAIN shows the estimate, candidates and times', async () => {
  clearSelectivityCache();
  const q = randomVector(DIM, prng(23));
  let p = await plan(`SELECT id FROM docs WHERE id % 100 = 0 AND cat = 0 ORDER BY v <-> '${q.pgv}' LIMIT 10`);
  expect(p).toContain('Strategy: pre-filter');
  expect(p).toMatch(/Estimated selectivity: [\d.]+% \(\d+ rows, Postgres planner estimate\)/);
  expect(p).toMatch(/Requested: winnow.filter_strategy = auto \(auto: estimated selectivity [\d.]+% < 10%\)/);
  expect(p).toMatch(/Time: read-your-writes wait [\d.]+ ms, selectivity estimate [\d.]+ ms, filter [\d.]+ ms, search [\d.]+ ms/);
  p = await plan(`SELECT id FROM docs WHERE flag ORDER BY v <-> '${q.pgv}' LIMIT 10`);
  expect(p).toContain('Strategy: post-filter');
  expect(p).toMatch(/Estimated selectivity: 5\d\.\d+%/);
  expect(p).toMatch(/Estimated candidates: \d+/);
  // The estimate is cached per predicate: the second plan does not ask Postgres again.
  p = await plan(`SELECT id FROM docs WHERE flag ORDER BY v <-> '${q.pgv}' LIMIT 10`);
  expect(p).not.toMatch(/selectivity estimate [1-9]/);
  // `in` on a column that is not INCLUDEd: not eligible, auto's choice answers and EXPLAIN says why.
  await c.query(`SET winnow.filter_strategy = 'in'`);
  p = await plan(`SELECT id FROM docs WHERE flag ORDER BY v <-> '${q.pgv}' LIMIT 10`);
  expect(p).toContain('in not eligible: column "flag" is not an INCLUDE column');
  expect(p).toContain('Strategy: post-filter');
  await c.query('RESET winnow.filter_strategy');
});

test('in: predicates on INCLUDE columns are evaluated inside Winnow (no Postgres round trip for the ids), auto prefers it', async () => {
  const rnd = prng(26);
  for (const where of ["cat = 3", "tag IN ('red', 'rare') AND cat BETWEEN 2 AND 6", "NOT (cat = 1 OR tag = 'blue')", 'cat IS NULL', "tag = 'rare'", "cat >= 100"]) {
    for (const strategy of ["'in'", 'auto']) {
      await c.query(`SET winnow.filter_strategy = ${strategy}`);
      const q = randomVector(DIM, rnd);
      const pre = filterStats.preFilterQueries, post = filterStats.postCheckQueries, est = estimateQueries.count, inIdx = filterStats.inIndexFilters;
      expectSame(await viaWinnow(q, where, 10), await exact(q, where, 10), `${strategy} ${where}`);
      expect(filterStats.inIndexFilters - inIdx, where).toBe(1);
      expect([filterStats.preFilterQueries - pre, filterStats.postCheckQueries - post, estimateQueries.count - est], where).toEqual([0, 0, 0]);
    }
  }
  const q = randomVector(DIM, rnd);
  const p = await plan(`SELECT id FROM docs WHERE cat = 3 ORDER BY v <-> '${q.pgv}' LIMIT 10`);
  expect(p).toContain('Strategy: in-index filter');
  expect(p).toContain('Allowed ids: 400');
  // Changes made through this session are in the mirrored columns before its next query.
  await c.query(`UPDATE docs SET cat = 77 WHERE id IN (5, 6, 7)`);
  await c.query(`SET winnow.filter_strategy = 'in'`);
  const got = await viaWinnow(q, 'cat = 77', 10);
  expect(got.map((x) => x.id).sort()).toEqual(['5', '6', '7']);
  await c.query(`UPDATE docs SET cat = id % 10 WHERE id IN (5, 6, 7)`);
  await c.query('RESET winnow.filter_strategy');
});

test('a WHERE partly on INCLUDE columns: those conditions restrict the searches in the index, Postgres checks the whole clause', async () => {
  const rnd = prng(27);
  // cat and tag are INCLUDE columns, flag and id are not.
  for (const where of ['cat = 3 AND id % 4 = 1', "tag = 'red' AND NOT flag AND cat <> 4", "flag AND tag IN ('green', 'rare')", 'cat = 3 AND id % 2 = 1']) {
    for (const strategy of ['post', 'auto']) {
      await c.query(`SET winnow.filter_strategy = ${strategy}`);
      for (const k of [1, 10, 50]) {
        const q = randomVector(DIM, rnd);
        const inIdx = filterStats.inIndexFilters, pre = filterStats.preFilterQueries;
        expectSame(await viaWinnow(q, where, k), await exact(q, where, k), `${strategy} ${where} k=${k}`);
        expect(filterStats.inIndexFilters - inIdx, where).toBe(1);
        // (k = 50 of ~400 allowed ids may deepen past half of them and finish with the pre-filter.)
        if (k <= 10) expect(filterStats.preFilterQueries - pre, where).toBe(0);
      }
    }
  }
  await c.query('RESET winnow.filter_strategy');
  const q = randomVector(DIM, rnd);
  const p = await plan(`SELECT id FROM docs WHERE cat = 3 AND id % 4 = 1 ORDER BY v <-> '${q.pgv}' LIMIT 10`);
  expect(p).toContain('Strategy: post-filter');
  expect(p).toContain('searches restricted to the 400 ids allowed by 1 condition on INCLUDE columns');
  expect(p).toContain('Allowed ids: 400');
  // Half of the allowed ids pass the rest, so auto post-filters although the clause matches 5 % of
  // the rows (it would pre-filter below 10 %), and a round or two find k.
  expect(Number(/Rounds: (\d+)/.exec(p)?.[1])).toBeLessThanOrEqual(2);
  // pre asks Postgres for the ids of the whole clause, as before.
  await c.query('SET winnow.filter_strategy = pre');
  const inIdx = filterStats.inIndexFilters;
  expectSame(await viaWinnow(q, 'cat = 3 AND id % 4 = 1', 10), await exact(q, 'cat = 3 AND id % 4 = 1', 10), 'pre');
  expect(filterStats.inIndexFilters).toBe(inIdx);
  await c.query('RESET winnow.filter_strategy');
});

test('pre: a predicate whose id list comes back unchanged is searched with a filter prepared for it; a changed list is not', async () => {
  await c.query('SET winnow.filter_strategy = pre');
  const rnd = prng(28);
  const where = 'flag AND id % 3 = 0';
  const stats = () => ({ ...preparedIdsStats });
  const s0 = stats();
  for (let i = 0; i < 3; i++) {
    const q = randomVector(DIM, rnd);
    expectSame(await viaWinnow(q, where, 10), await exact(q, where, 10), `run ${i}`);
  }
  // First run: the list alone; second: same list, prepared; third: reused.
  expect([preparedIdsStats.prepared - s0.prepared, preparedIdsStats.reused - s0.reused]).toEqual([1, 1]);
  // A row now passes that did not: a new list, searched as a list (and remembered for next time).
  await c.query(`UPDATE docs SET flag = true WHERE id = 3`);
  const q = randomVector(DIM, rnd);
  const s1 = stats();
  const got = await viaWinnow(q, where, 10);
  expectSame(got, await exact(q, where, 10), 'after the change');
  expect([preparedIdsStats.prepared - s1.prepared, preparedIdsStats.reused - s1.reused]).toEqual([0, 0]);
  await c.query(`UPDATE docs SET flag = false WHERE id = 3`);
  await c.query('RESET winnow.filter_strategy');
});

test('SET winnow.filter_strategy rejects unknown values like a real enum setting', async () => {
  await expect(c.query(`SET winnow.filter_strategy = sideways`)).rejects.toMatchObject({ code: '22023', message: expect.stringContaining('winnow.filter_strategy') });
  // The failed SET left the session usable and the previous value in place.
  await c.query(`SET winnow.filter_strategy = pre`);
  await expect(c.query(`SET winnow.filter_strategy = 'bogus'`)).rejects.toMatchObject({ code: '22023' });
  // The value is quoted, never spliced into the statement that raises the error.
  await expect(c.query(`SET winnow.filter_strategy = 'x$$; '' END; $$ \\'`)).rejects.toMatchObject({ code: '22023', message: `invalid value for parameter "winnow.filter_strategy": "x$$; ' END; $$ \\"` });
  const q = randomVector(DIM, prng(24));
  expect(await plan(`SELECT id FROM docs WHERE flag ORDER BY v <-> '${q.pgv}' LIMIT 3`)).toContain('Strategy: pre-filter');
  expect((await c.query('SHOW winnow.filter_strategy')).rows[0]['winnow.filter_strategy']).toBe('pre');
  await c.query('RESET winnow.filter_strategy');
});

test('post-filter under row-level security returns the k nearest visible rows', async () => {
  const role = `filt_${h.db.database}`;
  await d.query(`CREATE ROLE ${role} LOGIN`);
  await d.query(`GRANT SELECT ON docs TO ${role}`);
  await d.query(`ALTER TABLE docs ENABLE ROW LEVEL SECURITY`);
  await d.query(`CREATE POLICY only_even ON docs FOR SELECT TO ${role} USING (id % 2 = 0)`);
  const r = new pg.Client({ ...h.conn, user: role });
  await r.connect();
  try {
    const rnd = prng(25);
    for (const strategy of ['post', 'pre', 'auto']) {
      await r.query(`SET winnow.filter_strategy = ${strategy}`);
      for (const where of ['cat = 3', 'true', "tag = 'blue'"]) {
        const q = randomVector(DIM, rnd);
        expectSame(await viaWinnow(q, where, 10, r), await exact(q, `(${where}) AND id % 2 = 0`, 10), `${strategy} ${where} (RLS)`);
      }
    }
  } finally {
    await r.end();
    await d.query(`DROP POLICY only_even ON docs`);
    await d.query(`ALTER TABLE docs DISABLE ROW LEVEL SECURITY`);
    await d.query(`REVOKE ALL ON docs FROM ${role}`);
    await d.query(`DROP ROLE ${role}`);
  }
});
