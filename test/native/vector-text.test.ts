// parseVectorText reads pgvector's text form as pgvector's vector_in does: strtof per component, so
// each value is the correctly rounded float4. Postgres's own float4 input (also strtof) is the oracle.
import { afterAll, beforeAll, expect, test } from 'vitest';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { seededRandom } from '../support/random.ts';
import { parseVectorText } from '../../native/index.ts';

let db: TestDatabase;
let c: pg.Client;

beforeAll(async () => {
  db = await createTestDatabase('vt');
  c = new pg.Client({ connectionString: db.url });
  await c.connect();
});

afterAll(async () => {
  await c?.end();
  await db?.drop();
});

const parse = (s: string) => parseVectorText(Buffer.from(s));

test('components are the floats Postgres reads (many digits, exponents, signs, hex)', async () => {
  const rnd = seededRandom(77);
  const numbers: string[] = [];
  for (let i = 0; i < 3000; i++) {
    const x = (rnd() * 2 - 1) * 10 ** Math.floor(rnd() * 20 - 10);
    numbers.push(i % 3 === 0 ? x.toPrecision(17) : i % 3 === 1 ? x.toExponential(12) : String(x));
  }
  numbers.push('+1.5', '-0', '1e-45', '3.4028234e38', '0x1p-3', '.5', '5.', '1.00000005960464477539062500001');
  const mine = parse(`[${numbers.join(',')}]`)!;
  const r = await c.query(`SELECT array_agg(x::float4::float8::text ORDER BY i) AS a FROM unnest($1::text[]) WITH ORDINALITY u(x, i)`, [numbers]);
  const theirs = (r.rows[0].a as string[]).map(Number);
  expect(Array.from(mine)).toEqual(theirs);
});

test('white space as pgvector allows it; anything vector_in rejects gives null', () => {
  expect(Array.from(parse(' [ 1 ,2.5 , -3 ] ')!)).toEqual([1, 2.5, -3]);
  for (const bad of ['', '[]', '[ ]', '1,2', '[1,2', '[1,,2]', '[1 2]', '[1,2]x', '[NaN]', '[inf]', '[-Infinity]', '[1e39]', '["1"]', '[[1]]', '{1,2}']) {
    expect(parse(bad), bad).toBeNull();
  }
  expect(() => parseVectorText('[1]' as unknown as Uint8Array)).toThrow(TypeError);
});
