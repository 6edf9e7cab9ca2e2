// Real clients against Winnow (embedded Postgres without pgvector): pg + pgvector/pg helpers
// (text and binary parameters/results), postgres.js (its own extended protocol + COPY), psql, and
// knex with pgvector/knex. No mocks: every value goes through the wire and is evaluated by Postgres.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import pg from 'pg';
import postgres from 'postgres';
import knexFactory from 'knex';
import pgvector from 'pgvector/pg';
import 'pgvector/knex';
import { fromSql } from 'pgvector';
import { startWinnow, type Winnow } from '../../server/index.ts';
import { vectorSessionFactory } from '../../sql/vector-session.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

let db: TestDatabase;
let winnow: Winnow;

beforeAll(async () => {
  db = await createTestDatabase('clients');
  winnow = await startWinnow({ databaseUrl: db.url, port: 0, host: '127.0.0.1', handlerFactory: vectorSessionFactory, logLevel: 'warn' } as never);
  const c = new pg.Client(conn());
  await c.connect();
  await c.query('CREATE EXTENSION IF NOT EXISTS vector');
  await c.end();
});

afterAll(async () => {
  await winnow?.close();
  await db?.drop();
});

function conn() {
  return { host: '127.0.0.1', port: winnow.port, user: 'postgres', database: db.database };
}

/** pgvector's binary send format. */
function vecBinary(values: number[]): Buffer {
  const b = Buffer.alloc(4 + 4 * values.length);
  b.writeInt16BE(values.length, 0);
  b.writeInt16BE(0, 2);
  values.forEach((v, i) => b.writeFloatBE(v, 4 + 4 * i));
  return b;
}

/** Runs one statement over the extended protocol asking for binary results; returns the DataRow fields. */
async function rawExtendedRow(text: string, batch?: Buffer[]): Promise<(Buffer | null)[]> {
  const sock = net.connect(winnow.port, '127.0.0.1');
  let acc = Buffer.alloc(0);
  let ready = 0;
  let row: (Buffer | null)[] = [];
  await new Promise<void>((resolve, reject) => {
    sock.on('error', reject);
    sock.on('data', (chunk: Buffer) => {
      acc = Buffer.concat([acc, chunk]);
      while (acc.length >= 5 && acc.length >= 1 + acc.readInt32BE(1)) {
        const type = String.fromCharCode(acc[0]);
        const body = acc.subarray(5, 1 + acc.readInt32BE(1));
        acc = acc.subarray(1 + acc.readInt32BE(1));
        if (type === 'D') {
          row = [];
          let p = 2;
          for (let i = 0; i < body.readInt16BE(0); i++) {
            const len = body.readInt32BE(p);
            row.push(len < 0 ? null : Buffer.from(body.subarray(p + 4, p + 4 + len)));
            p += 4 + Math.max(len, 0);
          }
        }
        if (type === 'Z' && ++ready === 1) {
          sock.write(Buffer.concat(batch ?? [serialize.parse({ text }), serialize.bind({ binary: true }), serialize.execute({}), serialize.sync()]));
        } else if (type === 'Z') resolve();
      }
    });
    sock.write(serialize.startup({ user: 'postgres', database: db.database }));
  });
  sock.end(serialize.end());
  return row;
}

/** psql -f - against Winnow; asynchronous (Winnow runs in this process, spawnSync would block it). */
function runPsql(script: string, stopOnError = true): Promise<{ stdout: string; stderr: string; status: number | null }> {
  return new Promise((resolve, reject) => {
    const p = spawn('psql', ['-h', '127.0.0.1', '-p', String(winnow.port), '-U', 'postgres', '-d', db.database, '-X', '-v', `ON_ERROR_STOP=${stopOnError ? 1 : 0}`, '-f', '-']);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (status) => resolve({ stdout, stderr, status }));
    p.stdin.end(script);
  });
}

