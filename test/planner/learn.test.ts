// SELECT winnow.learn('index') through a real Winnow: NOTICE progress, the json report, errors,
// queries keep matching Postgres's exact answer afterwards, and the learnt params reach the snapshot.
import { readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import pg from 'pg';
import { harness } from '../server/helpers.ts';
import { createLogger } from '../../server/log.ts';
import { IndexManager } from '../../sync/index-manager.ts';
import { plannerSessionFactory } from '../../sql/planner/session.ts';
import { isLearnCall } from '../../sql/planner/learn.ts';
import { VectorIndex } from '../../native/index.ts';
import { fillTable, randomVector, prng, type PlannerHarness } from './helpers.ts';

const DIM = 16;
const N = 12_000; // above TRAIN_THRESHOLD, so the index is trained (IVF + PQ)
let h: PlannerHarness;
let c: pg.Client; // through Winnow
let d: pg.Client; // straight to Postgres
const dataDir = mkdtempSync(path.join(tmpdir(), 'winnow-learn-'));

async function learnHarness(): Promise<PlannerHarness> {
  let target: { host: string; port: number } | null = null;
  const mgr = new IndexManager({
    connection: (user, database) => ({ ...target!, user, database }),
    log: createLogger(process.env.WINNOW_TEST_LOG ?? 'silent'),
    pollIntervalMs: 100,
    dataDir,
    snapshotIntervalMs: 200,
  });
  const hh = await harness({ handlerFactory: plannerSessionFactory(mgr) });
  target = { host: hh.db.host, port: hh.db.port };
  const close = hh.close;
  return Object.assign(hh, {
    mgr,
    async close() {
      await mgr.close();
      const x = await hh.direct();
      await x.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database()`).catch(() => {});
      await x.end();
      await close();
    },
  });
}

beforeAll(async () => {
  h = await learnHarness();
  c = await h.client();
  d = await h.direct();
  await c.query('CREATE EXTENSION vector');
  await c.query(`CREATE TABLE items (id bigint PRIMARY KEY, cat int NOT NULL, v vector(${DIM}))`);
  await fillTable(d, 'items', N, DIM, 3);
  await c.query(`CREATE INDEX items_v_idx ON items USING winnow (v vector_l2_ops)`);
  await c.query(`CREATE TABLE small (id bigint PRIMARY KEY, cat int NOT NULL, v vector(${DIM}))`);
  await fillTable(d, 'small', 100, DIM, 4);
  await c.query(`CREATE INDEX small_v_idx ON small USING winnow (v vector_l2_ops)`);
}, 180_000);

afterAll(async () => {
  await c?.end();
  await d?.end();
  await h?.close();
});

test('SELECT winnow.learn(index) streams NOTICE progress and answers the json report', async () => {
  const notices: string[] = [];
  const onNotice = (n: { message?: string }) => notices.push(n.message ?? '');
  c.on('notice', onNotice);
  const r = await c.query(`SELECT winnow.learn('items_v_idx', '{"sampleQueries": 4000, "neighbors": 20, "learningRates": [0.0001, 0.001]}')`);
  c.off('notice', onNotice);
  expect(r.fields.map((f) => f.name)).toEqual(['learn']);
  expect(r.rows).toHaveLength(1);
  const rep = r.rows[0].learn; // json column: parsed by pg
  expect(rep.trainQueries + rep.validationQueries).toBe(4000);
  expect(rep.sweep.map((s: { learningRate: number }) => s.learningRate)).toEqual([0.0001, 0.001]);
  expect(rep.validationLossAfter).toBeLessThanOrEqual(rep.validationLossBefore);
  expect(notices[0]).toMatch(/^winnow: learning search parameters of index "items_v_idx" \(12000 rows\)$/);
  expect(notices.some((m) => /learning "items_v_idx": neighbors: \d+ of 4000/.test(m))).toBe(true);
  expect(notices.some((m) => /learning "items_v_idx": train lr=0\.001: \d+ of \d+ loss/.test(m))).toBe(true);
  expect(notices.some((m) => /learning "items_v_idx": validate lr=0\.0001: 1 of 2 loss/.test(m))).toBe(true);
  expect(notices.at(-1)).toMatch(rep.installed ? /now searches with learnt parameters/ : /were not installed/);

  // Vector queries through the index still match Postgres's exact answer.
  const rnd = prng(9);
  let same = 0;
  for (let i = 0; i < 20; i++) {
    const q = randomVector(DIM, rnd);
    const a = await c.query(`SELECT id::text FROM items ORDER BY v <-> '${q.pgv}' LIMIT 5`);
    const b = await d.query(`SELECT id::text FROM items ORDER BY v <-> '${q.arr}', id LIMIT 5`);
    same += a.rows.filter((x) => b.rows.some((y) => y.id === x.id)).length;
  }
  expect(same / 100).toBeGreaterThan(0.9);
}, 120_000);

test('learnt parameters are saved with the snapshot', async () => {
  await c.query(`SELECT winnow.learn('public.items_v_idx', '{"sampleQueries": 2000, "neighbors": 10, "install": "always"}')`);
  const db = await h.mgr.forDatabase(h.conn.user, h.conn.database);
  const li = db.indexes.get(db.key('public', 'items_v_idx'))!;
  const learnt = li.index.getParams('search')!;
  expect(learnt.transform).not.toEqual(li.index.getParams('insert')!.transform);
  const dir = db.snapshotDir(li.meta)!;
  // The snapshot is due once the interval passes; wait for it to include the learnt params.
  const deadline = Date.now() + 20_000;
  let saved: Float32Array | null = null;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 300));
    try {
      JSON.parse(readFileSync(path.join(dir, 'state.json'), 'utf8'));
      const back = await VectorIndex.load(dir);
      saved = back.getParams('search')!.transform;
      if (Buffer.from(saved.buffer).equals(Buffer.from(learnt.transform.buffer))) break;
    } catch {
      // not written yet
    }
  }
  expect(saved && Buffer.from(saved.buffer).equals(Buffer.from(learnt.transform.buffer))).toBe(true);
}, 60_000);

test('errors: unknown index, not a Winnow index, untrained index, bad options, other statements pass through', async () => {
  await expect(c.query(`SELECT winnow.learn('nope_idx')`)).rejects.toMatchObject({ code: '42704', message: 'index "nope_idx" does not exist' });
  await expect(c.query(`SELECT winnow.learn('items_pkey')`)).rejects.toMatchObject({ code: '42809' });
  await expect(c.query(`SELECT winnow.learn('small_v_idx')`)).rejects.toMatchObject({ code: '55000' });
  await expect(c.query(`SELECT winnow.learn('items_v_idx', '[1]')`)).rejects.toMatchObject({ code: '22023' });
  await expect(c.query(`SELECT winnow.learn('items_v_idx', '{"bogus": 1}')`)).rejects.toMatchObject({ code: '22023', message: 'unrecognized winnow.learn option "bogus"' });
  // Not the lone call: Postgres answers (no such function in Postgres).
  await expect(c.query(`SELECT winnow.learn('items_v_idx') FROM items LIMIT 1`)).rejects.toMatchObject({ code: '42883' });
  // The session is still usable.
  expect((await c.query('SELECT 1 AS x')).rows).toEqual([{ x: 1 }]);
});

test('isLearnCall recognises only the lone call', async () => {
  const { loadParser, parseUncached } = await import('../../sql/parse.ts');
  await loadParser();
  const call = (sql: string) => {
    const p = parseUncached(sql);
    return p.ok ? isLearnCall(p.statements[0].stmt) : null;
  };
  expect(call(`SELECT winnow.learn('a')`)).toEqual({ index: 'a', options: null });
  expect(call(`select WINNOW.LEARN('s.a', '{}'::json)`)).toEqual({ index: 's.a', options: '{}' });
  expect(call(`SELECT learn('a')`)).toBeNull();
  expect(call(`SELECT winnow.learn(a)`)).toBeNull();
  expect(call(`SELECT winnow.learn('a'), 1`)).toBeNull();
  expect(call(`SELECT winnow.learn('a') WHERE false`)).toBeNull();
  expect(call(`SELECT winnow.learn('a') UNION SELECT winnow.learn('b')`)).toBeNull();
});
