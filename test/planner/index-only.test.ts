// Answering prepared vector queries from the index alone (issue 5's fast path): the bytes a client
// receives equal those Postgres sends for the same statement, in text and binary, through pg and
// postgres.js; and the fast path is not taken when it would be wrong (row-level security, a role
// without SELECT, this session's uncommitted writes), while the session's own commits are seen.
import { afterAll, beforeAll, expect, test } from 'vitest';
import pg from 'pg';
import postgres from 'postgres';
import { plannerStats } from '../../sql/planner/session.ts';
import { float8Text } from '../../sql/planner/index-only.ts';
import { plannerClients, closePlannerClients, fillTable, randomVector, prng, type PlannerHarness } from './helpers.ts';

const DIM = 16;
let h: PlannerHarness;
let c: pg.Client; // through Winnow
let d: pg.Client; // straight to Postgres

beforeAll(async () => {
  ({ h, c, d } = await plannerClients());
  await c.query(`CREATE TABLE items (id bigint PRIMARY KEY, cat int NOT NULL, v vector(${DIM}))`);
  await c.query(`CREATE TABLE small (id int PRIMARY KEY, v vector(${DIM}))`);
  await fillTable(d, 'items', 3000, DIM, 3);
  await d.query(`INSERT INTO small SELECT id::int, v FROM items WHERE id <= 500`);
  await c.query('CREATE INDEX ON items USING hnsw (v vector_cosine_ops)');
  await c.query('CREATE INDEX ON small USING winnow (v vector_l2_ops)');
});

afterAll(async () => {
  await closePlannerClients({ h, c, d });
});

const KNN = 'SELECT id, v <=> $1 AS d FROM items ORDER BY v <=> $1 LIMIT 10';
/** The same query with a column the index does not hold: rows come from Postgres. */
const KNN_VIA_POSTGRES = 'SELECT id, v <=> $1 AS d, cat FROM items ORDER BY v <=> $1 LIMIT 10';

/** pg's `binary: true` (all result columns in binary), missing from its typings. */
function binary(client: pg.Client, q: { name?: string; text: string; values: unknown[] }): Promise<pg.QueryArrayResult> {
  return client.query({ ...q, binary: true, rowMode: 'array' } as pg.QueryArrayConfig);
}

test('float8Text writes what float8out writes', async () => {
  const xs = [0, -0, 1, -1, 0.1, 1 / 3, 1e-4, 9.99e-5, 1.5e-5, 1e-7, 123456789012345, 1e15, 1.5e15, 2 ** 60, 0.30000001192092896, Math.fround(0.7071067690849304), Infinity, -Infinity, NaN, 5e-324, 1.7976931348623157e308];
  const r = await d.query(`SELECT x::text AS t FROM unnest($1::float8[]) WITH ORDINALITY AS u(x, i) ORDER BY i`, [`{${xs.map((x) => (Number.isNaN(x) ? 'NaN' : Object.is(x, -0) ? '-0' : Number.isFinite(x) ? x.toString() : x > 0 ? 'Infinity' : '-Infinity')).join(',')}}`]);
  expect(xs.map(float8Text)).toEqual(r.rows.map((x) => x.t));
});

test('a named prepared statement is answered from the index alone after its first run, with the same bytes as through Postgres', async () => {
  const rnd = prng(5);
  for (let i = 0; i < 20; i++) {
    const q = randomVector(DIM, rnd).pgv;
    const before = plannerStats.indexOnly;
    const fast = await c.query({ name: 'knn', text: KNN, values: [q], rowMode: 'array' });
    const slow = await c.query({ name: 'knn_pg', text: KNN_VIA_POSTGRES, values: [q], rowMode: 'array' });
    if (i > 0) expect(plannerStats.indexOnly - before).toBe(1);
    expect(fast.rows).toEqual(slow.rows.map((r) => r.slice(0, 2)));
    expect(fast.fields.map((f) => [f.name, f.dataTypeID, f.tableID, f.columnID, f.dataTypeSize, f.dataTypeModifier]))
      .toEqual(slow.fields.slice(0, 2).map((f) => [f.name, f.dataTypeID, f.tableID, f.columnID, f.dataTypeSize, f.dataTypeModifier]));
    expect(fast.rowCount).toBe(10);
  }
  // Binary results (pg's `binary: true` asks for binary columns) and an int4 key on an L2 index.
  const bq = randomVector(DIM, rnd);
  for (let i = 0; i < 2; i++) {
    const fast = await binary(c, { name: 'bin', text: 'SELECT s.id, s.v <-> $1 FROM small s ORDER BY s.v <-> $1 LIMIT 7', values: [bq.pgv] });
    const exact = await binary(d, { text: `SELECT id, v <-> $1::vector FROM small ORDER BY v <-> $1::vector LIMIT 7`, values: [bq.arr] });
    expect(fast.rows.map((r) => r[0])).toEqual(exact.rows.map((r) => r[0]));
    fast.rows.forEach((r, j) => expect(r[1]).toBeCloseTo(exact.rows[j][1], 5));
    expect(fast.fields.map((f) => [f.name, f.dataTypeID, f.format])).toEqual([['id', 23, 'binary'], ['?column?', 701, 'binary']]);
  }
});

