// Query shapes planned on the simple-query path beyond `SELECT … ORDER BY d LIMIT k` (issue 5):
// nearest-neighbour CTEs and FROM subqueries joined with other tables, distance thresholds with and
// without ORDER BY/LIMIT, SQL-level PREPARE/EXECUTE, LIMIT/OFFSET constants with aliases. Every
// answer is compared with Postgres's exact answer (the table is below the training threshold, so the
// index is exact and results must be identical), and plannerStats shows the index answered.
import { afterAll, beforeAll, expect, test } from 'vitest';
import pg from 'pg';
import { plannerStats } from '../../sql/planner/session.ts';
import { FACTS_TTL_MS } from '../../sql/planner/visibility.ts';
import { plannerClients, closePlannerClients, fillTable, randomVector, prng, type PlannerHarness } from './helpers.ts';

const DIM = 8;
let h: PlannerHarness;
let c: pg.Client; // through Winnow
let d: pg.Client; // straight to Postgres

beforeAll(async () => {
  ({ h, c, d } = await plannerClients());
  await c.query(`CREATE TABLE items (id bigint PRIMARY KEY, cat int NOT NULL, v vector(${DIM}))`);
  await fillTable(d, 'items', 3000, DIM, 3);
  await d.query(`CREATE TABLE labels (item_id bigint, label text)`);
  await d.query(`INSERT INTO labels SELECT id, 'label-' || id FROM items WHERE id % 3 <> 0`);
  await c.query(`CREATE INDEX items_v ON items USING winnow (v vector_l2_ops)`);
  await c.query(`CREATE INDEX items_cos ON items USING winnow (v vector_cosine_ops)`);
  await c.query(`CREATE INDEX items_ip ON items USING winnow (v vector_ip_ops)`);
});

afterAll(async () => {
  await closePlannerClients({ h, c, d });
});

/** Rows as arrays of values (ids as text). */
const rowsOf = (r: pg.QueryResult): unknown[][] => r.rows.map((row) => Object.values(row));

/** Same rows in the same order: equal values, numbers within 1e-5 relative (index vs Postgres distances). */
function expectRows(a: unknown[][], b: unknown[][], what: string) {
  expect(a.length, what).toBe(b.length);
  for (let i = 0; i < a.length; i++) {
    expect(a[i].length, what).toBe(b[i].length);
    for (let j = 0; j < a[i].length; j++) {
      const x = a[i][j], y = b[i][j];
      if (typeof x === 'number' && typeof y === 'number') expect(Math.abs(x - y), `${what} row ${i} col ${j}`).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(y)));
      else expect(x, `${what} row ${i} col ${j}`).toEqual(y);
    }
  }
}

/** Runs `sql` through Winnow and straight in Postgres; returns how many native searches Winnow ran. */
async function same(sql: string, args: { minRows?: number } = {}) {
  const before = plannerStats.nativeSearches;
  const a = await c.query(sql);
  const searched = plannerStats.nativeSearches - before;
  const b = await d.query(sql.replaceAll(/'\[([^\]]*)\]'/g, "'{$1}'"));
  expectRows(rowsOf(a), rowsOf(b), sql);
  expect(a.fields.map((f) => f.name)).toEqual(b.fields.map((f) => f.name));
  expect(a.rows.length).toBeGreaterThanOrEqual(args.minRows ?? 1);
  return searched;
}

test('a nearest-neighbour CTE joined with another table runs natively, the rest in Postgres', async () => {
  const rnd = prng(1);
  for (let i = 0; i < 3; i++) {
    const q = randomVector(DIM, rnd).pgv;
    const n = await same(`WITH nn AS (SELECT id, v <-> '${q}' AS dist FROM items ORDER BY v <-> '${q}' LIMIT 10)
      SELECT nn.id, nn.dist, l.label FROM nn JOIN labels l ON l.item_id = nn.id ORDER BY nn.dist, nn.id`);
    expect(n).toBe(1);
  }
  // Two planned CTEs (different metrics), one with a WHERE clause; MATERIALIZED; a CTE that is not a KNN.
  const q = randomVector(DIM, rnd).pgv;
  const n = await same(`WITH a AS MATERIALIZED (SELECT id FROM items WHERE cat = 2 ORDER BY v <-> '${q}' LIMIT 5),
      b AS (SELECT id, v <=> '${q}' FROM items ORDER BY v <=> '${q}' LIMIT 7),
      c AS (SELECT 1 AS one)
    SELECT a.id AS a_id, b.id AS b_id FROM a FULL JOIN b ON a.id = b.id CROSS JOIN c ORDER BY 1, 2`);
  expect(n).toBe(2);
  const ex = await c.query(`EXPLAIN WITH nn AS (SELECT id FROM items ORDER BY v <-> '${q}' LIMIT 3) SELECT * FROM nn JOIN labels ON item_id = nn.id`);
  const plan = ex.rows.map((x) => x['QUERY PLAN']).join('\n');
  expect(plan).toContain('Winnow KNN Scan using items_v (k=3)');
  expect(plan).toContain('Part: CTE nn');
  expect(plan).toMatch(/Hash Join|Nested Loop|Merge Join/);
});

