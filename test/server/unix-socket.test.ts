// Winnow on a Unix-domain socket (--unix-socket-dir): libpq clients (psql, pgbench) and pg reach it at
// <dir>/.s.PGSQL.<port> as they reach Postgres, sessions behave as over TCP, the socket file goes away
// when Winnow stops, and a file left by a server that died does not stop the next start.
import { afterAll, beforeAll, expect, test } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import postgres from 'postgres';
import { harness, type Harness } from './helpers.ts';

const run = promisify(execFile);
let dir: string;
let h: Harness;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'winnow-sock-'));
  h = await harness({ unixSocketDir: dir });
});

afterAll(async () => {
  await h?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('psql, pg and postgres.js connect through the socket file and run simple and extended queries', async () => {
  expect(h.winnow.socketPath).toBe(path.join(dir, `.s.PGSQL.${h.winnow.port}`));
  const { stdout } = await run('psql', ['-X', '-At', '-h', dir, '-p', String(h.winnow.port), '-U', h.db.user, '-d', h.db.database, '-c', 'SELECT 40 + 2', '-c', 'SELECT current_database()']);
  expect(stdout.trim().split('\n')).toEqual(['42', h.db.database]);
  const c = new pg.Client({ host: dir, port: h.winnow.port, user: h.db.user, database: h.db.database });
  await c.connect();
  try {
    expect((await c.query('SELECT $1::int * 2 AS x', [21])).rows[0].x).toBe(42);
    await expect(c.query('SELECT * FROM no_such_table')).rejects.toMatchObject({ code: '42P01' });
    expect((await c.query({ name: 'p', text: 'SELECT $1::text AS t', values: ['ok'] })).rows[0].t).toBe('ok');
  } finally {
    await c.end();
  }
  const sql = postgres({ host: dir, port: h.winnow.port, user: h.db.user, database: h.db.database, max: 1 });
  try {
    expect((await sql`SELECT ${'a'}::text || 'b' AS s`)[0].s).toBe('ab');
  } finally {
    await sql.end();
  }
});

test('the socket file is removed on close, and a stale one is replaced at start', async () => {
  const other = mkdtempSync(path.join(tmpdir(), 'winnow-sock-'));
  try {
    const first = await harness({ unixSocketDir: other });
    const file = first.winnow.socketPath!;
    expect(existsSync(file)).toBe(true);
    await first.close();
    expect(existsSync(file)).toBe(false);
    // Left behind by a server that died (nobody answers on it).
    const port = first.winnow.port;
    writeFileSync(path.join(other, `.s.PGSQL.${port}`), '');
    const second = await harness({ unixSocketDir: other, port });
    try {
      const { stdout } = await run('psql', ['-X', '-At', '-h', other, '-p', String(port), '-U', second.db.user, '-d', second.db.database, '-c', 'SELECT 1']);
      expect(stdout.trim()).toBe('1');
    } finally {
      await second.close();
    }
  } finally {
    rmSync(other, { recursive: true, force: true });
  }
});
