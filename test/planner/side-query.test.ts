// Filtered prepared statements whose Parse and Bind arrive in one batch (node-pg's unnamed statements,
// every statement's first run): the pre/post filter queries cannot run on the session's connection
// then, and run on Winnow's own connection as the session's role with its reported settings, when
// the predicate is context-free (sql/planner/side-query.ts). Otherwise Postgres answers exactly.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import pg from 'pg';
import { parseStatement } from '../../sql/parse.ts';
import { plannerStats } from '../../sql/planner/session.ts';
import { contextFreePredicate } from '../../sql/planner/side-query.ts';
import { plannerClients, closePlannerClients, fillTable, randomVector, prng, type PlannerHarness } from './helpers.ts';

const DIM = 8;
let h: PlannerHarness;
let c: pg.Client;
let d: pg.Client;

beforeAll(async () => {
  ({ h, c, d } = await plannerClients());
  await c.query(`CREATE TABLE items (id bigint PRIMARY KEY, cat int NOT NULL, v vector(${DIM}))`);
  await fillTable(d, 'items', 3000, DIM, 5);
  await d.query(`ALTER TABLE items ADD COLUMN created timestamptz`);
  await d.query(`UPDATE items SET created = timestamptz '2024-01-01 00:00:00+00' + (id || ' minutes')::interval`);
  await c.query('CREATE INDEX ON items USING winnow (v vector_l2_ops)'); // no INCLUDE: `in` cannot answer
});

afterAll(async () => {
  await closePlannerClients({ h, c, d });
});

const where = (p: string) => {
  const r = parseStatement(`SELECT 1 FROM t WHERE ${p}`);
  if (!r.ok) throw new Error(p);
  return (r.statements[0].stmt as Record<string, any>).SelectStmt.whereClause;
};

describe('context-free predicates', () => {
  test('columns, constants, casts, comparisons and boolean logic are; functions, session values, subqueries and reg* casts are not', () => {
    for (const p of ["cat = 3", "cat IN (1, 2) AND NOT (tag = 'x' OR tag IS NULL)", "price BETWEEN 1.5 AND 2::numeric", "created > '2024-01-01'::timestamptz", "tag LIKE 'a%' AND flag IS TRUE", "cat = ANY('{1,2}'::int[])", "tag COLLATE \"C\" < 'm'"]) {
      expect(contextFreePredicate(where(p)), p).toBe(true);
    }
    for (const p of ['created > now()', 'owner = current_user', "tenant = current_setting('app.tenant')::int", 'cat IN (SELECT 1)', 'lower(tag) = $1', "relid = 'items'::regclass", 'EXISTS (SELECT 1)']) {
      expect(contextFreePredicate(where(p)), p).toBe(false);
    }
  });
});