test('a nearest-neighbour subquery in FROM (also inside a join) runs natively', async () => {
  const rnd = prng(2);
  const q = randomVector(DIM, rnd).pgv;
  expect(await same(`SELECT s.id, s.d, l.label FROM (SELECT id, v <-> '${q}' AS d FROM items ORDER BY v <-> '${q}' LIMIT 12) s
    JOIN labels l ON l.item_id = s.id ORDER BY s.d`)).toBe(1);
  expect(await same(`SELECT count(*), min(s.d) FROM labels l JOIN (SELECT i.id, i.v <=> '${q}' AS d FROM items i WHERE i.cat IN (1, 4) ORDER BY i.v <=> '${q}' LIMIT 20 OFFSET 2) AS s ON s.id = l.item_id`)).toBe(1);
  // A subquery with parentheses and a ')' in a string inside it.
  expect(await same(`SELECT * FROM (SELECT id, 'a)b' AS t, (cat + 1) AS c1 FROM items WHERE cat <> ((2)) ORDER BY v <-> '${q}' LIMIT 4) x ORDER BY id`)).toBe(1);
  // Not a KNN shape (no LIMIT): Postgres alone, same answer.
  expect(await same(`SELECT count(*) FROM (SELECT id FROM items WHERE cat = 3 ORDER BY v <-> '${q}') s`)).toBe(0);
});

test('distance thresholds: WHERE d < r with ORDER BY/LIMIT is cut at r; without, every row within r', async () => {
  const rnd = prng(3);
  const q = randomVector(DIM, rnd).pgv;
  // Pick radii from the exact distance distribution: about 5 and 60 rows within.
  const ds = (await d.query(`SELECT v <-> '${q.replace('[', '{').replace(']', '}')}' AS d FROM items ORDER BY 1`)).rows.map((x) => Number(x.d));
  const r5 = ((ds[4] + ds[5]) / 2).toFixed(6), r60 = ((ds[59] + ds[60]) / 2).toFixed(6);
  // Top-k cut at r: fewer than k within r, more than k within r.
  expect(await same(`SELECT id, v <-> '${q}' AS d FROM items WHERE v <-> '${q}' < ${r5} ORDER BY v <-> '${q}' LIMIT 10`, { minRows: 5 })).toBe(1);
  expect(await same(`SELECT id, v <-> '${q}' AS d FROM items WHERE v <-> '${q}' <= ${r60} ORDER BY v <-> '${q}' LIMIT 10`, { minRows: 10 })).toBe(1);
  expect(await same(`SELECT id FROM items WHERE ${r60} > v <-> '${q}' AND cat = 1 ORDER BY v <-> '${q}' LIMIT 100`)).toBe(1);
  // Range without ORDER BY distance: any select list, other ORDER BY, aggregates, LIMIT.
  expect(await same(`SELECT id, cat FROM items WHERE v <-> '${q}' < ${r60} ORDER BY id`, { minRows: 60 })).toBeGreaterThanOrEqual(1);
  expect(await same(`SELECT id, v <-> '${q}' FROM items x WHERE x.v <-> '${q}'::vector <= ${r60}::float8 AND cat < 5 ORDER BY 2`)).toBeGreaterThanOrEqual(1);
  expect(await same(`SELECT count(*) AS n, max(v <-> '${q}') AS far FROM items WHERE v <-> '${q}' < ${r60}`)).toBeGreaterThanOrEqual(1);
  expect(await same(`SELECT cat, count(*) FROM items WHERE v <-> '${q}' < ${r60} GROUP BY cat ORDER BY cat`)).toBeGreaterThanOrEqual(1);
  expect(await same(`SELECT id FROM items WHERE v <=> '${q}' < 0.05 ORDER BY id`, { minRows: 0 })).toBeGreaterThanOrEqual(1);
  // Negative inner product below a negative bound; a quoted radius; a radius cast to real.
  expect(await same(`SELECT id, v <#> '${q}' AS d FROM items WHERE v <#> '${q}' < -1.5 ORDER BY id`, { minRows: 5 })).toBeGreaterThanOrEqual(1);
  expect(await same(`SELECT id FROM items WHERE v <-> '${q}' <= '${r60}' ORDER BY id`, { minRows: 60 })).toBeGreaterThanOrEqual(1);
  expect(await same(`SELECT id FROM items WHERE v <-> '${q}' < ${r60}::real ORDER BY id`, { minRows: 55 })).toBeGreaterThanOrEqual(1);
  // Nothing within the radius: no rows, still native.
  expect(await same(`SELECT id FROM items WHERE v <-> '${q}' < 0.0001`, { minRows: 0 })).toBe(1);
  // In a CTE.
  expect(await same(`WITH near AS (SELECT id FROM items WHERE v <-> '${q}' < ${r60}) SELECT count(*) FROM near JOIN labels ON item_id = near.id`)).toBeGreaterThanOrEqual(1);
  const ex = await c.query(`EXPLAIN ANALYZE SELECT id FROM items WHERE v <-> '${q}' < ${r60}`);
  const plan = ex.rows.map((x) => x['QUERY PLAN']).join('\n');
  expect(plan).toContain(`Winnow Range Scan using items_v (distance < ${r60})`);
  expect(plan).toContain('Returned ids: 60');
});

