// COPY FROM STDIN / TO STDOUT through Winnow, and a client that disconnects mid-COPY.
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawConn, errorFields, eventually, harness, type Harness } from './helpers.ts';
import { serialize } from 'pg-protocol';

let h: Harness;
beforeAll(async () => {
  h = await harness();
});
afterAll(async () => {
  await h?.close();
});

const N = 100_000;

describe('COPY', () => {
  it(`round-trips ${N} rows (COPY FROM STDIN then COPY TO STDOUT, postgres.js)`, async () => {
    const sql = postgres({ ...h.conn, username: h.conn.user, max: 1, onnotice: () => {} });
    try {
      await sql`CREATE TABLE copy_rt (id int PRIMARY KEY, label text, v float8)`;
      const lines = function* () {
        let batch = '';
        for (let i = 1; i <= N; i++) {
          batch += `${i}\tlabel ${i} with \\t tab\t${i / 7}\n`;
          if (i % 1000 === 0) {
            yield batch;
            batch = '';
          }
        }
      };
      const writable = await sql`COPY copy_rt FROM STDIN`.writable();
      await pipeline(Readable.from(lines()), writable);
      const [{ n, s }] = await sql`SELECT count(*)::int AS n, sum(id)::bigint AS s FROM copy_rt`;
      expect(n).toBe(N);
      expect(BigInt(s)).toBe(BigInt((N * (N + 1)) / 2));

      const readable = await sql`COPY (SELECT * FROM copy_rt ORDER BY id) TO STDOUT`.readable();
      let out = '';
      await pipeline(
        readable,
        new Writable({
          write(chunk, _enc, cb) {
            out += chunk.toString();
            cb();
          },
        }),
      );
      const rows = out.split('\n');
      expect(rows).toHaveLength(N + 1);
      expect(rows[0]).toBe(`1\tlabel 1 with \\t tab\t${1 / 7}`);
      expect(rows[N - 1].startsWith(`${N}\tlabel ${N} with`)).toBe(true);
    } finally {
      await sql.end();
    }
  });

  it('a COPY error comes back exactly as Postgres sent it and the session continues', async () => {
    const c = await h.client();
    await c.query('CREATE TABLE copy_err (id int)');
    const raw = await RawConn.startup(h.conn.port, h.conn.user, h.conn.database);
    try {
      raw.write(serialize.query('COPY copy_err FROM STDIN'));
      await raw.readUntil('G');
      raw.write(Buffer.concat([serialize.copyData(Buffer.from('1\n2\nnot-a-number\n')), serialize.copyDone()]));
      const msgs = await raw.readUntil('Z');
      const e = msgs.find((m) => m.type === 'E')!;
      const f = errorFields(e.body);
      expect(f.C).toBe('22P02');
      expect(f.M).toBe('invalid input syntax for type integer: "not-a-number"');
      expect(f.W).toContain('COPY copy_err, line 3');
      expect(msgs.at(-1)!.body.toString()).toBe('I');
      raw.write(serialize.query('SELECT count(*) FROM copy_err'));
      const after = await raw.readUntil('Z');
      expect(after.map((m) => m.type).join('')).toBe('TDCZ');
      // CopyFail from the client aborts the COPY with Postgres's error.
      raw.write(serialize.query('COPY copy_err FROM STDIN'));
      await raw.readUntil('G');
      raw.write(Buffer.concat([serialize.copyData(Buffer.from('5\n')), serialize.copyFail('client changed its mind')]));
      const failed = await raw.readUntil('Z');
      expect(errorFields(failed.find((m) => m.type === 'E')!.body).M).toContain('client changed its mind');
      expect((await c.query('SELECT count(*)::int AS n FROM copy_err')).rows[0].n).toBe(0);
    } finally {
      raw.destroy();
      await c.end();
    }
  });

  it('a client that disconnects mid-COPY leaves nothing half-written and no backend behind', async () => {
    const c = await h.client();
    await c.query('CREATE TABLE copy_abort (id int)');
    const before = 1; // only client c (earlier tests' backends may still be exiting)
    const raw = await RawConn.startup(h.conn.port, h.conn.user, h.conn.database);
    raw.write(serialize.query('COPY copy_abort FROM STDIN'));
    await raw.readUntil('G');
    for (let i = 0; i < 1000; i++) raw.write(serialize.copyData(Buffer.from(`${i}\n`)));
    // half a CopyData message, then gone
    const partial = serialize.copyData(Buffer.from('12345\n'));
    raw.write(partial.subarray(0, 7));
    await new Promise((r) => setTimeout(r, 100));
    raw.destroy();
    await eventually(async () => (await h.backendCount()) === before, 10_000, 'backend to exit');
    expect((await c.query('SELECT count(*)::int AS n FROM copy_abort')).rows[0].n).toBe(0);
    await c.end();
  });

  it('COPY TO STDOUT of a large result to a slow reader (backpressure)', async () => {
    const c = await h.client();
    const sql = postgres({ ...h.conn, username: h.conn.user, max: 1 });
    try {
      const readable = await sql`COPY (SELECT g, repeat('x', 200) FROM generate_series(1, 50000) g) TO STDOUT`.readable();
      let bytes = 0;
      let lines = 0;
      await pipeline(
        readable,
        new Writable({
          highWaterMark: 1024,
          write(chunk: Buffer, _enc, cb) {
            bytes += chunk.length;
            for (const b of chunk) if (b === 10) lines++;
            setImmediate(cb);
          },
        }),
      );
      expect(lines).toBe(50000);
      expect(bytes).toBeGreaterThan(50000 * 200);
    } finally {
      await sql.end();
      await c.end();
    }
  });
});
