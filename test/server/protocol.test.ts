// Extended query protocol at the message level (raw socket): named/unnamed statements and portals,
// Describe, Close, Flush, Execute row limits with PortalSuspended, binary formats, skip-to-Sync after
// an error, SSLRequest/GSSENCRequest answers, ReadyForQuery transaction status.
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawConn, errorFields, harness, type Harness, type RawMessage } from './helpers.ts';

let h: Harness;
beforeAll(async () => {
  h = await harness();
  const c = await h.direct();
  await c.query('CREATE TABLE nums (n int PRIMARY KEY, sq bigint)');
  await c.query('INSERT INTO nums SELECT g, g*g FROM generate_series(1, 100) g');
  await c.end();
});
afterAll(async () => {
  await h?.close();
});

const types = (ms: RawMessage[]) => ms.map((m) => m.type).join('');
const conn = () => RawConn.startup(h.conn.port, h.conn.user, h.conn.database);

describe('extended query protocol', () => {
  it('named statement + named portal, Execute row limits → PortalSuspended, Close', async () => {
    const c = await conn();
    c.write(
      Buffer.concat([
        serialize.parse({ name: 's1', text: 'SELECT n, sq FROM nums WHERE n <= $1 ORDER BY n', types: [23] }),
        serialize.describe({ type: 'S', name: 's1' }),
        serialize.sync(),
      ]),
    );
    expect(types(await c.readUntil('Z'))).toBe('1tTZ');
    c.write(
      Buffer.concat([
        serialize.bind({ portal: 'p1', statement: 's1', values: ['25'] }),
        serialize.describe({ type: 'P', name: 'p1' }),
        serialize.execute({ portal: 'p1', rows: 10 }),
        serialize.flush(),
      ]),
    );
    // Flush: results arrive before any Sync.
    expect(types(await c.readUntil('s'))).toBe('2T' + 'D'.repeat(10) + 's');
    c.write(Buffer.concat([serialize.execute({ portal: 'p1', rows: 10 }), serialize.execute({ portal: 'p1', rows: 10 }), serialize.sync()]));
    const rest = await c.readUntil('Z');
    // 10 more, then the last 5 and CommandComplete; the transaction is still open? No: implicit, so 'I'.
    expect(types(rest)).toBe('D'.repeat(10) + 's' + 'D'.repeat(5) + 'CZ');
    expect(rest.at(-1)!.body.toString()).toBe('I');
    // Statement survives Sync; reuse it, then Close it.
    c.write(Buffer.concat([serialize.bind({ statement: 's1', values: ['2'] }), serialize.execute({}), serialize.close({ type: 'S', name: 's1' }), serialize.sync()]));
    expect(types(await c.readUntil('Z'))).toBe('2DDC3Z');
    c.write(Buffer.concat([serialize.bind({ statement: 's1', values: ['2'] }), serialize.sync()]));
    const gone = await c.readUntil('Z');
    expect(types(gone)).toBe('EZ');
    expect(errorFields(gone[0].body).C).toBe('26000');
    c.destroy();
  });

  it('binary parameters and binary results', async () => {
    const c = await conn();
    const param = Buffer.alloc(4);
    param.writeInt32BE(12);
    // Bind with a binary int4 parameter and binary result format (hand-built: pg-protocol's bind is text-or-binary for all).
    const bind = Buffer.concat([
      Buffer.from('B'),
      Buffer.alloc(4),
      Buffer.from('\0\0'), // unnamed portal, unnamed statement
      Buffer.from([0, 1, 0, 1]), // 1 param format: binary
      Buffer.from([0, 1]), // 1 param
      Buffer.from([0, 0, 0, 4]),
      param,
      Buffer.from([0, 1, 0, 1]), // 1 result format: binary
    ]);
    bind.writeInt32BE(bind.length - 1, 1);
    c.write(Buffer.concat([serialize.parse({ text: 'SELECT sq FROM nums WHERE n = $1', types: [23] }), bind, serialize.execute({}), serialize.sync()]));
    const ms = await c.readUntil('Z');
    expect(types(ms)).toBe('12DCZ');
    const row = ms[2].body;
    expect(row.readInt16BE(0)).toBe(1);
    expect(row.readInt32BE(2)).toBe(8);
    expect(row.readBigInt64BE(6)).toBe(144n);
    c.destroy();
  });

  it('after an error Postgres skips to Sync; the session continues; errors carry every field', async () => {
    const c = await conn();
    c.write(
      Buffer.concat([
        serialize.parse({ text: 'SELECT n FROM nums WHERE n = $1' }),
        serialize.bind({ values: ['not a number'] }),
        serialize.execute({}),
        serialize.parse({ name: 'never', text: 'SELECT 1' }),
        serialize.query('SELECT 1'), // skipped too, like everything up to Sync
        serialize.sync(),
        serialize.query('SELECT 42'),
      ]),
    );
    const ms = await c.readUntil('Z');
    expect(types(ms)).toBe('1EZ');
    const f = errorFields(ms[1].body);
    expect(f).toMatchObject({ S: 'ERROR', V: 'ERROR', C: '22P02', M: 'invalid input syntax for type integer: "not a number"' });
    expect(f.F).toBeTruthy();
    expect(f.R).toBeTruthy();
    expect(f.L).toBeTruthy();
    const after = await c.readUntil('Z');
    expect(types(after)).toBe('TDCZ');
    // The statement after the error was not prepared.
    c.write(Buffer.concat([serialize.describe({ type: 'S', name: 'never' }), serialize.sync()]));
    expect(errorFields((await c.readUntil('Z'))[0].body).C).toBe('26000');
    // syntax error position, exactly as Postgres reports it
    c.write(serialize.query('SELECT 1 FROM nums WHERE'));
    const syn = await c.readUntil('Z');
    expect(errorFields(syn[0].body)).toMatchObject({ C: '42601', M: 'syntax error at end of input', P: '25' });
    c.destroy();
  });

  it('ReadyForQuery reports the transaction status', async () => {
    const c = await conn();
    const status = async (q: string) => (await c.readUntil('Z', 5000)).at(-1)!.body.toString() + (c.write(''), '');
    c.write(serialize.query('BEGIN'));
    expect(await status('BEGIN')).toBe('T');
    c.write(serialize.query('SELECT 1/0'));
    expect(await status('')).toBe('E');
    c.write(serialize.query('ROLLBACK'));
    expect(await status('')).toBe('I');
    c.write(serialize.query('BEGIN; SELECT 1; COMMIT; SELECT 2'));
    const ms = await c.readUntil('Z');
    expect(types(ms)).toBe('CTDCCTDCZ');
    c.destroy();
  });

  it('empty query, unnamed statements re-parsed, and Describe of an unknown portal', async () => {
    const c = await conn();
    c.write(serialize.query(''));
    expect(types(await c.readUntil('Z'))).toBe('IZ');
    for (let i = 0; i < 3; i++) {
      c.write(Buffer.concat([serialize.parse({ text: `SELECT ${i} AS x` }), serialize.bind({}), serialize.describe({ type: 'P' }), serialize.execute({}), serialize.sync()]));
      const ms = await c.readUntil('Z');
      expect(types(ms)).toBe('12TDCZ');
      expect(ms[3].body.subarray(6).toString()).toBe(String(i));
    }
    c.write(Buffer.concat([serialize.describe({ type: 'P', name: 'nope' }), serialize.sync()]));
    expect(errorFields((await c.readUntil('Z'))[0].body).C).toBe('34000');
    c.destroy();
  });
});

