// Postgres stopped and restarted under load (its own embedded cluster, so the shared one is left
// alone): sessions get Postgres's own error, the index sync reconnects and catches up, and new
// sessions see every change committed while or after it was down.
import { afterAll, expect, test } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedCluster } from '../../server/embedded-postgres.ts';
import { startWinnow, type Winnow } from '../../server/index.ts';
import { createLogger } from '../../server/log.ts';
import { IndexManager } from '../../sync/index-manager.ts';
import { plannerSessionFactory } from '../../sql/planner/session.ts';
import { freePort } from '../support/ports.ts';
import { fillTable, prng, randomVector } from '../planner/helpers.ts';

const DIM = 8;
const dir = mkdtempSync(path.join(tmpdir(), 'winnow-pgr-'));
const log = createLogger(process.env.WINNOW_TEST_LOG ?? 'silent');
let cluster: EmbeddedCluster | null = null;
let w: Winnow | null = null;
let mgr: IndexManager | null = null;

afterAll(async () => {
  await mgr?.close();
  await w?.close();
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('Postgres restarted under load: clear errors, reconnect, catch up', async () => {
  const port = await freePort();
  cluster = await startEmbeddedPostgres({ dataDir: dir, port, password: 'pw', log });
  const conn = { host: '127.0.0.1', port, password: 'pw' };
  mgr = new IndexManager({ connection: (user, database) => ({ ...conn, user, database }), log, pollIntervalMs: 100 });
  w = await startWinnow({ databaseUrl: `postgres://127.0.0.1:${port}/postgres`, port: 0, logger: log, handlerFactory: plannerSessionFactory(mgr) });
  const client = async (through: boolean) => {
    const c = new pg.Client({ host: '127.0.0.1', port: through ? w!.port : port, user: 'postgres', password: 'pw', database: 'postgres' });
    c.on('error', () => {});
    await c.connect();
    return c;
  };
  const c = await client(true);
  await c.query('CREATE EXTENSION vector');
  await c.query(`CREATE TABLE items (id bigint PRIMARY KEY, cat int NOT NULL, v vector(${DIM}))`);
  const d = await client(false);
  await fillTable(d, 'items', 500, DIM, 4);
  await d.end();
  await c.query('CREATE INDEX ON items USING winnow (v vector_l2_ops)');

  // Load through Winnow while Postgres goes down.
  let stop = false;
  const errors: string[] = [];
  const writer = (async () => {
    const wc = await client(true);
    let id = 10_000;
    while (!stop) {
      try {
        await wc.query(`INSERT INTO items VALUES (${id++}, 1, '${randomVector(DIM).pgv}')`);
      } catch (e) {
        errors.push(String((e as Error).message));
        return;
      }
    }
  })();
  await new Promise((r) => setTimeout(r, 300));
  await cluster.stop();
  cluster = null;
  await expect(c.query('SELECT 1')).rejects.toThrow();
  await writer;
  stop = true;
  expect(errors.length).toBe(1);
  expect(errors[0]).toMatch(/terminating connection|Connection terminated|administrator|connection error/);

  cluster = await startEmbeddedPostgres({ dataDir: dir, port, password: 'pw', log });
  const c2 = await client(true);
  const q = randomVector(DIM, prng(3));
  await c2.query(`INSERT INTO items VALUES (99999, 1, '${q.pgv}')`);
  // The first vector query may find the sync still reconnecting: it is answered exactly then.
  const deadline = Date.now() + 15_000;
  let status: Record<string, string> | null = null;
  while (Date.now() < deadline) {
    try {
      status = (await c2.query('SHOW winnow.index_status')).rows[0];
      if (status && Number(status.lag_bytes) === 0) break;
    } catch { /* sync reconnecting */ }
    await new Promise((r) => setTimeout(r, 200));
  }
  const n = Number((await c2.query('SELECT count(*) FROM items')).rows[0].count);
  expect(Number(status!.rows)).toBe(n);
  const top = await c2.query(`SELECT id, v <-> '${q.pgv}' AS d FROM items ORDER BY v <-> '${q.pgv}' LIMIT 1`);
  expect(top.rows[0].id).toBe('99999');
  await c2.end();
  await c.end().catch(() => {});
}, 120_000);
