// Real clients through Winnow: psql, pg (simple, extended, prepared, binary), postgres.js.
import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { harness, type Harness } from './helpers.ts';

const run = promisify(execFile);
let h: Harness;

beforeAll(async () => {
  h = await harness();
  const c = await h.direct();
  await c.query(`CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, score float8, data bytea)`);
  await c.query(`INSERT INTO items SELECT g, 'item ' || g, g * 1.5, decode(lpad(to_hex(g), 8, '0'), 'hex') FROM generate_series(1, 1000) g`);
  await c.end();
});
afterAll(async () => {
  await h?.close();
});

function psql(args: string[], input?: string) {
  const p = run('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-At', h.url, ...args], { env: { ...process.env, PGCONNECT_TIMEOUT: '10' } });
  if (input !== undefined) {
    p.child.stdin!.end(input);
  }
  return p;
}

describe('psql', () => {
  it('runs simple queries and several statements in one query string', async () => {
    const { stdout } = await psql(['-c', 'SELECT 1; SELECT name FROM items WHERE id = 7; SELECT count(*) FROM items']);
    expect(stdout.trim().split('\n')).toEqual(['1', 'item 7', '1000']);
  });

  it('runs a script from stdin with a transaction, variables and meta-commands', async () => {
    const script = [
      'BEGIN;',
      'CREATE TEMP TABLE tt (x int);',
      'INSERT INTO tt SELECT generate_series(1, 10);',
      'SELECT sum(x) FROM tt \\gset',
      '\\echo sum=:sum',
      'COMMIT;',
      '\\d items',
    ].join('\n');
    const { stdout } = await psql(['-f', '-'], script);
    expect(stdout).toContain('sum=55');
    expect(stdout).toContain('name|text');
  });

  it('stops on the first error with Postgres\'s message (ON_ERROR_STOP)', async () => {
    const err = await psql(['-f', '-'], 'SELECT 1;\nSELECT * FROM no_such_table;\nSELECT 2;\n').catch((e) => e);
    expect(err.code).toBe(3);
    expect(err.stdout).toBe('1\n');
    expect(err.stderr).toContain('relation "no_such_table" does not exist');
    expect(err.stderr).toContain('LINE 1');
  });

  it('round-trips data with \\copy', async () => {
    await psql(['-c', 'CREATE TABLE IF NOT EXISTS psql_copy (a int, b text)']);
    await psql(['-c', "\\copy psql_copy FROM STDIN"], '1\tone\n2\ttwo\n3\t\\N\n\\.\n');
    const { stdout } = await psql(['-c', '\\copy (SELECT * FROM psql_copy ORDER BY a) TO STDOUT']);
    expect(stdout).toBe('1\tone\n2\ttwo\n3\t\\N\n');
  });
});