test('SQL PREPARE … EXECUTE is planned natively with the arguments substituted', async () => {
  const rnd = prng(4);
  await c.query(`PREPARE nn(vector, int) AS SELECT id, v <=> $1 AS d FROM items WHERE cat <> 7 ORDER BY v <=> $1 LIMIT $2`);
  await d.query(`PREPARE nn(vector, int) AS SELECT id, v <=> $1 AS d FROM items WHERE cat <> 7 ORDER BY v <=> $1 LIMIT $2`);
  for (let i = 0; i < 3; i++) {
    const q = randomVector(DIM, rnd);
    const before = plannerStats.nativeSearches;
    const a = await c.query(`EXECUTE nn('${q.pgv}', ${5 + i})`);
    expect(plannerStats.nativeSearches - before).toBeGreaterThanOrEqual(1);
    const b = await d.query(`EXECUTE nn('${q.arr}', ${5 + i})`);
    expectRows(rowsOf(a), rowsOf(b), 'EXECUTE nn');
    expect(a.rows.length).toBe(5 + i);
  }
  // No declared types; a threshold parameter; EXPLAIN EXECUTE.
  await c.query(`PREPARE near AS SELECT id FROM items WHERE v <-> $1 < $2 ORDER BY id`);
  const q = randomVector(DIM, rnd);
  const before = plannerStats.nativeSearches;
  const a = await c.query(`EXECUTE near('${q.pgv}', 0.6)`);
  expect(plannerStats.nativeSearches - before).toBeGreaterThanOrEqual(1);
  const b = await d.query(`SELECT id FROM items WHERE v <-> '${q.arr}' < 0.6 ORDER BY id`);
  expectRows(rowsOf(a), rowsOf(b), 'EXECUTE near');
  expect(a.rows.length).toBeGreaterThan(0);
  const ex = await c.query(`EXPLAIN EXECUTE nn('${q.pgv}', 3)`);
  expect(ex.rows.map((x) => x['QUERY PLAN']).join('\n')).toContain('Winnow KNN Scan using items_cos (k=3)');
  // DEALLOCATE: Postgres's error, as without Winnow.
  await c.query('DEALLOCATE nn');
  await expect(c.query(`EXECUTE nn('${q.pgv}', 3)`)).rejects.toMatchObject({ code: '26000' });
  // A PREPARE that failed is not planned either.
  await expect(c.query(`PREPARE bad(vector) AS SELECT id FROM no_such_table ORDER BY v <-> $1 LIMIT 3`)).rejects.toMatchObject({ code: '42P01' });
  await expect(c.query(`EXECUTE bad('${q.pgv}')`)).rejects.toMatchObject({ code: '26000' });
  // Wrong number of arguments: Postgres's error.
  await expect(c.query(`EXECUTE near('${q.pgv}')`)).rejects.toMatchObject({ code: '42601' });
  await c.query('DEALLOCATE ALL');
  await expect(c.query(`EXECUTE near('${q.pgv}', 0.5)`)).rejects.toMatchObject({ code: '26000' });
});

