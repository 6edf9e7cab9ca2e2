// Faults around the index sync, with the real CLI as a child process: kill -9 under a multi-client
// insert/update/delete load then restart (snapshot + replay of what came after it), a clean
// restart, and a corrupted snapshot that is detected and rebuilt from the table.
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { spawnWinnow, type WinnowProcess } from '../support/winnow-process.ts';
import { fillTable, prng, randomVector } from '../planner/helpers.ts';

const DIM = 8;
let db: TestDatabase;
let dataDir: string;
const children: ChildProcess[] = [];

async function serve(): Promise<WinnowProcess> {
  const w = await spawnWinnow(['--database-url', db.url, '-p', '0', '-D', dataDir], { WINNOW_LOG_LEVEL: 'warn', WINNOW_SNAPSHOT_INTERVAL_MS: '200' });
  children.push(w.child);
  return w;
}

async function connect(port: number): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: db.user, database: db.database });
  c.on('error', () => {});
  await c.connect();
  return c;
}
async function direct(): Promise<pg.Client> {
  const c = new pg.Client({ host: db.host, port: db.port, user: db.user, database: db.database });
  c.on('error', () => {});
  await c.connect();
  return c;
}

/** The index's id set and vectors equal the table's: every row at its exact distance, and the same count. */
async function expectIndexEqualsTable(w: pg.Client, d: pg.Client, seed: number) {
  const status = (await w.query('SHOW winnow.index_status')).rows[0];
  const n = Number((await d.query('SELECT count(*) FROM items')).rows[0].count);
  expect(Number(status.rows)).toBe(n);
  const rnd = prng(seed);
  for (let i = 0; i < 2; i++) {
    const q = randomVector(DIM, rnd);
    const a = await w.query(`SELECT id::text, v <-> '${q.pgv}' AS d FROM items ORDER BY v <-> '${q.pgv}' LIMIT 100000`);
    const b = await d.query(`SELECT id::text, v <-> '${q.arr}' AS d FROM items`);
    expect(a.rows.length).toBe(n);
    const exact = new Map(b.rows.map((r) => [r.id, Number(r.d)]));
    for (const r of a.rows) expect(Number(r.d)).toBeCloseTo(exact.get(r.id)!, 4);
  }
  return status;
}

/** Random single- and multi-statement transactions (some rolled back) from several clients. */
function load(clients: pg.Client[], stop: { v: boolean }, seed: number): Promise<void[]> {
  return Promise.all(clients.map(async (c, ci) => {
    const rnd = prng(seed + ci);
    let next = 1_000_000 * (ci + 1);
    while (!stop.v) {
      const op = rnd();
      const id = 1 + Math.floor(rnd() * 1500);
      try {
        if (op < 0.4) await c.query(`INSERT INTO items VALUES (${next++}, 1, '${randomVector(DIM, rnd).arr}')`);
        else if (op < 0.7) await c.query(`UPDATE items SET v = '${randomVector(DIM, rnd).arr}' WHERE id = ${id}`);
        else if (op < 0.85) await c.query(`DELETE FROM items WHERE id = ${id}`);
        else {
          await c.query('BEGIN');
          await c.query(`INSERT INTO items VALUES (${next++}, 2, '${randomVector(DIM, rnd).arr}')`);
          await c.query(`UPDATE items SET v = '${randomVector(DIM, rnd).arr}' WHERE id = ${id + 1}`);
          await c.query(rnd() < 0.5 ? 'COMMIT' : 'ROLLBACK');
        }
      } catch (e) {
        // A session through the killed Winnow is gone (clear error); the others keep going.
        if (/terminated|not queryable|ECONNRESET|closed/i.test(String((e as Error).message))) return;
        await c.query('ROLLBACK').catch(() => {});
        await new Promise((r) => setImmediate(r));
      }
    }
  }));
}

beforeAll(async () => {
  db = await createTestDatabase('sync');
  dataDir = mkdtempSync(path.join(tmpdir(), 'winnow-sync-'));
  const d = await direct();
  await d.end();
});

afterAll(async () => {
  for (const ch of children) if (ch.exitCode === null && ch.signalCode === null) ch.kill('SIGKILL');
  const d = await direct().catch(() => null);
  if (d) {
    await d.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database() AND NOT active`).catch(() => {});
    await d.end();
  }
  await db?.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

test('kill -9 under a multi-client write load, restart: snapshot + replay gives the table exactly; corrupt snapshot is rebuilt', async () => {
  let w = await serve();
  let c = await connect(w.port);
  const d = await direct();
  await c.query('CREATE EXTENSION vector');
  await c.query(`CREATE TABLE items (id bigint PRIMARY KEY, cat int NOT NULL, v vector(${DIM}))`);
  await fillTable(d, 'items', 1500, DIM, 3);
  await c.query('CREATE INDEX items_v ON items USING winnow (v vector_l2_ops)');
  const writers = await Promise.all([direct(), direct(), connect(w.port), connect(w.port)]);
  const stop = { v: false };
  const running = load(writers, stop, 100);
  await new Promise((r) => setTimeout(r, 1500));
  w.child.kill('SIGKILL');
  await w.exited;
  await new Promise((r) => setTimeout(r, 500));
  stop.v = true;
  await running;
  await Promise.all(writers.map((x) => x.end().catch(() => {})));
  await c.end().catch(() => {});
  const files = readdirSync(path.join(dataDir, 'indexes'), { recursive: true }).map(String);
  expect(files.some((f) => f.endsWith('index.winnow'))).toBe(true);

  // Restart: loaded from the snapshot, then replayed from the slot.
  w = await serve();
  c = await connect(w.port);
  const st = await expectIndexEqualsTable(c, d, 5);
  expect(st.origin).toBe('snapshot');
  // More writes, then a clean stop (final snapshot) and restart.
  await d.query(`DELETE FROM items WHERE id % 7 = 0`);
  await d.query(`UPDATE items SET v = v WHERE id % 5 = 0`);
  await expectIndexEqualsTable(c, d, 6);
  await c.end();
  w.child.kill('SIGTERM');
  const code = await w.exited;
  expect(code, w.stderr()).toBe(0);
  w = await serve();
  c = await connect(w.port);
  expect((await expectIndexEqualsTable(c, d, 7)).origin).toBe('snapshot');
  await c.end();
  w.child.kill('SIGTERM');
  await w.exited;

  // Corrupt the snapshot (truncate the index file): detected, rebuilt from the table.
  const file = readdirSync(path.join(dataDir, 'indexes'), { recursive: true }).map(String).find((f) => f.endsWith('index.winnow'))!;
  const full = path.join(dataDir, 'indexes', file);
  truncateSync(full, Math.floor(statSync(full).size / 2));
  await d.query(`INSERT INTO items VALUES (42424242, 1, '${randomVector(DIM, prng(9)).arr}')`);
  w = await serve();
  c = await connect(w.port);
  const st2 = await expectIndexEqualsTable(c, d, 8);
  expect(st2.origin).toMatch(/^rebuilt \(snapshot unreadable/);
  // DROP INDEX: no slot left behind, snapshot removed.
  await c.query('DROP INDEX items_v');
  expect((await d.query(`SELECT count(*)::int AS n FROM pg_replication_slots WHERE database = current_database()`)).rows[0].n).toBe(0);
  expect(readdirSync(path.dirname(path.dirname(full)))).toEqual([]);
  await c.end();
  w.child.kill('SIGTERM');
  await w.exited;
  await d.end();
  void readFileSync;
}, 120_000);
