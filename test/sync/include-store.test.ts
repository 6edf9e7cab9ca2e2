// IncludeStore against a plain Map model under random inserts/updates/partial updates/deletes/clears,
// snapshot round trip and damage detection, value decoding, and the cost of matching() per 100k rows.
import { expect, test } from 'vitest';
import { IncludeStore, decodeIncludeBinary, decodeNumericBinary, parseIncludeText, type IncludeValue } from '../../sync/include-store.ts';
import { prng } from '../planner/helpers.ts';

const DEF = [
  { name: 'category', type: 'text' },
  { name: 'price', type: 'numeric' },
  { name: 'qty', type: 'int4' },
  { name: 'big', type: 'int8' },
  { name: 'ok', type: 'bool' },
];
const CATS = ['books', 'music', 'toys', 'garden', 'food'];

function randomRow(rnd: () => number): IncludeValue[] {
  return [
    rnd() < 0.1 ? null : CATS[Math.floor(rnd() * CATS.length)],
    rnd() < 0.1 ? null : Math.round(rnd() * 100000) / 100,
    rnd() < 0.1 ? null : Math.floor(rnd() * 1000) - 500,
    rnd() < 0.1 ? null : BigInt(Math.floor(rnd() * 1e9)) * 1000003n,
    rnd() < 0.1 ? null : rnd() < 0.5,
  ];
}

