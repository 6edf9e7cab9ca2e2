// Bad input: garbage, truncated messages, absurd lengths, messages out of protocol order, clients that
// vanish mid-query, and a seeded fuzzer. The offending connection gets a FATAL ErrorResponse (where the
// protocol allows) and is closed; the server and every other session carry on.
import { serialize } from 'pg-protocol';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawConn, errorFields, eventually, harness, type Harness, type RawMessage } from './helpers.ts';
import { seededRandom } from '../support/random.ts';

let h: Harness;
let witness: pg.Client;
let witnessQueries = 0;

beforeAll(async () => {
  h = await harness();
  const c = await h.direct();
  await c.query('CREATE TABLE fz (id int PRIMARY KEY, t text)');
  await c.query(`INSERT INTO fz SELECT g, 'row ' || g FROM generate_series(1, 200) g`);
  await c.end();
  witness = await h.client();
});
afterAll(async () => {
  await witness?.end();
  await h?.close();
});

/** The witness session must keep working whatever other connections do. */
async function witnessWorks(): Promise<void> {
  const r = await witness.query('SELECT count(*)::int AS n, $1::text AS echo FROM fz WHERE id <= 200', ['still here']);
  expect(r.rows[0]).toEqual({ n: 200, echo: 'still here' });
  witnessQueries++;
}

function fatalOf(ms: RawMessage[]): Record<string, string> | undefined {
  const e = ms.find((m) => m.type === 'E');
  return e ? errorFields(e.body) : undefined;
}

async function otherSessionsUnaffected(): Promise<void> {
  await witnessWorks();
  const c = await h.client();
  expect((await c.query('SELECT 1 AS one')).rows[0].one).toBe(1);
  await c.end();
}