describe('pg with pgvector/pg', () => {
  let client: pg.Client;
  beforeAll(async () => {
    client = new pg.Client(conn());
    await client.connect();
    await pgvector.registerTypes(client);
    await client.query('CREATE TABLE pg_items (id serial PRIMARY KEY, embedding vector(3), half halfvec(3))');
  });
  afterAll(async () => {
    await client.end();
  });

  test('catalog look-up used by registerTypes', async () => {
    const { rows } = await client.query(`SELECT typname FROM pg_type WHERE typname IN ('vector','halfvec','sparsevec') ORDER BY typname`);
    expect(rows.map((r) => r.typname)).toEqual(['halfvec', 'vector']);
  });

  test('parameters via toSql, results parsed by the registered type parsers', async () => {
    const ins = await client.query('INSERT INTO pg_items (embedding, half) VALUES ($1, $2), ($3, $4) RETURNING embedding, half', [
      pgvector.toSql([1, 2, 3]), pgvector.toSql([1.0001, 2, 3]), pgvector.toSql([4, 5, 6]), pgvector.toSql([0.1, 0.2, 0.3]),
    ]);
    expect(ins.rows[0].embedding).toEqual([1, 2, 3]);
    expect(ins.rows[0].half).toEqual([1, 2, 3]); // rounded to float16 like pgvector
    expect(ins.rows[1].half[0]).toBeCloseTo(0.099975586, 8);
    const { rows } = await client.query('SELECT id, embedding, embedding <-> $1 AS d FROM pg_items ORDER BY embedding <-> $1 LIMIT 5', [pgvector.toSql([3, 1, 2])]);
    expect(rows.map((r) => r.embedding)).toEqual([[1, 2, 3], [4, 5, 6]]);
    expect(rows[0].d).toBeCloseTo(Math.sqrt(6), 12);
    const agg = await client.query('SELECT avg(embedding) AS a, sum(embedding) AS s FROM pg_items');
    expect(agg.rows[0]).toEqual({ a: [2.5, 3.5, 4.5], s: [5, 7, 9] });
  });

  test('one multi-statement query: CREATE TABLE, ALTER TABLE and INSERTs of literals into the new columns', async () => {
    const r = await client.query(`CREATE TABLE batch_items (id int, v vector(2)); ALTER TABLE batch_items ADD COLUMN h halfvec(2);
      INSERT INTO batch_items VALUES (1, '[1,2]', '[1.0001,2]'); SELECT v, h FROM batch_items`);
    const last = (r as unknown as pg.QueryResult[])[3];
    expect(last.rows).toEqual([{ v: [1, 2], h: [1, 2] }]);
  });

  test('named prepared statement reused without Describe', async () => {
    for (const v of [[1, 1, 1], [2, 2, 2]]) {
      const r = await client.query({ name: 'pg_near', text: 'SELECT embedding, $1::vector AS q FROM pg_items ORDER BY embedding <=> $1 LIMIT 1', values: [pgvector.toSql(v)] });
      expect(r.rows[0].q).toEqual(v);
    }
  });

  test('binary parameter in pgvector send format (pg sends Buffers as binary)', async () => {
    await client.query('INSERT INTO pg_items (embedding) VALUES ($1)', [vecBinary([7, 8, 9])]);
    const r = await client.query('SELECT embedding FROM pg_items WHERE embedding = $1', [pgvector.toSql([7, 8, 9])]);
    expect(r.rows[0].embedding).toEqual([7, 8, 9]);
  });

  test('binary results in pgvector send format (raw wire: pg would decode bytes as UTF-8)', async () => {
    const row = await rawExtendedRow(`SELECT '[7,8.5,-9]'::vector AS v, '[1.5,2]'::halfvec AS h`);
    const v = row[0]!;
    expect(v.readInt16BE(0)).toBe(3);
    expect(v.readInt16BE(2)).toBe(0);
    expect([v.readFloatBE(4), v.readFloatBE(8), v.readFloatBE(12)]).toEqual([7, 8.5, -9]);
    const h = row[1]!;
    expect(h.length).toBe(8);
    expect([h.readUInt16BE(4), h.readUInt16BE(6)]).toEqual([0x3e00, 0x4000]); // float16 1.5, 2
  });

  test('vector parameters in an unsynced batch (several Parse before one Sync): types from the statement itself', async () => {
    const row = await rawExtendedRow('', [
      serialize.parse({ text: 'SELECT 1' }), serialize.bind({}), serialize.execute({}),
      serialize.parse({ name: 'batch_b', text: 'SELECT $1::vector <-> $2::vector AS d, $1::vector AS v' }),
      serialize.bind({ statement: 'batch_b', values: ['[1,2]', '[2,3]'] }), serialize.execute({}), serialize.sync(),
    ]);
    expect(row.map((f) => f?.toString())).toEqual(['1.4142135623730951', '[1,2]']);
  });

  test('errors are pgvector’s, nothing changes, the session goes on', async () => {
    await expect(client.query('INSERT INTO pg_items (embedding) VALUES ($1)', ['[1,2'])).rejects.toMatchObject({ code: '22P02', message: 'invalid input syntax for type vector: "[1,2"' });
    await expect(client.query('INSERT INTO pg_items (embedding) VALUES ($1)', [pgvector.toSql([1, 2])])).rejects.toMatchObject({ code: '22000', message: 'expected 3 dimensions, not 2' });
    await expect(client.query('SELECT $1::vector <-> $2::vector', [pgvector.toSql([1, 2, 3]), pgvector.toSql([1, 2])])).rejects.toMatchObject({ message: 'different vector dimensions 3 and 2' });
    await expect(client.query("SELECT '[NaN]'::vector")).rejects.toMatchObject({ message: 'NaN not allowed in vector' });
    await client.query('BEGIN');
    await client.query('INSERT INTO pg_items (embedding) VALUES ($1)', [pgvector.toSql([5, 5, 5])]);
    await expect(client.query('INSERT INTO pg_items (embedding) VALUES ($1)', ['[1,2'])).rejects.toMatchObject({ code: '22P02' });
    await expect(client.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' });
    await client.query('ROLLBACK');
    const { rows } = await client.query('SELECT count(*)::int AS n FROM pg_items');
    expect(rows[0].n).toBe(3);
  });
});

describe('postgres.js', () => {
  test('parameters, results, COPY text in and out', async () => {
    const sql = postgres({ ...conn(), username: 'postgres', max: 1, onnotice: () => {} });
    try {
      await sql`CREATE TABLE pj_items (id int, embedding vector(3))`;
      await sql`INSERT INTO pj_items VALUES (${1}, ${'[1,2,3]'}), (${2}, ${'[4,5,6]'})`;
      const rows = await sql`SELECT id, embedding::text AS t, embedding, embedding <-> ${'[1,1,1]'} AS d FROM pj_items ORDER BY id`;
      expect(rows.map((r) => r.embedding)).toEqual(['[1,2,3]', '[4,5,6]']);
      expect(Number(rows[0].d)).toBeCloseTo(Math.sqrt(5), 12);
      // COPY FROM STDIN (text format), split across chunks mid-row.
      const w = await sql`COPY pj_items (id, embedding) FROM STDIN`.writable();
      await new Promise<void>((resolve, reject) => {
        w.on('error', reject);
        w.on('finish', resolve);
        w.write('3\t[7,8');
        w.write(',9]\n4\t[0.5, -1, 2e3]\n');
        w.end('5\t\\N\n');
      });
      const after = await sql`SELECT id, embedding FROM pj_items ORDER BY id`;
      expect(after.map((r) => r.embedding)).toEqual(['[1,2,3]', '[4,5,6]', '[7,8,9]', '[0.5,-1,2000]', null]);
      const out: string[] = [];
      const r = await sql`COPY (SELECT id, embedding FROM pj_items WHERE id <= 2 ORDER BY id) TO STDOUT`.readable();
      for await (const chunk of r) out.push(chunk.toString());
      expect(out.join('')).toBe('1\t[1,2,3]\n2\t[4,5,6]\n');
    } finally {
      await sql.end();
    }
  });
});

/** COPY BINARY stream: header, rows of (int4 id, pgvector-binary vector), trailer. */
function binaryCopy(rows: [number, number[] | null][]): Buffer {
  const parts: Buffer[] = [Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)];
  for (const [id, v] of rows) {
    const head = Buffer.alloc(2 + 4 + 4);
    head.writeInt16BE(2, 0);
    head.writeInt32BE(4, 2);
    head.writeInt32BE(id, 6);
    parts.push(head);
    if (v === null) {
      const nul = Buffer.alloc(4);
      nul.writeInt32BE(-1);
      parts.push(nul);
    } else {
      const vb = vecBinary(v);
      const len = Buffer.alloc(4);
      len.writeInt32BE(vb.length);
      parts.push(len, vb);
    }
  }
  parts.push(Buffer.from([0xff, 0xff]));
  return Buffer.concat(parts);
}

