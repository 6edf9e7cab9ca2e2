// Vector queries inside transaction blocks (sql/planner/transaction.ts): the index answers at READ
// COMMITTED while the transaction has written nothing; after a write, at REPEATABLE READ or
// SERIALIZABLE, Postgres answers exactly, so the transaction sees its own uncommitted rows and its
// own snapshot.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import pg from 'pg';
import { plannerStats } from '../../sql/planner/session.ts';
import { transactionStats } from '../../sql/planner/transaction.ts';
import { plannerClients, closePlannerClients, fillTable, randomVector, prng, type PlannerHarness } from './helpers.ts';

const DIM = 8;
let h: PlannerHarness;
let c: pg.Client;
let d: pg.Client;
let s: pg.Client;
const rnd = prng(11);

beforeAll(async () => {
  ({ h, c, d } = await plannerClients());
  await c.query(`CREATE TABLE items (id bigint PRIMARY KEY, cat int NOT NULL, v vector(${DIM}))`);
  await fillTable(d, 'items', 3000, DIM, 9);
  await c.query('CREATE INDEX ON items USING winnow (v vector_l2_ops)');
  await d.query(`CREATE FUNCTION add_item(i bigint, q text) RETURNS int LANGUAGE sql AS $$ INSERT INTO items VALUES (i, 0, q::float4[]); SELECT 1 $$`);
  s = await h.client();
  // Generous settings: the index's answer equals the exact one, so any difference is visibility.
  await s.query('SET winnow.nprobe = 1000');
  await s.query('SET winnow.k_factor = 100');
});

afterAll(async () => {
  await s?.end();
  await closePlannerClients({ h, c, d });
});

const knn = (pgv: string) => `SELECT id FROM items ORDER BY v <-> '${pgv}' LIMIT 10`;
const ids = (r: pg.QueryResult) => r.rows.map((x) => Number(x.id));
/** Postgres's exact answer, straight to Postgres (d), outside any transaction of s. */
const exact = async (q: { arr: string }) => ids(await d.query(`SELECT id FROM items ORDER BY v <-> '${q.arr}' LIMIT 10`));

/** Runs `f` and says whether the index answered (a native search) or Postgres did. */
async function answeredBy<T>(f: () => Promise<T>): Promise<{ r: T; index: boolean }> {
  const before = plannerStats.nativeSearches;
  const r = await f();
  return { r, index: plannerStats.nativeSearches > before };
}