describe('bad input on one connection', () => {
  it('garbage bytes instead of a startup packet', async () => {
    const c = await RawConn.connect(h.conn.port);
    c.write(Buffer.from('GET / HTTP/1.1\r\nHost: example\r\n\r\n'));
    const ms = await c.readToEnd();
    expect(fatalOf(ms)).toMatchObject({ S: 'FATAL', C: '08P01' });
    await otherSessionsUnaffected();
  });

  it('a startup packet claiming 2 GB, and a typed message claiming 2 GB, are refused before allocating', async () => {
    const rss = process.memoryUsage().rss;
    const c = await RawConn.connect(h.conn.port);
    const b = Buffer.alloc(8);
    b.writeUInt32BE(0x7fffffff, 0);
    b.writeInt32BE(196608, 4);
    c.write(b);
    expect(fatalOf(await c.readToEnd())).toMatchObject({ S: 'FATAL', C: '08P01', M: 'invalid message length 2147483647' });

    const s = await RawConn.startup(h.conn.port, h.conn.user, h.conn.database);
    const q = Buffer.from([0x51, 0x80, 0, 0, 0, 0x53, 0x45]); // 'Q' with length 2^31 (negative as int32)
    s.write(q);
    expect(fatalOf(await s.readToEnd())).toMatchObject({ S: 'FATAL', C: '08P01', M: 'invalid message length -2147483648' });

    const s2 = await RawConn.startup(h.conn.port, h.conn.user, h.conn.database);
    const q2 = Buffer.from([0x51, 0x7f, 0xff, 0xff, 0xff, 0x53]);
    s2.write(q2);
    expect(fatalOf(await s2.readToEnd())).toMatchObject({ S: 'FATAL', C: '08P01' });
    expect(process.memoryUsage().rss - rss).toBeLessThan(200 * 1024 * 1024);
    await otherSessionsUnaffected();
  });

  it('a length field smaller than its header', async () => {
    const s = await RawConn.startup(h.conn.port, h.conn.user, h.conn.database);
    s.write(Buffer.from([0x51, 0, 0, 0, 2]));
    expect(fatalOf(await s.readToEnd())).toMatchObject({ S: 'FATAL', C: '08P01' });
    await otherSessionsUnaffected();
  });

  it('an unknown message type, a second StartupMessage, and a PasswordMessage after authentication', async () => {
    for (const bad of [
      Buffer.from([0x21, 0, 0, 0, 4]), // '!'
      serialize.startup({ user: 'x' }), // starts with 0x00
      serialize.password('secret'), // 'p' out of order
    ]) {
      const s = await RawConn.startup(h.conn.port, h.conn.user, h.conn.database);
      s.write(bad);
      const ms = await s.readToEnd();
      expect(fatalOf(ms)).toMatchObject({ S: 'FATAL', C: '08P01' });
    }
    await otherSessionsUnaffected();
  });

  it('a message with a malformed body (no string terminator)', async () => {
    const s = await RawConn.startup(h.conn.port, h.conn.user, h.conn.database);
    const q = Buffer.from('QxxxxSELECT 1');
    q.writeInt32BE(q.length - 1, 1);
    s.write(q);
    expect(fatalOf(await s.readToEnd())).toMatchObject({ S: 'FATAL', C: '08P01' });
    await otherSessionsUnaffected();
  });

  it('truncated messages, then the client disconnects: nothing reaches Postgres, no backend remains', async () => {
    const before = 1; // only the witness session (earlier tests' backends may still be exiting)
    const s = await RawConn.startup(h.conn.port, h.conn.user, h.conn.database);
    const ins = serialize.query(`INSERT INTO fz VALUES (9999, 'half')`);
    s.write(ins.subarray(0, ins.length - 3));
    await new Promise((r) => setTimeout(r, 100));
    s.destroy();
    await eventually(async () => (await h.backendCount()) === before, 10_000, 'backend to exit');
    const r = await witness.query('SELECT count(*)::int AS n FROM fz WHERE id = 9999');
    expect(r.rows[0].n).toBe(0);
    await otherSessionsUnaffected();
  });

  it('a client that disconnects mid-query: the query is cancelled and its backend exits', async () => {
    const before = 1; // only the witness session (earlier tests' backends may still be exiting)
    const s = await RawConn.startup(h.conn.port, h.conn.user, h.conn.database);
    s.write(serialize.query(`BEGIN; INSERT INTO fz VALUES (8888, 'mid'); SELECT pg_sleep(60)`));
    await new Promise((r) => setTimeout(r, 200));
    s.destroy();
    const t0 = Date.now();
    await eventually(async () => (await h.backendCount()) === before, 10_000, 'backend to exit');
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect((await witness.query('SELECT count(*)::int AS n FROM fz WHERE id = 8888')).rows[0].n).toBe(0);
    await otherSessionsUnaffected();
  });

  it('a client that stops reading while the server streams a big result does not stall others', async () => {
    const s = await RawConn.startup(h.conn.port, h.conn.user, h.conn.database);
    s.socket.pause();
    s.write(serialize.query(`SELECT g, repeat('y', 1000) FROM generate_series(1, 200000) g`));
    await new Promise((r) => setTimeout(r, 300));
    await otherSessionsUnaffected();
    s.destroy();
  });
});

// ---------------------------------------------------------------- fuzz


