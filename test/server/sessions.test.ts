// Session binding: each client session has its own backend; state is per session; no leaks.
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, harness, type Harness } from './helpers.ts';

let h: Harness;
beforeAll(async () => {
  h = await harness();
});
afterAll(async () => {
  await h?.close();
});

describe('sessions', () => {
  it('50 concurrent sessions, each bound to its own backend', async () => {
    const clients = await Promise.all(Array.from({ length: 50 }, () => h.client()));
    try {
      const results = await Promise.all(
        clients.map(async (c, i) => {
          await c.query(`SET application_name = 'w${i}'`);
          await c.query('CREATE TEMP TABLE mine (v int)');
          await c.query('INSERT INTO mine VALUES ($1)', [i]);
          await c.query('BEGIN');
          const r = await c.query(
            `SELECT pg_backend_pid() AS pid, current_setting('application_name') AS app, (SELECT v FROM mine) AS v, pg_sleep(0.05)::text`,
          );
          await c.query('COMMIT');
          return r.rows[0];
        }),
      );
      expect(new Set(results.map((r) => r.pid)).size).toBe(50);
      results.forEach((r, i) => {
        expect(r.app).toBe(`w${i}`);
        expect(r.v).toBe(i);
      });
      expect(await h.backendCount()).toBe(50);
      expect(h.winnow.sessionCount()).toBe(50);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
    await eventually(async () => (await h.backendCount()) === 0, 10_000, 'backends to close');
    expect(h.winnow.sessionCount()).toBe(0);
  });

  it('SET, prepared statements and advisory locks stay with their session', async () => {
    const a = await h.client();
    const b = await h.client();
    try {
      await a.query(`SET search_path = 'pg_catalog'`);
      expect((await b.query('SHOW search_path')).rows[0].search_path).toBe('"$user", public');
      await a.query(`PREPARE p1 AS SELECT 41 + 1 AS x`);
      expect((await a.query('EXECUTE p1')).rows[0].x).toBe(42);
      expect((await b.query('EXECUTE p1').catch((e) => e)).code).toBe('26000');
      expect((await a.query('SELECT pg_try_advisory_lock(777) AS ok')).rows[0].ok).toBe(true);
      expect((await b.query('SELECT pg_try_advisory_lock(777) AS ok')).rows[0].ok).toBe(false);
      // Session-level advisory lock is released when the client goes away.
      await a.end();
      await eventually(async () => (await b.query('SELECT pg_try_advisory_lock(777) AS ok')).rows[0].ok, 10_000, 'lock release');
    } finally {
      await b.end();
    }
  });

  it('no backend connection leaks after clean ends, aborts mid-query and mid-transaction', async () => {
    await eventually(async () => (await h.backendCount()) === 0, 10_000, 'start from zero');
    // clean ends
    for (let i = 0; i < 10; i++) {
      const c = await h.client();
      await c.query('SELECT 1');
      await c.end();
    }
    // aborted sockets: idle, in a transaction, and mid-query (a long pg_sleep)
    for (const mode of ['idle', 'tx', 'query'] as const) {
      for (let i = 0; i < 5; i++) {
        const c = await h.client();
        if (mode === 'tx') {
          await c.query('BEGIN');
          await c.query('CREATE TEMP TABLE x (v int)');
        }
        if (mode === 'query') {
          c.query('SELECT pg_sleep(60)').catch(() => {});
          await new Promise((r) => setTimeout(r, 50));
        }
        c.on('error', () => {});
        (c as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
      }
    }
    // postgres.js pool
    const sql = postgres({ ...h.conn, username: h.conn.user, max: 5, onnotice: () => {} });
    await Promise.all(Array.from({ length: 20 }, (_, i) => sql`SELECT ${i}::int`));
    await sql.end();
    await eventually(async () => (await h.backendCount()) === 0, 15_000, 'all backends to exit');
    expect(h.winnow.sessionCount()).toBe(0);
  });

  it('closing the backend side closes the client', async () => {
    const c = await h.client();
    const ended = new Promise<void>((r) => c.on('end', () => r()));
    const err = new Promise<Error>((r) => c.on('error', r));
    const pid = (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    const admin = await h.direct();
    await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    await admin.end();
    const e = (await err) as Error & { code?: string };
    expect(e.code === '57P01' || /terminat/.test(e.message)).toBe(true);
    await ended;
    await eventually(() => h.winnow.sessionCount() === 0, 5000, 'session to end');
  });

  it('authentication errors from Postgres reach the client verbatim', async () => {
    const c = new pg.Client({ ...h.conn, database: 'no_such_database_here' });
    const e = await c.connect().catch((x) => x);
    expect(e.code).toBe('3D000');
    expect(e.message).toBe('database "no_such_database_here" does not exist');
    const c2 = new pg.Client({ ...h.conn, user: 'no_such_role' });
    const e2 = await c2.connect().catch((x) => x);
    expect(e2.code).toBe('28000');
  });
});