describe('pg (node-postgres)', () => {
  it('simple query protocol', async () => {
    const c = await h.client();
    const r = await c.query('SELECT id, name FROM items WHERE id <= 3 ORDER BY id');
    expect(r.rows).toEqual([
      { id: 1, name: 'item 1' },
      { id: 2, name: 'item 2' },
      { id: 3, name: 'item 3' },
    ]);
    const multi = (await c.query('SELECT 1 AS a; SELECT 2 AS b')) as unknown as pg.QueryResult[];
    expect(multi.map((x) => x.rows[0])).toEqual([{ a: 1 }, { b: 2 }]);
    await c.end();
  });

  it('extended protocol with parameters, and named prepared statement reuse', async () => {
    const c = await h.client();
    const r = await c.query('SELECT name, score FROM items WHERE id = $1', [42]);
    expect(r.rows).toEqual([{ name: 'item 42', score: 63 }]);
    for (let i = 1; i <= 20; i++) {
      const q = await c.query({ name: 'by_id', text: 'SELECT name FROM items WHERE id = $1', values: [i] });
      expect(q.rows[0].name).toBe(`item ${i}`);
    }
    const ps = await c.query(`SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name = 'by_id'`);
    expect(ps.rows[0].n).toBe(1);
    await c.end();
  });

  it('binary results are byte-identical to Postgres\'s', async () => {
    const c = await h.client();
    const d = await h.direct();
    const q = { text: 'SELECT id, name, data, score, now()::date AS day FROM items WHERE id BETWEEN $1 AND $2 ORDER BY id', values: ['250', '260'], binary: true } as pg.QueryConfig;
    const viaWinnow = await c.query(q);
    const direct = await d.query(q);
    expect(viaWinnow.fields.every((f) => f.format === 'binary')).toBe(true);
    expect(viaWinnow.rows).toHaveLength(11);
    expect(viaWinnow.rows).toEqual(direct.rows);
    await c.end();
    await d.end();
  });

  it('SQL errors come back exactly as Postgres sent them, and the session continues', async () => {
    const direct = await h.direct();
    const via = await h.client();
    const sql = 'SELECT id, nme FROM items';
    const e1 = await direct.query(sql).catch((e) => e);
    const e2 = await via.query(sql).catch((e) => e);
    for (const k of ['code', 'message', 'position', 'severity', 'hint', 'file', 'routine', 'line']) expect(e2[k]).toEqual(e1[k]);
    expect(e2.code).toBe('42703');
    // Extended protocol error, then the session continues.
    const e3 = await via.query('SELECT 1/$1::int', [0]).catch((e) => e);
    expect(e3.code).toBe('22012');
    const dup = await via.query('INSERT INTO items (id, name) VALUES (1, $1)', ['x']).catch((e) => e);
    expect(dup.code).toBe('23505');
    expect(dup.constraint).toBe('items_pkey');
    expect(dup.table).toBe('items');
    expect(dup.detail).toBe('Key (id)=(1) already exists.');
    expect((await via.query('SELECT 2 AS x')).rows).toEqual([{ x: 2 }]);
    await direct.end();
    await via.end();
  });

  it('transactions: ROLLBACK discards, status is tracked, failed transaction needs ROLLBACK', async () => {
    const c = await h.client();
    await c.query('CREATE TABLE IF NOT EXISTS tx (v int)');
    await c.query('BEGIN');
    await c.query('INSERT INTO tx VALUES (1)');
    await c.query('ROLLBACK');
    expect((await c.query('SELECT count(*)::int AS n FROM tx')).rows[0].n).toBe(0);
    await c.query('BEGIN');
    await c.query('INSERT INTO tx VALUES (2)');
    const err = await c.query('SELECT broken').catch((e) => e);
    expect(err.code).toBe('42703');
    const aborted = await c.query('SELECT 1').catch((e) => e);
    expect(aborted.code).toBe('25P02');
    await c.query('ROLLBACK');
    await c.query('BEGIN');
    await c.query('INSERT INTO tx VALUES (3)');
    await c.query('COMMIT');
    expect((await c.query('SELECT array_agg(v) AS v FROM tx')).rows[0].v).toEqual([3]);
    await c.end();
  });

  it('cancels a long pg_sleep', async () => {
    const c = await h.client();
    const started = Date.now();
    const p = c.query('SELECT pg_sleep(30)').catch((e) => e);
    await new Promise((r) => setTimeout(r, 300));
    // What libpq does: a new connection sends CancelRequest with the BackendKeyData the client received.
    const { processID, secretKey } = c as unknown as { processID: number; secretKey: number };
    const pkt = Buffer.alloc(16);
    pkt.writeInt32BE(16, 0);
    pkt.writeInt32BE(80877102, 4);
    pkt.writeInt32BE(processID, 8);
    pkt.writeInt32BE(secretKey, 12);
    const s = net.connect({ host: '127.0.0.1', port: h.conn.port }, () => s.end(pkt));
    await new Promise((r) => s.on('close', r));
    const err = await p;
    expect(err.code).toBe('57014');
    expect(Date.now() - started).toBeLessThan(10_000);
    expect((await c.query('SELECT 1 AS ok')).rows[0].ok).toBe(1);
    await c.end();
  });

  it('LISTEN/NOTIFY between sessions', async () => {
    const listener = await h.client();
    const notifier = await h.client();
    await listener.query('LISTEN winnow_events');
    const got = new Promise<pg.Notification>((resolve) => listener.on('notification', resolve));
    await notifier.query(`NOTIFY winnow_events, 'hello'`);
    const n = await got;
    expect(n.channel).toBe('winnow_events');
    expect(n.payload).toBe('hello');
    await listener.end();
    await notifier.end();
  });

  it('notices reach the client', async () => {
    const c = await h.client();
    const notice = new Promise<{ message?: string }>((resolve) => c.on('notice', resolve));
    await c.query(`DO $$ BEGIN RAISE NOTICE 'winnow says %', 42; END $$`);
    expect((await notice).message).toBe('winnow says 42');
    await c.end();
  });

  it('ParameterStatus follows SET', async () => {
    const c = await h.client();
    const status = new Promise<unknown>((resolve) =>
      (c as unknown as { connection: { on(e: string, f: (m: unknown) => void): void } }).connection.on('parameterStatus', resolve),
    );
    await c.query(`SET application_name = 'winnow-test'`);
    expect(await status).toMatchObject({ parameterName: 'application_name', parameterValue: 'winnow-test' });
    const r = await c.query('SHOW application_name');
    expect(r.rows[0].application_name).toBe('winnow-test');
    await c.end();
  });
});

describe('postgres.js', () => {
  it('queries, prepared statements, transactions and cursors (Execute row limits)', async () => {
    const sql = postgres({ ...h.conn, username: h.conn.user, max: 2, onnotice: () => {} });
    try {
      const rows = await sql`SELECT id, name FROM items WHERE id = ${5}`;
      expect(rows[0]).toEqual({ id: 5, name: 'item 5' });
      for (let i = 0; i < 10; i++) {
        const [r] = await sql`SELECT name FROM items WHERE id = ${i + 100}`;
        expect(r.name).toBe(`item ${i + 100}`);
      }
      await sql`CREATE TABLE IF NOT EXISTS pjs (v int)`;
      await sql
        .begin(async (tx) => {
          await tx`INSERT INTO pjs VALUES (1)`;
          throw new Error('rollback please');
        })
        .catch((e) => expect(e.message).toBe('rollback please'));
      expect((await sql`SELECT count(*)::int AS n FROM pjs`)[0].n).toBe(0);
      // cursor() uses Execute with a row limit and PortalSuspended.
      const batches: number[] = [];
      await sql`SELECT id FROM items ORDER BY id LIMIT 95`.cursor(10, (rows) => {
        batches.push(rows.length);
      });
      expect(batches).toEqual([10, 10, 10, 10, 10, 10, 10, 10, 10, 5]);
      // postgres.js's own cancel (CancelRequest on a new connection)
      const slow = sql`SELECT pg_sleep(30)`;
      const slowDone = slow.catch((e) => e);
      await new Promise((r) => setTimeout(r, 300));
      slow.cancel();
      expect((await slowDone).code).toBe('57014');
      const err = await sql`SELECT ${'x'}::int`.catch((e) => e);
      expect(err.code).toBe('22P02');
      // pipelined queries on one connection
      const many = await Promise.all(Array.from({ length: 50 }, (_, i) => sql`SELECT ${i}::int AS i`));
      expect(many.map((r) => r[0].i)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    } finally {
      await sql.end();
    }
  });
});