describe('COPY binary and COPY errors (postgres.js)', () => {
  test('binary COPY in (split at odd offsets) and out in pgvector binary format', async () => {
    const sql = postgres({ ...conn(), username: 'postgres', max: 1, onnotice: () => {} });
    try {
      await sql`CREATE TABLE bc_items (id int, embedding vector(3))`;
      const data = binaryCopy([[1, [1, 2, 3]], [2, [-0.5, 1e-3, 4e3]], [3, null]]);
      const w = await sql`COPY bc_items FROM STDIN (FORMAT binary)`.writable();
      await new Promise<void>((resolve, reject) => {
        w.on('error', reject);
        w.on('finish', resolve);
        for (let i = 0; i < data.length; i += 7) w.write(data.subarray(i, i + 7));
        w.end();
      });
      const rows = await sql`SELECT id, embedding FROM bc_items ORDER BY id`;
      expect(rows.map((r) => r.embedding)).toEqual(['[1,2,3]', '[-0.5,0.001,4000]', null]);
      const chunks: Buffer[] = [];
      const r = await sql`COPY bc_items TO STDOUT (FORMAT binary)`.readable();
      for await (const chunk of r) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).equals(data)).toBe(true);
    } finally {
      await sql.end();
    }
  });

  test('a malformed vector in COPY text fails with pgvector’s error and loads nothing (psql)', async () => {
    const r = await runPsql(['CREATE TABLE ce_items (id int, embedding vector(3));', '\\copy ce_items FROM STDIN', '1\t[1,2,3]', '2\t[1,2', '\\.', 'SELECT count(*) AS n FROM ce_items;'].join('\n'), false);
    expect(r.stderr).toContain('ERROR:  invalid input syntax for type vector: "[1,2"');
    expect(r.stdout).toMatch(/ n \n---\n 0\n/);
    // COPY runs only the input function; Winnow checks vector(n) itself, as pgvector's vector_in does.
    const r2 = await runPsql(['\\copy ce_items FROM STDIN', '1\t[1,2]', '\\.'].join('\n'), false);
    expect(r2.stderr).toContain('ERROR:  expected 3 dimensions, not 2');
  });
});