describe('fuzz', () => {
  it('random and mutated messages on many connections; other sessions keep working', async () => {
    const seed = Number(process.env.WINNOW_FUZZ_SEED ?? 20261121);
    const rand = seededRandom(seed);
    const int = (n: number) => Math.floor(rand() * n);
    const pick = <T>(xs: T[]): T => xs[int(xs.length)];
    const corpus: Buffer[][] = [
      [serialize.query('SELECT id, t FROM fz WHERE id < 5')],
      [serialize.query(`INSERT INTO fz VALUES (${1000 + int(1000)}, 'fuzz') ON CONFLICT DO NOTHING`)],
      [serialize.parse({ text: 'SELECT t FROM fz WHERE id = $1' }), serialize.bind({ values: ['3'] }), serialize.describe({ type: 'P' }), serialize.execute({}), serialize.sync()],
      [serialize.parse({ name: 'n1', text: 'SELECT $1::int + 1', types: [23] }), serialize.bind({ statement: 'n1', portal: 'q', values: ['1'] }), serialize.execute({ portal: 'q', rows: 1 }), serialize.sync()],
      [serialize.query('COPY (SELECT * FROM fz LIMIT 3) TO STDOUT')],
      [serialize.query('BEGIN'), serialize.query('SELECT 1'), serialize.query('ROLLBACK')],
      [serialize.copyData(Buffer.from('1\tx\n')), serialize.copyDone()],
      [serialize.flush(), serialize.sync()],
      [serialize.close({ type: 'S', name: 'n1' }), serialize.sync()],
    ];
    const mutate = (b: Buffer): Buffer => {
      const m = Buffer.from(b);
      switch (int(7)) {
        case 0: // bit flips
          for (let i = 0, n = 1 + int(4); i < n; i++) m[int(m.length)] ^= 1 << int(8);
          return m;
        case 1: // truncation
          return m.subarray(0, int(m.length));
        case 2: // length corruption
          if (m.length >= 5) m.writeInt32BE(pick([0, 1, 3, -1, -5, 0x7fffffff, 0x40000000, m.readInt32BE(1) + 1 + int(50), int(1 << 20)]) | 0, 1);
          return m;
        case 3: // random type byte
          m[0] = int(256);
          return m;
        case 4: // random bytes
          return Buffer.from(Array.from({ length: 1 + int(64) }, () => int(256)));
        case 5: // duplicated tail
          return Buffer.concat([m, m.subarray(int(m.length))]);
        default:
          return m; // valid
      }
    };

    const before = 1; // only the witness session (earlier tests' backends may still be exiting)
    const rssBefore = process.memoryUsage().rss;
    const deadline = Date.now() + 30_000;
    const total = 300;
    let done = 0;
    let fatals = 0;
    let next = 0;

    const one = async (i: number) => {
      const preStartup = rand() < 0.3;
      const c = await RawConn.connect(h.conn.port);
      try {
        if (preStartup) {
          const startup = serialize.startup({ user: h.conn.user, database: h.conn.database });
          const variants = [
            mutate(startup),
            Buffer.from(Array.from({ length: 1 + int(100) }, () => int(256))),
            Buffer.concat([Buffer.from([0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f]), mutate(startup)]), // SSLRequest then mutated startup
            startup.subarray(0, int(startup.length)),
          ];
          c.write(pick(variants));
        } else {
          c.write(serialize.startup({ user: h.conn.user, database: h.conn.database }));
          await c.readUntil('Z');
          const msgs = pick(corpus).map((m) => (rand() < 0.5 ? mutate(m) : m));
          for (const m of msgs) c.write(m);
        }
        // Read what comes back for a short while; every byte must frame as a valid backend message.
        const until = Date.now() + 150 + int(250);
        while (Date.now() < until) {
          const m = await c.read(Math.max(1, until - Date.now())).catch(() => undefined);
          if (m === null) break; // closed by the server
          if (m === undefined) break; // quiet
          if (m.type === 'E' && errorFields(m.body).S === 'FATAL') fatals++;
        }
      } finally {
        c.destroy();
        done++;
      }
      if (i % 50 === 0) await witnessWorks();
    };

    const workers = Array.from({ length: 6 }, async () => {
      while (next < total && Date.now() < deadline) await one(next++);
    });
    await Promise.all(workers);
    expect(done).toBeGreaterThan(100);
    expect(fatals).toBeGreaterThan(10);
    // The server is fine: existing and new sessions work, no backend is left behind, memory is bounded.
    await otherSessionsUnaffected();
    await eventually(async () => (await h.backendCount()) === before, 20_000, 'fuzzed backends to exit').catch(async (e) => {
      const d = await h.direct();
      const r = await d.query(`SELECT pid, state, wait_event_type, wait_event, left(query, 80) AS q, now() - backend_start AS age FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`);
      await d.end();
      throw new Error(`${e.message}; sessions=${h.winnow.sessionCount()}; backends=${JSON.stringify(r.rows)}`);
    });
    expect(h.winnow.sessionCount()).toBe(1); // just the witness
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(300 * 1024 * 1024);
    const r = await witness.query('SELECT count(*)::int AS n FROM fz WHERE id <= 200');
    expect(r.rows[0].n).toBe(200);
    expect(witnessQueries).toBeGreaterThan(5);
  }, 90_000);
});