test('simple-protocol LIMIT/OFFSET constants with table aliases and column aliases', async () => {
  const rnd = prng(5);
  const q = randomVector(DIM, rnd).pgv;
  expect(await same(`SELECT it.id AS item, it.v <-> '${q}' AS "Dist", it.cat c FROM items AS it ORDER BY it.v <-> '${q}' LIMIT 6 OFFSET 3`)).toBe(1);
  // cat = 5 is ~10 % of rows, where auto switches between pre (one search) and post (a search per round)
  // on Postgres's estimate, which autovacuum's ANALYZE may refresh between runs.
  expect(await same(`SELECT x.id, x.cat, x.v <-> '${q}' FROM items x WHERE x.cat = 5 ORDER BY x.v <-> '${q}' ASC LIMIT 4 OFFSET 0`)).toBeGreaterThanOrEqual(1);
  expect(await same(`SELECT id FROM items ORDER BY v <-> '${q}' OFFSET 5 LIMIT 2`)).toBe(1);
  expect(await same(`SELECT id FROM items ORDER BY v <-> '${q}' FETCH FIRST 3 ROWS ONLY`)).toBe(1);
  // Line comments at the end of the select list, FROM and WHERE (Winnow appends text after each).
  for (const strategy of ['pre', 'post']) {
    await c.query(`SET winnow.filter_strategy = ${strategy}`);
    expect(await same(`SELECT id, v <-> '${q}' AS d -- the id\nFROM items -- the table\nWHERE cat = 2 -- only 2\nORDER BY v <-> '${q}' LIMIT 3`)).toBeGreaterThanOrEqual(1);
    expect(await same(`SELECT * FROM (SELECT id FROM items WHERE cat <> 1 -- c\nORDER BY v <-> '${q}' LIMIT 3 -- d\n) s ORDER BY id`)).toBeGreaterThanOrEqual(1);
  }
  await c.query('RESET winnow.filter_strategy');
  // OFFSET past the matches, LIMIT 0.
  // (Unanalysed table: Postgres guesses 1/3 for id < 20, so auto post-filters, deepens, and finishes with the pre-filter.)
  expect(await same(`SELECT id FROM items WHERE id < 20 ORDER BY v <-> '${q}' LIMIT 5 OFFSET 30`, { minRows: 0 })).toBeGreaterThanOrEqual(1);
  expect(await same(`SELECT id FROM items ORDER BY v <-> '${q}' LIMIT 0`, { minRows: 0 })).toBe(1);
});