describe('connection negotiation', () => {
  it('answers SSLRequest and GSSENCRequest with N when no certificate is configured, then serves the session', async () => {
    const c = await RawConn.connect(h.conn.port);
    const req = (code: number) => {
      const b = Buffer.alloc(8);
      b.writeInt32BE(8, 0);
      b.writeInt32BE(code, 4);
      return b;
    };
    c.write(req(80877104));
    expect((await c.readBytes(1)).toString()).toBe('N');
    c.write(req(80877103));
    expect((await c.readBytes(1)).toString()).toBe('N');
    c.write(serialize.startup({ user: h.conn.user, database: h.conn.database, application_name: 'raw' }));
    const ms = await c.readUntil('Z');
    expect(ms[0].type).toBe('R');
    expect(ms.some((m) => m.type === 'K')).toBe(true);
    expect(ms.filter((m) => m.type === 'S').length).toBeGreaterThan(5);
    c.write(serialize.query(`SELECT current_setting('application_name')`));
    const r = await c.readUntil('Z');
    expect(r[1].body.subarray(6).toString()).toBe('raw');
    c.write(serialize.end());
    expect(await c.readToEnd()).toEqual([]);
  });

  it('messages pipelined right behind the StartupMessage are held until the session is ready', async () => {
    const c = await RawConn.connect(h.conn.port);
    c.write(Buffer.concat([serialize.startup({ user: h.conn.user, database: h.conn.database }), serialize.query('SELECT 40 + 2')]));
    const startup = await c.readUntil('Z');
    expect(startup[0].type).toBe('R');
    const r = await c.readUntil('Z');
    expect(r.map((m) => m.type).join('')).toBe('TDCZ');
    expect(r[1].body.subarray(6).toString()).toBe('42');
    c.destroy();
  });

  it('FunctionCall is relayed', async () => {
    const c = await conn();
    // int4abs (oid 1397) called with one text-format argument '-7'
    const arg = Buffer.from('-7');
    const body = Buffer.concat([
      Buffer.from([0, 0, 0x05, 0x75]), // function oid 1397
      Buffer.from([0, 1, 0, 0]), // 1 argument format code: text
      Buffer.from([0, 1]), // 1 argument
      Buffer.from([0, 0, 0, arg.length]),
      arg,
      Buffer.from([0, 0]), // result format: text
    ]);
    const msg = Buffer.concat([Buffer.from('F'), Buffer.alloc(4), body]);
    msg.writeInt32BE(msg.length - 1, 1);
    c.write(msg);
    const r = await c.readUntil('Z');
    expect(r.map((m) => m.type).join('')).toBe('VZ');
    expect(r[0].body.subarray(4).toString()).toBe('7');
    c.destroy();
  });

  it('rejects an unsupported protocol version and a startup without user', async () => {
    const c = await RawConn.connect(h.conn.port);
    const b = Buffer.alloc(8);
    b.writeInt32BE(8, 0);
    b.writeInt32BE(2 << 16, 4);
    c.write(b);
    const ms = await c.readToEnd();
    expect(ms).toHaveLength(1);
    expect(errorFields(ms[0].body)).toMatchObject({ S: 'FATAL', C: '08P01' });
    const c2 = await RawConn.connect(h.conn.port);
    c2.write(serialize.startup({ database: 'x' } as unknown as Record<string, string>));
    const ms2 = await c2.readToEnd();
    expect(errorFields(ms2[0].body)).toMatchObject({ S: 'FATAL', C: '28000' });
  });
});