test('postgres.js (named statements, cursors over the unnamed portal) gets the same rows', async () => {
  const sql = postgres({ ...h.conn, max: 1, onnotice: () => {} });
  try {
    const rq = randomVector(DIM, prng(6));
    const q = rq.pgv;
    const exact = await d.query(`SELECT id::text, v <=> '${rq.arr}' AS d FROM items ORDER BY v <=> '${rq.arr}' LIMIT 10`);
    const before = plannerStats.indexOnly;
    for (let i = 0; i < 3; i++) {
      const rows = await sql`SELECT id, v <=> ${q}::vector AS d FROM items ORDER BY v <=> ${q}::vector LIMIT 10`;
      expect(rows.map((r) => String(r.id))).toEqual(exact.rows.map((r) => r.id));
    }
    expect(plannerStats.indexOnly - before).toBeGreaterThanOrEqual(2);
    // A cursor fetches 3 rows per Execute: PortalSuspended between them.
    const got: string[] = [];
    await sql`SELECT id, v <=> ${q}::vector AS d FROM items ORDER BY v <=> ${q}::vector LIMIT 10`.cursor(3, (rows) => {
      got.push(...rows.map((r) => String(r.id)));
    });
    expect(got).toEqual(exact.rows.map((r) => r.id));
  } finally {
    await sql.end();
  }
});

test("the session's own committed writes are seen at once; uncommitted ones by its own queries only", async () => {
  const q = randomVector(DIM, prng(7));
  const run = () => c.query({ name: 'knn', text: KNN, values: [q.pgv] }).then((r) => r.rows.map((x) => String(x.id)));
  await run();
  // Through the extended protocol (a parameterised INSERT), then the prepared vector query.
  await c.query('INSERT INTO items VALUES ($1, 1, $2)', [900001, q.pgv]);
  expect((await run())[0]).toBe('900001');
  await c.query('BEGIN');
  await c.query('DELETE FROM items WHERE id = 900001');
  const before = plannerStats.indexOnly;
  expect(await run()).not.toContain('900001');
  expect(plannerStats.indexOnly).toBe(before);
  await c.query('ROLLBACK');
  expect((await run())[0]).toBe('900001');
  await c.query('DELETE FROM items WHERE id = 900001');
  expect(await run()).not.toContain('900001');
});

test('row-level security and missing privileges keep queries on the Postgres path', async () => {
  const role = `ro_${h.db.database}`;
  await c.query(`CREATE ROLE ${role} LOGIN`);
  const r = new pg.Client({ ...h.conn, user: role });
  await r.connect();
  try {
    const rq = randomVector(DIM, prng(8));
    const q = rq.pgv;
    await expect(r.query({ name: 'k', text: KNN, values: [q] })).rejects.toMatchObject({ code: '42501' });
    await expect(r.query({ name: 'k', text: KNN, values: [q] })).rejects.toMatchObject({ code: '42501' });
    await c.query(`GRANT SELECT ON items TO ${role}`);
    await c.query('ALTER TABLE items ENABLE ROW LEVEL SECURITY');
    await c.query(`CREATE POLICY cat2 ON items FOR SELECT TO ${role} USING (cat = 2)`);
    const before = plannerStats.indexOnly;
    for (let i = 0; i < 3; i++) {
      const res = await r.query({ name: 'k', text: KNN, values: [q] });
      const exact = await d.query(`SELECT id::text FROM items WHERE cat = 2 ORDER BY v <=> '${rq.arr}' LIMIT 10`);
      expect(res.rows.map((x) => String(x.id))).toEqual(exact.rows.map((x) => x.id));
    }
    expect(plannerStats.indexOnly).toBe(before);
    await c.query('DROP POLICY cat2 ON items');
    await c.query('ALTER TABLE items DISABLE ROW LEVEL SECURITY');
    await r.query({ name: 'k', text: KNN, values: [q] });
    const res = await r.query({ name: 'k', text: KNN, values: [q] });
    expect(plannerStats.indexOnly).toBeGreaterThan(before);
    expect(res.rows.length).toBe(10);
    await c.query(`REVOKE SELECT ON items FROM ${role}`);
    await expect(r.query({ name: 'k', text: KNN, values: [q] })).rejects.toMatchObject({ code: '42501' });
  } finally {
    await r.end();
    await d.query(`DROP ROLE ${role}`);
  }
});