test('extended protocol: CTEs, FROM subqueries and distance thresholds with parameters are planned at each Bind', async () => {
  const rnd = prng(8);
  const q = randomVector(DIM, rnd);
  const ds = (await d.query(`SELECT v <-> '${q.arr}' AS d FROM items ORDER BY 1`)).rows.map((x) => Number(x.d));
  const r60 = (ds[59] + ds[60]) / 2;
  /** Through Winnow as a named prepared statement (run twice), and straight in Postgres with the vector as an array. */
  const samePrepared = async (name: string, sql: string, values: unknown[], vectorParam: number) => {
    const before = plannerStats.nativeSearches;
    const a = await c.query({ name, text: sql, values });
    const a2 = await c.query({ name, text: sql, values });
    const searched = plannerStats.nativeSearches - before;
    const b = await d.query({ text: sql, values: values.map((v, i) => (i === vectorParam - 1 ? q.arr : v)) });
    expectRows(rowsOf(a), rowsOf(b), sql);
    expectRows(rowsOf(a2), rowsOf(b), sql);
    expect(a.fields.map((f) => [f.name, f.dataTypeID])).toEqual(b.fields.map((f) => [f.name, f.dataTypeID]));
    expect(a.rows.length).toBeGreaterThan(0);
    return searched;
  };
  expect(await samePrepared('cte', `WITH nn AS (SELECT id, v <-> $1 AS dist FROM items ORDER BY v <-> $1 LIMIT $2) SELECT nn.id, dist, label FROM nn LEFT JOIN labels ON item_id = nn.id ORDER BY dist`, [q.pgv, 10], 1)).toBe(2);
  expect(await samePrepared('sub', `SELECT s.id, l.label FROM (SELECT id FROM items WHERE cat = $2 ORDER BY v <=> $1 LIMIT 5) s JOIN labels l ON l.item_id = s.id ORDER BY s.id`, [q.pgv, 3], 1)).toBe(2);
  expect(await samePrepared('range', `SELECT id, cat FROM items WHERE v <-> $1 < $2 ORDER BY id`, [q.pgv, r60], 1)).toBeGreaterThanOrEqual(2);
  expect(await samePrepared('range_k', `SELECT id FROM items WHERE v <-> $1 <= $2 AND cat <> $3 ORDER BY v <-> $1 LIMIT 20`, [q.pgv, r60, 2], 1)).toBeGreaterThanOrEqual(2);
  // The query vector in pgvector's binary send format (pg sends a Buffer as a binary parameter): planned the same.
  const bin = Buffer.alloc(4 + 4 * DIM);
  bin.writeInt16BE(DIM, 0);
  q.v.forEach((x, i) => bin.writeFloatBE(x, 4 + 4 * i));
  expect(await samePrepared('cte_bin', `WITH nn AS (SELECT id, v <-> $1 AS dist FROM items ORDER BY v <-> $1 LIMIT $2) SELECT nn.id, dist FROM nn ORDER BY dist`, [bin, 10], 1)).toBe(2);
  expect(await samePrepared('range_bin', `SELECT id, cat FROM items WHERE v <-> $1 < $2 ORDER BY id`, [bin, r60], 1)).toBeGreaterThanOrEqual(2);
  // postgres.js's unnamed statements, and a vector result column (translated back to pgvector text).
  const v = await c.query({ text: `WITH nn AS (SELECT id, v FROM items ORDER BY v <-> $1 LIMIT 3) SELECT id, v FROM nn ORDER BY id`, values: [q.pgv] });
  const vd = await d.query({ text: `WITH nn AS (SELECT id, v FROM items ORDER BY v <-> $1 LIMIT 3) SELECT id, v FROM nn ORDER BY id`, values: [q.arr] });
  expect(v.rows.map((r) => r.id)).toEqual(vd.rows.map((r) => r.id));
  expect(String(v.rows[0].v)).toMatch(/^\[/);
  // A fresh session with unnamed statements only (Parse and Bind in one batch, so no internal query can
  // run on its connection), with cached facts expired between statements: still planned.
  const fresh = await h.client();
  try {
    for (const [text, values] of [
      ['WITH nn AS (SELECT id FROM items ORDER BY v <-> $1 LIMIT 5) SELECT id FROM nn ORDER BY id', [q.pgv]],
      ['SELECT id FROM items WHERE v <-> $1 < $2 ORDER BY id', [q.pgv, r60]],
    ] as const) {
      await new Promise((r) => setTimeout(r, FACTS_TTL_MS + 100));
      const before = plannerStats.nativeSearches;
      const a = await fresh.query({ text, values: [...values] });
      expect(plannerStats.nativeSearches - before, text).toBeGreaterThanOrEqual(1);
      expect(a.rows).toEqual((await d.query({ text, values: values.map((v) => (v === q.pgv ? q.arr : v)) })).rows);
    }
  } finally {
    await fresh.end();
  }
  // Inside a transaction block that has written: Postgres's exact answer (the index cannot see the
  // transaction's uncommitted rows; before the write the index answers: transactions.test.ts).
  await c.query('BEGIN');
  await c.query(`INSERT INTO labels VALUES (-1, 'in transaction')`);
  const before = plannerStats.nativeSearches;
  await c.query({ name: 'cte', text: `WITH nn AS (SELECT id, v <-> $1 AS dist FROM items ORDER BY v <-> $1 LIMIT $2) SELECT nn.id, dist, label FROM nn LEFT JOIN labels ON item_id = nn.id ORDER BY dist`, values: [q.pgv, 10] });
  expect(plannerStats.nativeSearches).toBe(before);
  await c.query('ROLLBACK');
  // A bad vector parameter: Postgres's (pgvector's) error, and the session goes on.
  await expect(c.query({ name: 'range', text: `SELECT id, cat FROM items WHERE v <-> $1 < $2 ORDER BY id`, values: ['[1,2]', 0.5] })).rejects.toMatchObject({ code: '22000' });
  expect((await c.query('SELECT 1 AS one')).rows[0].one).toBe(1);
});