describe('psql', () => {
  test('\\d, format_type, literals and \\copy', async () => {
    const script = [
      'CREATE TABLE psql_items (id int, embedding vector(3));',
      "INSERT INTO psql_items VALUES (1, '[1,2,3]');",
      '\\copy psql_items FROM STDIN',
      '2\t[4,5,6]',
      '\\.',
      "SELECT id, embedding, embedding <-> '[1,1,1]' AS d FROM psql_items ORDER BY id;",
      '\\d psql_items',
      'COPY psql_items TO STDOUT;',
    ].join('\n');
    const r = await runPsql(script);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/ 1 \| \[1,2,3\] +\| +2\.23606797749979\n/);
    expect(r.stdout).toMatch(/ 2 \| \[4,5,6\] +\| +7\.0710678118654755\n/);
    expect(r.stdout).toMatch(/embedding \| vector\(3\)/);
    expect(r.stdout).toContain('1\t[1,2,3]\n2\t[4,5,6]\n');
  });
});

describe('knex with pgvector/knex', () => {
  test('schema builder, inserts via toSql, distance ordering', async () => {
    const knex = knexFactory({ client: 'pg', connection: conn(), pool: { min: 0, max: 1 } });
    try {
      await (knex.schema as unknown as { enableExtension(n: string): Promise<void> }).enableExtension('vector');
      await knex.schema.createTable('knex_items', (t) => {
        t.increments('id');
        (t as unknown as { vector(name: string, d: number): void }).vector('embedding', 3);
      });
      await knex('knex_items').insert([{ embedding: pgvector.toSql([1, 1, 1]) }, { embedding: pgvector.toSql([2, 2, 2]) }, { embedding: pgvector.toSql([1, 1, 2]) }]);
      const rows = await (knex('knex_items') as any).orderBy((knex as any).l2Distance('embedding', [1, 1, 1])).limit(2);
      expect(rows.map((r: { embedding: string }) => fromSql(r.embedding))).toEqual([[1, 1, 1], [1, 1, 2]]);
    } finally {
      await knex.destroy();
    }
  });
});