function expectEqual(store: IncludeStore, model: Map<bigint, IncludeValue[]>) {
  expect(store.size).toBe(model.size);
  const all = store.matching(() => true);
  expect(Array.from(all)).toEqual([...model.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
  for (const [id, row] of model) DEF.forEach((c, i) => expect(store.value(id, c.name)).toEqual(row[i]));
  const pred = (get: (c: string) => IncludeValue) => { const p = get('price'); return get('category') === 'toys' && p !== null && (p as number) < 500; };
  const expected = [...model].filter(([, r]) => r[0] === 'toys' && r[1] !== null && (r[1] as number) < 500).map(([id]) => id).sort((a, b) => (a < b ? -1 : 1));
  expect(Array.from(store.matching(pred))).toEqual(expected);
}

test('random inserts, updates (full and partial), deletes and clear agree with a Map model; snapshots round-trip', () => {
  const rnd = prng(42);
  const store = new IncludeStore(DEF);
  const model = new Map<bigint, IncludeValue[]>();
  let next = 1n;
  for (let round = 0; round < 30; round++) {
    for (let i = 0; i < 2000; i++) {
      const op = rnd();
      if (op < 0.45) {
        // Mostly increasing ids (the bulk-load path), sometimes an old id again.
        const id = rnd() < 0.9 ? next++ : BigInt(1 + Math.floor(rnd() * Number(next)));
        const row = randomRow(rnd);
        store.set(id, row);
        model.set(id, row);
      } else if (op < 0.65) {
        const id = BigInt(1 + Math.floor(rnd() * Number(next)));
        if (!model.has(id)) continue;
        // Partial: only some columns change (an UPDATE of one INCLUDE column; 'unchanged' TOAST values).
        const row = randomRow(rnd);
        const partial = row.map((v) => (rnd() < 0.5 ? undefined : v));
        store.set(id, partial);
        model.set(id, model.get(id)!.map((old, c) => (partial[c] === undefined ? old : partial[c]!)));
      } else {
        const id = BigInt(1 + Math.floor(rnd() * Number(next)));
        expect(store.delete(id)).toBe(model.delete(id));
      }
    }
    expect(store.value(-5n, 'category')).toBeUndefined();
    expectEqual(store, model);
    const copy = IncludeStore.deserialize(store.serialize(), DEF);
    expectEqual(copy, model);
    if (round === 20) {
      store.clear();
      model.clear();
      expectEqual(store, model);
    }
  }
  expect(store.typeOf('qty')).toBe('int4');
  expect(() => store.value(1n, 'nope')).toThrow(/not an INCLUDE column/);
}, 180_000); // ~15 s alone; over a minute on 2 loaded cores beside the other test files

test('damaged or mismatched snapshots are rejected', () => {
  const s = new IncludeStore(DEF);
  for (let i = 0; i < 100; i++) s.set(BigInt(i), randomRow(prng(i)));
  const b = s.serialize();
  const bad = Buffer.from(b);
  bad[bad.length - 20] ^= 1;
  expect(() => IncludeStore.deserialize(bad, DEF)).toThrow(/checksum/);
  expect(() => IncludeStore.deserialize(b.subarray(0, b.length - 9), DEF)).toThrow();
  expect(() => IncludeStore.deserialize(b, DEF.slice(1))).toThrow(/other column definitions/);
});

test('binary and text decoding of the supported types', () => {
  const num = (text: string) => parseIncludeText('numeric', text);
  // numeric_send of 12345.678: ndigits 3, weight 1, sign 0, dscale 3, digits 1 2345 6780
  const b = Buffer.alloc(14);
  [3, 1, 0, 3, 1, 2345, 6780].forEach((v, i) => b.writeInt16BE(v, 2 * i));
  expect(decodeNumericBinary(b)).toBe(12345.678);
  expect(num('12345.678')).toBe(12345.678);
  // -0.00012: ndigits 1, weight -1, sign 0x4000, digits 1.2 → 0.0001|2000 : digits [1, 2000], weight -1
  const c = Buffer.alloc(12);
  [2, -1, 0x4000, 5, 1, 2000].forEach((v, i) => (i === 2 ? c.writeUInt16BE(v, 2 * i) : c.writeInt16BE(v, 2 * i)));
  expect(decodeNumericBinary(c)).toBe(-0.00012);
  const i8 = Buffer.alloc(8);
  i8.writeBigInt64BE(-9007199254740993n);
  expect(decodeIncludeBinary('int8', i8)).toBe(-9007199254740993n);
  expect(parseIncludeText('int8', '-9007199254740993')).toBe(-9007199254740993n);
  expect(decodeIncludeBinary('bool', Buffer.from([1]))).toBe(true);
  expect(parseIncludeText('bool', 'f')).toBe(false);
  expect(decodeIncludeBinary('varchar', Buffer.from('héllo'))).toBe('héllo');
  expect(parseIncludeText('float8', 'Infinity')).toBe(Infinity);
  expect(parseIncludeText('text', null)).toBe(null);
});

test('matching() cost over 100k rows (logged)', () => {
  const rnd = prng(7);
  const store = new IncludeStore([{ name: 'category', type: 'text' }, { name: 'price', type: 'float8' }]);
  const N = 100_000;
  for (let i = 0; i < N; i++) store.set(BigInt(i * 3), [CATS[i % 5], rnd() * 1000]);
  const preds: [string, (g: (c: string) => IncludeValue) => boolean][] = [
    ["category = 'toys'", (g) => g('category') === 'toys'],
    ["category = 'toys' AND price < 100", (g) => g('category') === 'toys' && (g('price') as number) < 100],
    ['price < 500', (g) => (g('price') as number) < 500],
  ];
  for (const [label, p] of preds) {
    for (let w = 0; w < 5; w++) store.matching(p); // warm up
    const runs = 20;
    const t = performance.now();
    let n = 0;
    for (let r = 0; r < runs; r++) n = store.matching(p).length;
    const us = ((performance.now() - t) * 1000) / runs;
    console.log(`IncludeStore.matching(${label}) over ${N} rows: ${us.toFixed(0)} µs (${n} ids)`);
    expect(n).toBeGreaterThan(0);
  }
  // Out-of-order ids: the sorted order is rebuilt once, then matching is as fast again.
  store.set(1n, ['toys', 1]);
  const t = performance.now();
  const r = store.matching((g) => g('category') === 'toys');
  console.log(`first matching() after an out-of-order insert (re-sort): ${((performance.now() - t) * 1000).toFixed(0)} µs`);
  expect(r[0]).toBe(1n);
});
