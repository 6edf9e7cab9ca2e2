// The index follows the table's lifecycle: TRUNCATE empties it, DROP TABLE removes it (catalog row,
// snapshot files, and the slot with the last index), INCLUDE columns are mirrored through build,
// inserts/updates/deletes/truncate and a restart from the snapshot, a second session sees builds in
// winnow.index_progress, and the manager reports replication lag without a session.
import { afterAll, beforeAll, expect, test } from 'vitest';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { IndexManager } from '../../sync/index-manager.ts';
import { lsnToBigInt } from '../../sync/pgoutput.ts';
import { applyMigrations } from '../../sql/migrations.ts';
import { createTestDatabase } from '../support/db.ts';
import { createLogger } from '../../server/log.ts';
import { plannerHarness, fillTable, randomVector, prng, type PlannerHarness } from '../planner/helpers.ts';

const DIM = 8;
let h: PlannerHarness;
let c: pg.Client; // through Winnow
let d: pg.Client; // straight to Postgres
let dataDir: string;

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'winnow-lifecycle-'));
  h = await plannerHarness({ dataDir, snapshotIntervalMs: 100 });
  c = await h.client();
  d = await h.direct();
  await c.query('CREATE EXTENSION vector');
});

afterAll(async () => {
  await c?.end();
  await d?.end();
  await h?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const db = () => h.mgr.forDatabase(h.db.user, h.db.database);
const slots = async () => Number((await d.query(`SELECT count(*) FROM pg_replication_slots WHERE database = current_database()`)).rows[0].count);
/** Waits until everything committed so far is applied, then lists the index's ids (exact search over all of it). */
const ids = async (table: string) => {
  const x = await db();
  await x.waitFor(await x.currentLsn());
  const li = [...x.indexes.values()].find((i) => i.meta.table === table)!;
  if (li.index.size === 0) return [];
  const r = li.index.search(new Float32Array(DIM).fill(0.5), { k: li.index.size, nprobe: 100000 });
  return Array.from(r.ids, Number).filter((i) => i >= 0).sort((a, b) => a - b);
};
async function until(cond: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('TRUNCATE empties the index (also inside a transaction with inserts after it)', async () => {
  await c.query(`CREATE TABLE t1 (id bigint PRIMARY KEY, cat int NOT NULL, v vector(${DIM}))`);
  await fillTable(d, 't1', 300, DIM, 2);
  await c.query('CREATE INDEX t1_v ON t1 USING winnow (v vector_l2_ops)');
  expect((await ids('t1')).length).toBe(300);
  await d.query('TRUNCATE t1');
  expect(await ids('t1')).toEqual([]);
  const li = (await db()).indexes.get('public.t1_v')!;
  expect(li.index.size).toBe(0);
  await d.query('BEGIN');
  await fillTable(d, 't1', 5, DIM, 3, 1000);
  await d.query('TRUNCATE t1');
  await fillTable(d, 't1', 3, DIM, 4, 2000);
  await d.query('COMMIT');
  expect(await ids('t1')).toEqual([2000, 2001, 2002]);
  expect(li.index.size).toBe(3);
});

test('DROP TABLE removes the catalog row, the in-memory index, its snapshot files and (last index) the slot', async () => {
  const mgrDb = await db();
  await until(() => readdirSync(path.join(dataDir, h.db.database), { recursive: true }).map(String).some((f) => f.includes('t1_v') && f.endsWith('state.json')));
  await d.query('DROP TABLE t1');
  // No pgoutput message for DROP TABLE: the poller notices the relid is gone.
  await until(async () => (await slots()) === 0);
  expect(mgrDb.indexes.has('public.t1_v')).toBe(false);
  expect((await d.query(`SELECT count(*)::int AS n FROM winnow.indexes`)).rows[0].n).toBe(0);
  expect(existsSync(path.join(dataDir, h.db.database, 'public.t1_v'))).toBe(false);
  await until(async () => (await d.query(`SELECT count(*)::int AS n FROM pg_publication WHERE pubname = 'winnow_indexed'`)).rows[0].n === 0);

  // Two tables, one dropped: that index goes, the slot stays for the other; the same index name
  // can be reused at once (before the poller noticed the drop).
  await c.query(`CREATE TABLE t2 (id bigint PRIMARY KEY, cat int NOT NULL, v vector(${DIM}))`);
  await c.query(`CREATE TABLE t3 (id bigint PRIMARY KEY, cat int NOT NULL, v vector(${DIM}))`);
  await fillTable(d, 't2', 50, DIM, 5);
  await fillTable(d, 't3', 60, DIM, 6);
  await c.query('CREATE INDEX t2_v ON t2 USING winnow (v vector_l2_ops)');
  await c.query('CREATE INDEX t3_v ON t3 USING winnow (v vector_l2_ops)');
  await c.query('DROP TABLE t2');
  await c.query(`CREATE TABLE t2 (id bigint PRIMARY KEY, cat int NOT NULL, v vector(${DIM}))`);
  await fillTable(d, 't2', 7, DIM, 7);
  await c.query('CREATE INDEX t2_v ON t2 USING winnow (v vector_l2_ops)');
  expect((await ids('t2')).length).toBe(7);
  await c.query('DROP TABLE t2');
  await until(() => !mgrDb.indexes.has('public.t2_v'));
  expect(await slots()).toBe(1);
  expect((await d.query(`SELECT name FROM winnow.indexes`)).rows).toEqual([{ name: 't3_v' }]);
  expect((await ids('t3')).length).toBe(60);
  await c.query('DROP TABLE t3');
  await until(async () => (await slots()) === 0);
});

test('a table dropped while Winnow was not running: at start its index is forgotten and the slot dropped', async () => {
  const dir2 = mkdtempSync(path.join(tmpdir(), 'winnow-lifecycle-down-'));
  const conn = (user: string, database: string) => ({ host: h.db.host, port: h.db.port, user, database });
  const other = await createTestDatabase('down');
  const o = new pg.Client({ host: other.host, port: other.port, user: other.user, database: other.database });
  await o.connect();
  try {
    await applyMigrations((q) => o.query(q));
    await o.query(`CREATE TABLE gone (id bigint PRIMARY KEY, v vector(${DIM}))`);
    await o.query(`INSERT INTO gone SELECT g, '{1,2,3,4,5,6,7,8}' FROM generate_series(1, 20) g`);
    const oid = (await o.query(`SELECT 'gone'::regclass::oid::int AS oid`)).rows[0].oid;
    await o.query(`INSERT INTO winnow.indexes (name, schema_name, table_name, relid, column_name, key_column, metric, access_method, dim)
      VALUES ('gone_v', 'public', 'gone', ${oid}, 'v', 'id', 'l2', 'winnow', ${DIM})`);
    let mgr = new IndexManager({ connection: conn, log: createLogger('silent'), pollIntervalMs: 100, dataDir: dir2 });
    const db1 = await mgr.forDatabase(other.user, other.database);
    expect(db1.indexes.get('public.gone_v')!.index.size).toBe(20);
    await mgr.close();
    expect(existsSync(path.join(dir2, other.database, 'public.gone_v', 'state.json'))).toBe(true);
    await o.query('DROP TABLE gone');
    mgr = new IndexManager({ connection: conn, log: createLogger('silent'), pollIntervalMs: 100, dataDir: dir2 });
    const db2 = await mgr.forDatabase(other.user, other.database);
    expect(db2.indexes.size).toBe(0);
    expect((await o.query(`SELECT count(*)::int AS n FROM winnow.indexes`)).rows[0].n).toBe(0);
    expect((await o.query(`SELECT count(*)::int AS n FROM pg_replication_slots WHERE database = current_database()`)).rows[0].n).toBe(0);
    expect(existsSync(path.join(dir2, other.database, 'public.gone_v'))).toBe(false);
    await mgr.close();
  } finally {
    await o.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database()`).catch(() => {});
    await o.end();
    await other.drop();
    rmSync(dir2, { recursive: true, force: true });
  }
});

test('INCLUDE columns are mirrored: build, insert/update/include-only update/delete/truncate, restart from snapshot', async () => {
  await c.query(`CREATE TABLE p (id bigint PRIMARY KEY, category text, price numeric, qty int4, big int8, ok boolean, v vector(${DIM}))`);
  const rnd = prng(9);
  for (let i = 1; i <= 200; i++) {
    await d.query(`INSERT INTO p VALUES ($1, $2, $3, $4, $5, $6, $7)`, [i, ['a', 'b', 'c'][i % 3], (i * 1.25).toFixed(2), i % 7, 10_000_000_000 + i, i % 2 === 0, randomVector(DIM, rnd).arr]);
  }
  await d.query(`INSERT INTO p VALUES (201, NULL, NULL, NULL, NULL, NULL, '${randomVector(DIM, rnd).arr}')`);
  await d.query(`INSERT INTO p VALUES (202, 'x', 1, 1, 1, true, NULL)`); // no vector: not indexed
  await c.query('CREATE INDEX p_v ON p USING winnow (v vector_cosine_ops) INCLUDE (category, price, qty, big, ok)');
  const meta = await d.query(`SELECT include_columns FROM winnow.indexes WHERE name = 'p_v'`);
  expect(meta.rows[0].include_columns).toEqual([
    { name: 'category', type: 'text' }, { name: 'price', type: 'numeric' }, { name: 'qty', type: 'int4' }, { name: 'big', type: 'int8' }, { name: 'ok', type: 'bool' },
  ]);
  const def = await d.query(`SELECT indexdef FROM pg_indexes WHERE indexname = 'p_v'`);
  expect(def.rows[0].indexdef).toContain('INCLUDE (category, price, qty, big, ok)');
  let inc = (await db()).indexes.get('public.p_v')!.includes!;
  expect(inc.columns).toEqual(['category', 'price', 'qty', 'big', 'ok']);
  expect(inc.typeOf('price')).toBe('numeric');
  expect(inc.size).toBe(201);
  expect(inc.value(7n, 'category')).toBe('b');
  expect(inc.value(7n, 'price')).toBe(8.75);
  expect(inc.value(7n, 'big')).toBe(10_000_000_007n);
  expect(inc.value(7n, 'ok')).toBe(false);
  expect(inc.value(201n, 'category')).toBe(null);
  expect(inc.value(202n, 'category')).toBeUndefined();

  // Changes from another connection; the next vector query through Winnow waits for them (read-your-writes).
  await d.query(`INSERT INTO p VALUES (300, 'new', 99.5, 3, 5, true, '${randomVector(DIM, rnd).arr}')`);
  await d.query(`UPDATE p SET price = 12.5, category = 'z' WHERE id = 8`); // INCLUDE columns only
  await d.query(`UPDATE p SET v = '${randomVector(DIM, rnd).arr}', qty = 42 WHERE id = 9`);
  await d.query(`UPDATE p SET id = 1009 WHERE id = 10`); // key change
  await d.query(`DELETE FROM p WHERE id = 11`);
  await d.query(`UPDATE p SET v = '${randomVector(DIM, rnd).arr}' WHERE id = 202`); // gets a vector: now indexed
  await d.query(`BEGIN; UPDATE p SET category = 'rolled back' WHERE id = 12; ROLLBACK`);
  await ids('p');
  const check = async () => {
    await ids('p'); // everything committed so far is applied
    const st = (await db()).indexes.get('public.p_v')!;
    const s = st.includes!;
    const rows = (await d.query(`SELECT id::text, category, price::float8 AS price, qty, big::text, ok FROM p WHERE v IS NOT NULL ORDER BY p.id`)).rows;
    expect(s.size).toBe(rows.length);
    expect(st.index.size).toBe(rows.length);
    for (const r of rows) {
      const id = BigInt(r.id);
      expect([s.value(id, 'category'), s.value(id, 'price'), s.value(id, 'qty'), s.value(id, 'big'), s.value(id, 'ok')])
        .toEqual([r.category, r.price, r.qty, r.big === null ? null : BigInt(r.big), r.ok]);
    }
    expect(Array.from(s.matching((g) => g('category') === 'a' && (g('qty') as number) > 3)))
      .toEqual(rows.filter((r) => r.category === 'a' && r.qty > 3).map((r) => BigInt(r.id)));
  };
  await check();
  inc = (await db()).indexes.get('public.p_v')!.includes!;
  expect(inc.value(8n, 'category')).toBe('z');
  expect(inc.value(10n, 'category')).toBeUndefined();
  expect(inc.value(1009n, 'category')).toBe('b');
  expect(inc.value(202n, 'category')).toBe('x');

  // Restart: a new manager over the same data directory loads the snapshot (index + INCLUDE values).
  await until(async () => {
    const x = (await db()).indexes.get('public.p_v')!;
    return x.unsaved === 0 && x.savedLsn > 0n;
  });
  // The first manager stays paused while the second one runs: both read the same replication slot,
  // and the first would save a snapshot with the change and advance the slot past it.
  await (await db()).exclusive(async () => {
    await d.query(`UPDATE p SET category = 'after snapshot' WHERE id = 13`);
    // (A copy of the data directory: two managers must not write the same snapshot files.)
    const dataDir2 = dataDir + '-copy';
    cpSync(dataDir, dataDir2, { recursive: true });
    const mgr2 = new IndexManager({ connection: (user, database) => ({ host: h.db.host, port: h.db.port, user, database }), log: createLogger('silent'), pollIntervalMs: 100, dataDir: dataDir2 });
    try {
      const db2 = await mgr2.forDatabase(h.db.user, h.db.database);
      const li2 = db2.indexes.get('public.p_v')!;
      expect(li2.origin).toBe('snapshot');
      await db2.waitFor(await db2.currentLsn());
      expect(li2.includes!.value(13n, 'category')).toBe('after snapshot');
      expect(li2.includes!.value(8n, 'price')).toBe(12.5);
      expect(li2.includes!.size).toBe(inc.size);
    } finally {
      await mgr2.close();
      rmSync(dataDir2, { recursive: true, force: true });
    }
  });
  await d.query('TRUNCATE p');
  await ids('p');
  expect((await db()).indexes.get('public.p_v')!.includes!.size).toBe(0);
  await d.query(`INSERT INTO p VALUES (1, 'again', 1, 1, 1, true, '${randomVector(DIM, rnd).arr}')`);
  await check();

  // Unsupported INCLUDE types and unknown columns are refused; nothing is created.
  await c.query('ALTER TABLE p ADD COLUMN meta jsonb');
  await expect(c.query('CREATE INDEX p_bad ON p USING winnow (v vector_l2_ops) INCLUDE (meta)')).rejects.toThrow(/type jsonb/);
  await expect(c.query('CREATE INDEX p_bad ON p USING winnow (v vector_l2_ops) INCLUDE (nope)')).rejects.toThrow(/column "nope" does not exist/);
  await expect(c.query('CREATE INDEX p_bad ON p USING hnsw (v vector_l2_ops) INCLUDE (qty)')).rejects.toThrow('access method "hnsw" does not support included columns');
  expect((await d.query(`SELECT count(*)::int AS n FROM pg_indexes WHERE indexname = 'p_bad'`)).rows[0].n).toBe(0);
});

test('winnow.index_progress shows a running build to another session; the row goes when it ends', async () => {
  await c.query(`CREATE TABLE big (id bigint PRIMARY KEY, cat int NOT NULL, v vector(32))`);
  await d.query(`INSERT INTO big SELECT g, g % 10, (SELECT array_agg(random()::real) FROM generate_series(1, 32) WHERE g > 0)::vector FROM generate_series(1, 60000) g`);
  const seen: Record<string, unknown>[] = [];
  let done = false;
  const build = c.query('CREATE INDEX big_v ON big USING winnow (v vector_l2_ops)').finally(() => { done = true; });
  const watcher = await h.client();
  while (!done) {
    const r = await watcher.query(`SELECT pid, datname, relid::regclass::text AS rel, index_relid::regclass::text AS idx, command, phase, tuples_total::int, tuples_done::int, blocks_total::int, blocks_done::int FROM winnow.index_progress`);
    seen.push(...r.rows);
    await new Promise((res) => setTimeout(res, 100));
  }
  await build;
  expect(seen.length).toBeGreaterThan(0);
  for (const r of seen) {
    expect(r).toMatchObject({ datname: h.db.database, rel: 'big', idx: 'big_v', command: 'CREATE INDEX', tuples_total: 60000 });
    expect(['scanning table', 'training']).toContain(r.phase);
    expect(r.tuples_done as number).toBeLessThanOrEqual(60000);
    expect(r.blocks_total as number).toBeGreaterThan(0);
  }
  console.log(`index_progress rows seen during the build: ${seen.length}; phases ${[...new Set(seen.map((r) => r.phase))].join(', ')}; tuples_done ${seen.map((r) => r.tuples_done).join(' ')}`);
  expect((await watcher.query(`SELECT count(*)::int AS n FROM winnow.index_progress`)).rows[0].n).toBe(0);
  await watcher.end();
});

test('replication lag without a session: IndexManager.status()', async () => {
  const [st] = await h.mgr.status();
  expect(st.snapshotErrors).toBe(0);
  expect(st.database).toBe(h.db.database);
  expect(st.indexes).toBeGreaterThan(0);
  expect(st.lastError).toBe(null);
  expect(st.lagBytes).toBeGreaterThanOrEqual(0);
  // Lag = WAL written − WAL applied; after waiting for an LSN the applied position is at least there.
  const x = await db();
  await d.query(`INSERT INTO big SELECT g, 0, array_fill(0.5::real, ARRAY[32])::real[]::vector FROM generate_series(100001, 102000) g`);
  const target = await x.currentLsn();
  const lagged = (await h.mgr.status())[0];
  // (While a poll runs, walLsn is the position that poll decodes up to.)
  expect(lagged.lagBytes).toBe(Math.max(0, Number(lsnToBigInt(lagged.walLsn) - lsnToBigInt(lagged.appliedLsn))));
  await x.waitFor(target);
  const after = (await h.mgr.status())[0];
  expect(lsnToBigInt(after.appliedLsn)).toBeGreaterThanOrEqual(target);
  expect(after.lagBytes).toBe(Math.max(0, Number(lsnToBigInt(after.walLsn) - lsnToBigInt(after.appliedLsn))));
  console.log(`status(): lag ${lagged.lagBytes} bytes right after a 2,000-row insert, ${after.lagBytes} bytes after waiting; ${JSON.stringify(after)}`);
});