test("unnamed filtered statements (Parse and Bind in one batch) are planned, with the session's role and TimeZone", async () => {
  const s = await h.client();
  try {
    await s.query(`SET TimeZone = 'Pacific/Auckland'`);
    await d.query(`SET TimeZone = 'Pacific/Auckland'`);
    const rnd = prng(3);
    // A literal read in the session's TimeZone: '2024-01-02 12:00' is a different instant in Auckland than in UTC.
    for (const [text, extra] of [
      ['SELECT id FROM items WHERE cat = $2 ORDER BY v <-> $1 LIMIT 7', [4]],
      [`SELECT id FROM items WHERE created < '2024-01-02 12:00' AND cat <> $2 ORDER BY v <-> $1 LIMIT 9`, [1]],
    ] as const) {
      for (let i = 0; i < 3; i++) {
        const q = randomVector(DIM, rnd);
        const before = { ...plannerStats };
        const got = await s.query({ text, values: [q.pgv, ...extra], rowMode: 'array' });
        expect(plannerStats.nativeSearches - before.nativeSearches, text).toBeGreaterThanOrEqual(1);
        expect(plannerStats.exactFallbacks - before.exactFallbacks, text).toBe(0);
        const exact = await d.query({ text, values: [q.arr, ...extra], rowMode: 'array' });
        expect(got.rows, text).toEqual(exact.rows);
      }
    }
    // A filtered CTE planned at Bind, the pre-filter forced: its id query is the only way to a search.
    await s.query('SET winnow.filter_strategy = pre');
    const cte = 'WITH nn AS (SELECT id FROM items WHERE cat = $2 ORDER BY v <-> $1 LIMIT 5) SELECT id FROM nn ORDER BY id';
    const q = randomVector(DIM, rnd);
    const before = plannerStats.nativeSearches;
    const got = await s.query({ text: cte, values: [q.pgv, 6], rowMode: 'array' });
    expect(plannerStats.nativeSearches - before).toBe(1);
    expect(got.rows).toEqual((await d.query({ text: cte, values: [q.arr, 6], rowMode: 'array' })).rows);
    // They ran on Winnow's connection kept for side queries, not on the sync connection (whose polls
    // a long pre-filter would delay): one such connection for the database, however many queries.
    const conns = await d.query(`SELECT application_name, count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'winnow-%' GROUP BY 1 ORDER BY 1`);
    expect(conns.rows).toContainEqual({ application_name: 'winnow-side-queries', n: 1 });
  } finally {
    await s.end();
    await d.query('RESET TimeZone');
  }
});

test('a predicate that depends on the session runs exactly in Postgres; privileges are the role\'s', async () => {
  const s = await h.client();
  try {
    const q = randomVector(DIM, prng(4));
    const text = `SELECT id FROM items WHERE cat = abs($2::int) ORDER BY v <-> $1 LIMIT 5`;
    const before = plannerStats.exactFallbacks;
    const got = await s.query({ text, values: [q.pgv, -3], rowMode: 'array' });
    expect(plannerStats.exactFallbacks - before).toBe(1);
    expect(got.rows).toEqual((await d.query({ text, values: [q.arr, -3], rowMode: 'array' })).rows);
  } finally {
    await s.end();
  }
  // A role that may read id and v but not cat: the filter on cat is Postgres's permission error.
  const role = `side_${h.db.database}`;
  await d.query(`CREATE ROLE ${role} LOGIN`);
  await d.query(`GRANT SELECT (id, v) ON items TO ${role}`);
  const r = new pg.Client({ ...h.conn, user: role });
  await r.connect();
  try {
    const q = randomVector(DIM, prng(5));
    await expect(r.query({ text: 'SELECT id FROM items WHERE cat = $2 ORDER BY v <-> $1 LIMIT 5', values: [q.pgv, 2] })).rejects.toMatchObject({ code: '42501' });
    expect((await r.query({ text: 'SELECT id FROM items ORDER BY v <-> $1 LIMIT 2', values: [q.pgv] })).rowCount).toBe(2);
  } finally {
    await r.end();
    await d.query(`REVOKE ALL ON items FROM ${role}`);
    await d.query(`DROP ROLE ${role}`);
  }
});

test('LIMIT $n with a filter parameter is planned (the bound LIMIT is written in as a typed literal)', async () => {
  const q = randomVector(DIM, prng(6));
  const text = 'SELECT id FROM items WHERE cat = $2 ORDER BY v <-> $1 LIMIT $3';
  for (const name of ['limit_param', undefined]) {
    const before = { ...plannerStats };
    const got = await c.query({ name, text, values: [q.pgv, 7, 6], rowMode: 'array' });
    expect(plannerStats.nativeSearches - before.nativeSearches).toBeGreaterThanOrEqual(1);
    expect(plannerStats.exactFallbacks - before.exactFallbacks).toBe(0);
    expect(got.rows).toEqual((await d.query({ text, values: [q.arr, 7, 6], rowMode: 'array' })).rows);
    expect(got.rowCount).toBe(6);
  }
});