test('prepared statements with WHERE are planned at Bind (pre/post through the session, in from INCLUDE columns) and return min(k, matches)', async () => {
  await c.query(`CREATE TABLE tagged (id bigint PRIMARY KEY, cat int NOT NULL, label text, v vector(${DIM}))`);
  await d.query(`INSERT INTO tagged SELECT id, cat, 'l' || (id % 7), v FROM items`);
  await c.query('CREATE INDEX tagged_v ON tagged USING winnow (v vector_cosine_ops) INCLUDE (label)');
  const rnd = prng(9);
  const cases: { text: string; values: (q: string) => unknown[]; exact: (arr: string) => string }[] = [
    { text: 'SELECT id FROM tagged WHERE cat = $2 ORDER BY v <=> $1 LIMIT 10', values: (q) => [q, 3], exact: (a) => `SELECT id::text FROM tagged WHERE cat = 3 ORDER BY v <=> '${a}', id LIMIT 10` },
    { text: 'SELECT id, v <=> $1 AS d FROM tagged WHERE cat <> $2 ORDER BY v <=> $1 LIMIT 10', values: (q) => [q, 3], exact: (a) => `SELECT id::text FROM tagged WHERE cat <> 3 ORDER BY v <=> '${a}', id LIMIT 10` },
    { text: 'SELECT t.id FROM tagged t WHERE t.label = $2 ORDER BY t.v <=> $1 LIMIT 10', values: (q) => [q, 'l4'], exact: (a) => `SELECT id::text FROM tagged WHERE label = 'l4' ORDER BY v <=> '${a}', id LIMIT 10` },
    { text: "SELECT id FROM tagged WHERE label IN ('l1', 'l2') AND cat = $2 ORDER BY v <=> $1 LIMIT 10", values: (q) => [q, 77], exact: () => 'SELECT id::text FROM tagged WHERE false' },
  ];
  for (const cs of cases) {
    for (let i = 0; i < 5; i++) {
      const q = randomVector(DIM, rnd);
      const before = plannerStats.nativeSearches;
      const got = await c.query({ name: `f${cases.indexOf(cs)}`, text: cs.text, values: cs.values(q.pgv), rowMode: 'array' });
      expect(plannerStats.nativeSearches).toBeGreaterThan(before);
      const exact = await d.query(cs.exact(q.arr));
      expect(got.rows.map((r) => String(r[0]))).toEqual(exact.rows.map((r) => r.id));
    }
  }
  // pgvector's iterative-scan settings are accepted; Winnow's filtered searches are complete anyway.
  for (const mode of ['off', 'relaxed_order', 'strict_order']) {
    await c.query(`SET hnsw.iterative_scan = ${mode}`);
    const r = await c.query({ name: 'f0', text: cases[0].text, values: cases[0].values(randomVector(DIM, rnd).pgv) });
    expect(r.rows.length).toBe(10);
  }
  await c.query('RESET hnsw.iterative_scan');
  // Filtered searches answered with no Postgres round trip for the ids: the INCLUDE column case.
  const { filterStats } = await import('../../sql/planner/filter.ts');
  const pre = filterStats.preFilterQueries + filterStats.postCheckQueries;
  const inIdx = filterStats.inIndexFilters;
  await c.query({ name: 'f2', text: cases[2].text, values: cases[2].values(randomVector(DIM, rnd).pgv) });
  expect(filterStats.inIndexFilters).toBe(inIdx + 1);
  expect(filterStats.preFilterQueries + filterStats.postCheckQueries).toBe(pre);
});

