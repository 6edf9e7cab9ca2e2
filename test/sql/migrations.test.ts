// The migration runner and CREATE/DROP EXTENSION statements on the run's real Postgres (no pgvector).
import { afterAll, beforeAll, expect, test } from 'vitest';
import pg from 'pg';
import { applyMigrations, installStatement, loadMigrations, uninstallStatement } from '../../sql/migrations.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

let db: TestDatabase;
let c: pg.Client;
beforeAll(async () => {
  db = await createTestDatabase('mig');
  c = new pg.Client({ connectionString: db.url });
  await c.connect();
});
afterAll(async () => {
  await c.end();
  await db.drop();
});

const q = (sql: string) => c.query(sql);

test('applyMigrations applies every file once, in one transaction, and records versions', async () => {
  const all = loadMigrations().map((m) => m.version);
  expect(all).toEqual([1, 2, 3, 4, 5]);
  expect(await applyMigrations(q)).toEqual(all);
  expect(await applyMigrations(q)).toEqual([]);
  const { rows } = await c.query('SELECT version FROM winnow.schema_migrations ORDER BY version');
  expect(rows.map((r) => r.version)).toEqual(all);
  // Storage is a float4 array: 4 bytes per dimension + header (2068 stored for 512 dims; pgvector: 2056).
  await c.query(`CREATE TEMP TABLE sz AS SELECT array_fill(1::real, ARRAY[512])::vector AS v`);
  const size = await c.query(`SELECT pg_column_size(v) AS s, format_type('vector'::regtype, 3) AS f FROM sz`);
  expect(size.rows[0]).toEqual({ s: 2068, f: 'vector(3)' });
  await c.query('DROP TABLE sz');
});

test('a failing migration leaves nothing behind', async () => {
  await c.query(uninstallStatement(false, true));
  await c.query('CREATE SCHEMA blocker; CREATE FUNCTION public.hamming_distance(a bit, b bit) RETURNS float8 LANGUAGE sql AS $$ SELECT 0::float8 $$');
  await expect(applyMigrations(q)).rejects.toThrow(/already exists/);
  const { rows } = await c.query(`SELECT to_regtype('vector') AS t, to_regclass('winnow.schema_migrations') AS m`);
  expect(rows[0]).toEqual({ t: null, m: null });
  await c.query('DROP FUNCTION public.hamming_distance(bit, bit); DROP SCHEMA blocker');
});

test('install/uninstall statements: errors and notices as for extensions', async () => {
  await c.query(installStatement(false));
  await expect(c.query(installStatement(false))).rejects.toMatchObject({ code: '42710', message: 'extension "vector" already exists' });
  await c.query(installStatement(true));
  await c.query('CREATE TABLE t (e vector(3))');
  await expect(c.query(uninstallStatement(false, false))).rejects.toMatchObject({ code: '2BP01', message: 'cannot drop extension vector because other objects depend on it' });
  await c.query(uninstallStatement(false, true));
  await expect(c.query(uninstallStatement(false, false))).rejects.toMatchObject({ code: '42704', message: 'extension "vector" does not exist' });
  await c.query(uninstallStatement(true, false));
  const { rows } = await c.query(`SELECT count(*)::int AS n FROM pg_proc WHERE proname IN ('vector_typmod_in', 'l2_distance', 'vector_combine', 'hamming_distance')`);
  expect(rows[0].n).toBe(0);
  await c.query(installStatement(false));
  const r = await c.query(`SELECT '{1,2}'::vector <-> '{2,3}' AS d`);
  expect(r.rows[0].d).toBeCloseTo(Math.SQRT2, 12);
  // Function bodies name their own schema: a search_path without it changes nothing.
  await c.query('SET search_path TO pg_catalog');
  const s = await c.query(`SELECT public.l2_normalize('{3,4}'::public.vector)::text AS n, public.vector_spherical_distance('{1,0}', '{0,1}') AS d,
    public.avg(v)::text AS a FROM (VALUES ('{1,2}'::public.halfvec)) t(v)`);
  expect(s.rows[0]).toEqual({ n: '{0.6,0.8}', d: 0.5, a: '{1,2}' });
  await c.query('RESET search_path');
});
