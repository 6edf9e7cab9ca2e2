// The frame splitter: any chunking of the byte stream yields the same frames; bad lengths are refused.
import { describe, expect, it } from 'vitest';
import { serialize } from 'pg-protocol';
import { Framer, ProtocolViolation } from '../../server/protocol/framer.ts';
import { FRONTEND_TYPES, SMALL_FRONTEND_TYPES } from '../../server/protocol/messages.ts';
import { ParseCache, loadParser } from '../../sql/parse.ts';

function messages(): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < 60; i++) {
    out.push(serialize.query(`SELECT ${i}`));
    out.push(serialize.parse({ name: `s${i}`, text: 'SELECT $1::text', types: [25] }));
    out.push(serialize.bind({ statement: `s${i}`, values: ['x'.repeat(i * 37)] }));
    out.push(serialize.execute({ rows: i }));
    out.push(serialize.copyData(Buffer.alloc(i * 101, i)));
    out.push(serialize.sync());
  }
  return out;
}

describe('Framer', () => {
  it('yields identical frames for every chunking, via next() and via peekRun()/consume()', () => {
    const msgs = messages();
    const stream = Buffer.concat(msgs);
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    for (const maxChunk of [2, 7, 64, 1000, 100_000]) {
      const a = new Framer(true, 1 << 30, (t) => FRONTEND_TYPES.has(t));
      const b = new Framer(true, 1 << 30);
      const gotA: Buffer[] = [];
      const gotB: Buffer[] = [];
      for (let p = 0; p < stream.length; ) {
        const n = Math.max(1, Math.floor(rand() * maxChunk));
        const chunk = stream.subarray(p, p + n);
        p += n;
        a.push(chunk);
        let f;
        while ((f = a.next()) !== null) gotA.push(Buffer.from(f));
        b.push(chunk);
        let run;
        while ((run = b.peekRun()) !== null) {
          let q = 0;
          while (q + 5 <= run.length && q + 1 + run.readInt32BE(q + 1) <= run.length) {
            const end = q + 1 + run.readInt32BE(q + 1);
            gotB.push(Buffer.from(run.subarray(q, end)));
            q = end;
          }
          b.consume(q);
        }
      }
      expect(gotA.length).toBe(msgs.length);
      expect(Buffer.concat(gotA).equals(stream)).toBe(true);
      expect(gotB.length).toBe(msgs.length);
      expect(Buffer.concat(gotB).equals(stream)).toBe(true);
      expect(a.buffered).toBe(0);
    }
  });

  it('refuses negative, too small and oversized lengths, and unknown types, from the header alone', () => {
    const cases: [number[], RegExp][] = [
      [[0x51, 0x80, 0, 0, 0], /invalid message length -2147483648/],
      [[0x51, 0x7f, 0xff, 0xff, 0xff], /invalid message length 2147483647/],
      [[0x51, 0x40, 0, 0, 0], /invalid message length 1073741824/],
      [[0x51, 0, 0, 0, 3], /invalid message length 3/],
      [[0x00], /invalid frontend message type 0/],
      [[0x53, 0, 1, 0, 0], /invalid message length 65536/], // Sync is a small message
    ];
    for (const [bytes, msg] of cases) {
      const f = new Framer(true, 0x3fffffff, (t) => FRONTEND_TYPES.has(t), SMALL_FRONTEND_TYPES);
      f.push(Buffer.from(bytes));
      expect(() => f.next()).toThrow(ProtocolViolation);
      const g = new Framer(true, 0x3fffffff, (t) => FRONTEND_TYPES.has(t), SMALL_FRONTEND_TYPES);
      g.push(Buffer.from(bytes));
      expect(() => g.next()).toThrow(msg);
    }
    const s = new Framer(false, 10000);
    s.push(Buffer.from([0, 0, 0x27, 0x11, 0, 3, 0, 0]));
    expect(() => s.next()).toThrow(/invalid message length 10001/);
  });
});

describe('parse cache', () => {
  it('caches by statement text, evicts least recently used, never throws on bad SQL', async () => {
    await loadParser();
    const c = new ParseCache(4);
    const r = c.get('SELECT 1; UPDATE t SET a = 1');
    expect(r.ok && r.statements.map((s) => s.kind)).toEqual(['SelectStmt', 'UpdateStmt']);
    expect(c.get('SELECT 1; UPDATE t SET a = 1')).toBe(r);
    expect(c.hits).toBe(1);
    const bad = c.get('SELEC 1');
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.error.message).toBe('syntax error at or near "SELEC"');
    for (let i = 0; i < 10; i++) c.get(`SELECT ${i}`);
    expect(c.size).toBe(4);
  });
});