test('a session whose first message is a Parse that Postgres rejects gets the error and goes on', async () => {
  const fresh = await h.client();
  await expect(fresh.query({ name: 'bad', text: 'SELEC id FROM items', values: [] })).rejects.toMatchObject({ code: '42601' });
  expect((await fresh.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
  await fresh.end();
});

test('the allowed ids of an INCLUDE filter are reused while the mirrored values are unchanged, and never after a change', async () => {
  const { matchingCacheStats } = await import('../../sql/planner/matching-cache.ts');
  const q = randomVector(DIM, prng(10));
  const text = 'SELECT id FROM tagged WHERE label = $2 ORDER BY v <=> $1 LIMIT 5';
  const run = async () => (await c.query({ name: 'lab', text, values: [q.pgv, 'fresh'], rowMode: 'array' })).rows.map((r) => String(r[0]));
  expect(await run()).toEqual([]);
  const hits = matchingCacheStats.hits;
  expect(await run()).toEqual([]);
  expect(matchingCacheStats.hits).toBe(hits + 1);
  // A row takes the label: the next query (same session: read-your-writes) must see it.
  await c.query(`UPDATE tagged SET label = 'fresh' WHERE id = 42`);
  expect(await run()).toEqual(['42']);
  await c.query(`UPDATE tagged SET label = 'l0' WHERE id = 42`);
  expect(await run()).toEqual([]);
});

test('simple-protocol queries are answered from the index alone with the bytes Postgres would send', async () => {
  const rnd = prng(11);
  for (let i = 0; i < 5; i++) {
    const q = randomVector(DIM, rnd).pgv;
    const before = plannerStats.indexOnly;
    const fast = await c.query({ text: `SELECT t.id, v <=> '${q}' AS dist, v <=> '${q}' FROM items t ORDER BY v <=> '${q}' LIMIT 7 OFFSET 2`, rowMode: 'array' });
    expect(plannerStats.indexOnly).toBe(before + 1);
    const slow = await c.query({ text: `SELECT t.id, v <=> '${q}' AS dist, v <=> '${q}', t.cat FROM items t ORDER BY v <=> '${q}' LIMIT 7 OFFSET 2`, rowMode: 'array' });
    expect(plannerStats.indexOnly).toBe(before + 1);
    expect(fast.rows).toEqual(slow.rows.map((r) => r.slice(0, 3)));
    expect(fast.fields.map((f) => [f.name, f.dataTypeID, f.tableID, f.columnID, f.dataTypeSize, f.dataTypeModifier]))
      .toEqual(slow.fields.slice(0, 3).map((f) => [f.name, f.dataTypeID, f.tableID, f.columnID, f.dataTypeSize, f.dataTypeModifier]));
    expect(fast.command).toBe('SELECT');
    expect(fast.rowCount).toBe(7);
  }
});

test('a session that only reads makes no read-your-writes round trip; EXECUTE of a prepared SELECT is a read, of an INSERT a write', async () => {
  const { visibilityStats } = await import('../../sql/planner/visibility.ts');
  const q = randomVector(DIM, prng(12)).pgv;
  await c.query(`PREPARE nn(vector) AS SELECT id FROM items ORDER BY v <=> $1 LIMIT 3`);
  await c.query(`PREPARE ins(bigint, vector) AS INSERT INTO items VALUES ($1, 1, $2)`);
  const round = async () => {
    await c.query(`EXECUTE nn('${q}')`);
    await c.query({ name: 'knn', text: KNN, values: [q] });
    await c.query(`SELECT id FROM items ORDER BY v <=> '${q}' LIMIT 2`);
  };
  await round(); // each path reads the facts once (they are then fresh for FACTS_TTL_MS)
  const before = visibilityStats.lookups;
  for (let i = 0; i < 5; i++) await round();
  expect(visibilityStats.lookups).toBe(before);
  await c.query(`EXECUTE ins(900777, '${q}')`);
  expect((await c.query(`EXECUTE nn('${q}')`)).rows[0].id).toBe('900777');
  expect(visibilityStats.lookups).toBe(before + 1);
  await c.query('DELETE FROM items WHERE id = 900777');
  await c.query('DEALLOCATE nn');
  await c.query('DEALLOCATE ins');
});

test("answers from the index alone are held until the client's Sync, as Postgres holds its output", async () => {
  const { RawConn } = await import('../server/helpers.ts');
  const { serialize } = await import('pg-protocol');
  const raw = await RawConn.startup(h.conn.port, h.conn.user, h.conn.database);
  try {
    const q = randomVector(DIM, prng(13)).pgv;
    const batch = [serialize.bind({ statement: 'held', values: [q] }), serialize.describe({ type: 'P' }), serialize.execute({})];
    raw.write(Buffer.concat([serialize.parse({ name: 'held', text: KNN }), serialize.sync()]));
    await raw.readUntil('Z');
    raw.write(Buffer.concat([...batch, serialize.sync()])); // reads the table's facts once
    await raw.readUntil('Z');
    const before = plannerStats.indexOnly;
    raw.write(Buffer.concat(batch));
    await expect(raw.read(200)).rejects.toThrow('timed out');
    expect(plannerStats.indexOnly).toBe(before + 1);
    raw.write(serialize.sync());
    const got = await raw.readUntil('Z');
    expect(got.map((m) => m.type).join('')).toBe('2T' + 'D'.repeat(10) + 'CZ');
  } finally {
    raw.socket.destroy();
  }
});

/** The statement as Postgres itself takes it: a vector column is a float4[] there ('{…}', no ::vector cast). */
const asStored = (text: string) => text.replace(/'\[([^\]]*)\]'(::vector)?/g, "'{$1}'");

test('a prepared statement whose query vector is a literal (pgbench -M prepared, no parameters) is planned natively', async () => {
  const rnd = prng(17);
  for (let i = 0; i < 5; i++) {
    const q = randomVector(DIM, rnd).pgv;
    const text = `SELECT id, v <=> '${q}' AS d FROM items ORDER BY v <=> '${q}'::vector LIMIT 10`;
    const before = { ...plannerStats };
    const got = await c.query({ name: `lit${i}`, text, rowMode: 'array' });
    const again = await c.query({ name: `lit${i}`, text, rowMode: 'array' });
    expect(plannerStats.nativeSearches - before.nativeSearches).toBe(2);
    expect(plannerStats.indexOnly - before.indexOnly).toBe(1); // the second run, once the statement is described
    // Ids as Postgres's exact answer; distances are the index's refine distances (float4 arithmetic).
    const exact = await d.query({ text: asStored(text), rowMode: 'array' });
    expect(got.rows.map((r) => r[0])).toEqual(exact.rows.map((r) => r[0]));
    got.rows.forEach((r, j) => expect(r[1]).toBeCloseTo(exact.rows[j][1], 6));
    expect(again.rows).toEqual(got.rows);
  }
  // With a parameter in WHERE and the literal in ORDER BY only.
  const q = randomVector(DIM, rnd).pgv;
  const text = `SELECT id FROM items WHERE cat = $1 ORDER BY v <=> '${q}' LIMIT 7`;
  const before = plannerStats.nativeSearches;
  const got = await c.query({ name: 'lit_where', text, values: [2], rowMode: 'array' });
  expect(plannerStats.nativeSearches - before).toBe(1);
  expect(got.rows).toEqual((await d.query({ text: asStored(text), values: [2], rowMode: 'array' })).rows);
  // A literal of the wrong dimension: Postgres's own error, and the session goes on.
  await expect(c.query({ name: 'lit_bad', text: `SELECT id FROM items ORDER BY v <=> '[1,2,3]' LIMIT 3`, rowMode: 'array' })).rejects.toMatchObject({ code: '22000' });
  expect((await c.query('SELECT 1 AS one')).rows[0].one).toBe(1);
});

test("Describe of a planned statement shows the client's parameters only (asyncpg and JDBC count them), as Postgres does", async () => {
  const { RawConn } = await import('../server/helpers.ts');
  const { serialize } = await import('pg-protocol');
  const paramTypes = async (port: number, text: string) => {
    const raw = await RawConn.startup(port, h.conn.user, h.conn.database);
    try {
      raw.write(Buffer.concat([serialize.parse({ name: 'described', text }), serialize.describe({ type: 'S', name: 'described' }), serialize.sync()]));
      const t = (await raw.readUntil('Z')).find((m) => m.type === 't')!;
      return Array.from({ length: t.body.readInt16BE(0) }, (_, i) => t.body.readUInt32BE(2 + 4 * i));
    } finally {
      raw.socket.destroy();
    }
  };
  const vectorOid = Number((await c.query(`SELECT 'vector'::regtype::oid AS o`)).rows[0].o);
  expect(await paramTypes(h.conn.port, KNN)).toEqual([vectorOid]);
  expect(await paramTypes(h.conn.port, 'SELECT id FROM items WHERE cat = $2 ORDER BY v <=> $1 LIMIT $3')).toEqual([vectorOid, 23, 20]);
  // And the statements still run with the client's parameters alone.
  const q = randomVector(DIM, prng(19)).pgv;
  expect((await c.query({ name: 'described2', text: 'SELECT id FROM items WHERE cat = $2 ORDER BY v <=> $1 LIMIT $3', values: [q, 2, 4] })).rowCount).toBe(4);
});
