// Codecs named after the protocol messages: what Winnow writes, node-postgres and Postgres read.
import { expect, test } from 'vitest';
import { serialize } from 'pg-protocol';
import { Bind, decodeBind } from '../../server/protocol/messages.ts';

test('Bind re-encodes a decoded Bind byte for byte (NULLs, binary formats, result formats)', () => {
  const frame = serialize.bind({ portal: 'p1', statement: 's1', values: ['abc', null, Buffer.from([1, 2, 3])], binary: true });
  const m = decodeBind(frame);
  expect(m.params.map((p) => (p === null ? null : [...p]))).toEqual([[...Buffer.from('abc')], null, [1, 2, 3]]);
  expect(Bind(m).equals(frame)).toBe(true);
  const rewritten = Bind({ ...m, params: [Buffer.from('[1,2]'), null, Buffer.alloc(0)], paramFormats: [0] });
  expect(decodeBind(rewritten)).toEqual({ ...m, params: [Buffer.from('[1,2]'), null, Buffer.alloc(0)], paramFormats: [0] });
});