describe('simple protocol', () => {
  test('READ COMMITTED with no write: the index answers; after an INSERT the transaction sees its row; ROLLBACK removes it', async () => {
    const q = randomVector(DIM, rnd);
    const checks = transactionStats.checks;
    await s.query('BEGIN');
    const a = await answeredBy(() => s.query(knn(q.pgv)));
    expect(a.index).toBe(true);
    expect(ids(a.r)).toEqual(await exact(q));
    expect(transactionStats.checks).toBe(checks + 1);
    await s.query(`INSERT INTO items VALUES (900001, 0, '${q.pgv}')`);
    const b = await answeredBy(() => s.query(knn(q.pgv)));
    expect(b.index).toBe(false);
    expect(ids(b.r)[0]).toBe(900001);
    await s.query('ROLLBACK');
    const after = await answeredBy(() => s.query(knn(q.pgv)));
    expect(after.index).toBe(true);
    expect(ids(after.r)).toEqual(ids(a.r));
  });

  test('a function that writes counts as a write (Postgres has assigned a transaction id)', async () => {
    const q = randomVector(DIM, rnd);
    await s.query('BEGIN');
    await s.query(`SELECT add_item(900002, '${q.arr}')`);
    const b = await answeredBy(() => s.query(knn(q.pgv)));
    expect(b.index).toBe(false);
    expect(ids(b.r)[0]).toBe(900002);
    await s.query('ROLLBACK');
    expect(ids(await s.query(knn(q.pgv)))).not.toContain(900002);
  });

  test('REPEATABLE READ and SERIALIZABLE keep their snapshot: Postgres answers, and a row committed meanwhile stays invisible', async () => {
    for (const begin of ['BEGIN ISOLATION LEVEL REPEATABLE READ', 'START TRANSACTION ISOLATION LEVEL SERIALIZABLE']) {
      const q = randomVector(DIM, rnd);
      await s.query(begin);
      const a = await answeredBy(() => s.query(knn(q.pgv)));
      expect(a.index, begin).toBe(false);
      await d.query(`INSERT INTO items VALUES (900003, 0, '${q.arr}')`);
      const b = await answeredBy(() => s.query(knn(q.pgv)));
      expect(b.index).toBe(false);
      expect(ids(b.r)).toEqual(ids(a.r));
      await s.query('COMMIT');
      // Committed by another session, and seen once the transaction is over.
      await c.query('SHOW winnow.index_status');
      expect(ids(await s.query(knn(q.pgv)))[0]).toBe(900003);
      await d.query('DELETE FROM items WHERE id = 900003');
    }
    // The level from default_transaction_isolation too.
    await s.query(`SET default_transaction_isolation = 'repeatable read'`);
    await s.query('BEGIN');
    expect((await answeredBy(() => s.query(knn(randomVector(DIM, rnd).pgv)))).index).toBe(false);
    await s.query('COMMIT');
    await s.query('RESET default_transaction_isolation');
  });

  test('an aborted transaction gets Postgres\'s error, and the session goes on after ROLLBACK', async () => {
    const q = randomVector(DIM, rnd);
    await s.query('BEGIN');
    await expect(s.query('SELECT 1/0')).rejects.toMatchObject({ code: '22012' });
    await expect(s.query(knn(q.pgv))).rejects.toMatchObject({ code: '25P02' });
    await s.query('ROLLBACK');
    expect((await answeredBy(() => s.query(knn(q.pgv)))).index).toBe(true);
  });
});

describe('extended protocol', () => {
  test('a named statement is answered by the index in a read-only transaction, by Postgres after a write, by the index again after COMMIT', async () => {
    const q = randomVector(DIM, rnd);
    const run = () => s.query({ name: 'tx_knn', text: 'SELECT id FROM items ORDER BY v <-> $1 LIMIT 10', values: [q.pgv] });
    await run(); // prepared outside the transaction
    await s.query('BEGIN');
    const a = await answeredBy(run);
    expect(a.index).toBe(true);
    expect(ids(a.r)).toEqual(await exact(q));
    await s.query({ text: 'INSERT INTO items VALUES ($1, 0, $2)', values: [900004, q.pgv] });
    const b = await answeredBy(run);
    expect(b.index).toBe(false);
    expect(ids(b.r)[0]).toBe(900004);
    await s.query('COMMIT');
    const c2 = await answeredBy(run);
    expect(c2.index).toBe(true);
    expect(ids(c2.r)[0]).toBe(900004);
    await d.query('DELETE FROM items WHERE id = 900004');
  });

  test('a CTE planned at Bind follows the same rule', async () => {
    const q = randomVector(DIM, rnd);
    const text = 'WITH nn AS (SELECT id FROM items ORDER BY v <-> $1 LIMIT 5) SELECT id FROM nn ORDER BY id';
    const run = () => s.query({ name: 'tx_cte', text, values: [q.pgv] });
    await run();
    await s.query('BEGIN');
    const a = await answeredBy(run);
    expect(a.index).toBe(true);
    await s.query(`INSERT INTO items VALUES (900005, 0, '${q.pgv}')`);
    const b = await answeredBy(run);
    expect(b.index).toBe(false);
    expect(ids(b.r)).toContain(900005);
    await s.query('ROLLBACK');
    expect(ids(await run())).not.toContain(900005);
  });
});
