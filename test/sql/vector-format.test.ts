// Unit tests for pgvector's formats (sql/vector-format.ts): the text parser's checks and errors,
// float16 rounding, and the binary conversions in both directions.
import { describe, expect, test } from 'vitest';
import {
  PgvectorError, arrayBinaryToVectorBinary, arrayTextToVectorText, float4ToText, halfBitsToNumber, numberToHalfBits,
  parseVectorText, roundToHalf, vectorBinaryToArrayBinary, vectorTextToArrayText,
} from '../../sql/vector-format.ts';

function err(fn: () => unknown): { code: string; message: string; detail?: string } {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(PgvectorError);
    const p = e as PgvectorError;
    return { code: p.code, message: p.message, ...(p.detail ? { detail: p.detail } : {}) };
  }
  throw new Error('expected an error');
}

describe('text', () => {
  test('valid literals become array text, keeping plain digits', () => {
    expect(vectorTextToArrayText('[1,2,3]')).toBe('{1,2,3}');
    expect(vectorTextToArrayText(' [ 1.5 ,-2e3, .5,5. ] ')).toBe('{1.5,-2e3,.5,5.}');
    expect(vectorTextToArrayText('[1e-50]')).toBe('{0}'); // strtof underflow: 0, not float4in's error
    expect(vectorTextToArrayText('[0x10]')).toBe('{16}');
    expect(vectorTextToArrayText('[1.0001, 0.1]', 'halfvec')).toBe('{1,0.099975586}');
  });
  test('pgvector errors', () => {
    expect(err(() => parseVectorText('[1,2'))).toEqual({ code: '22P02', message: 'invalid input syntax for type vector: "[1,2"' });
    expect(err(() => parseVectorText('[1,2]]'))).toEqual({ code: '22P02', message: 'invalid input syntax for type vector: "[1,2]]"', detail: 'Junk after closing right brace.' });
    expect(err(() => parseVectorText('{1}'))).toEqual({ code: '22P02', message: 'invalid input syntax for type vector: "{1}"', detail: 'Vector contents must start with "[".' });
    expect(err(() => parseVectorText('[]'))).toEqual({ code: '22000', message: 'vector must have at least 1 dimension' });
    expect(err(() => parseVectorText('[nan]'))).toEqual({ code: '22000', message: 'NaN not allowed in vector' });
    expect(err(() => parseVectorText('[-Infinity]'))).toEqual({ code: '22000', message: 'infinite value not allowed in vector' });
    expect(err(() => parseVectorText('[4e38]'))).toEqual({ code: '22003', message: '"4e38" is out of range for type vector' });
    expect(err(() => parseVectorText('[70000]', 'halfvec'))).toEqual({ code: '22003', message: '"70000" is out of range for type halfvec' });
    expect(err(() => parseVectorText('[1,2]', 'vector', 3))).toEqual({ code: '22000', message: 'expected 3 dimensions, not 2' });
    expect(err(() => parseVectorText(`[${new Array(16001).fill(1).join(',')}]`)).message).toBe('vector cannot have more than 16000 dimensions');
  });
  test('array text back to pgvector text', () => {
    expect(arrayTextToVectorText('{1,2.5,-3e-05}')).toBe('[1,2.5,-3e-05]');
  });
  test('float4 shortest text round-trips', () => {
    for (const x of [0.1, 1 / 3, 1e-7, 123456789, 3.4028234663852886e38]) {
      const f = Math.fround(x);
      expect(Math.fround(Number(float4ToText(f)))).toBe(f);
    }
  });
});

describe('float16', () => {
  test('round half to even, subnormals, overflow', () => {
    expect(roundToHalf(2049)).toBe(2048);
    expect(roundToHalf(2051)).toBe(2052);
    expect(roundToHalf(65504)).toBe(65504);
    expect(roundToHalf(65520)).toBe(Infinity);
    expect(roundToHalf(6e-8)).toBe(2 ** -24);
    expect(roundToHalf(2e-8)).toBe(0);
    expect(halfBitsToNumber(numberToHalfBits(-1.5))).toBe(-1.5);
  });
});

describe('binary', () => {
  const pgv = (vals: number[]) => {
    const b = Buffer.alloc(4 + 4 * vals.length);
    b.writeInt16BE(vals.length, 0);
    vals.forEach((v, i) => b.writeFloatBE(v, 4 + 4 * i));
    return b;
  };
  test('pgvector binary <-> float4 array binary', () => {
    const arr = vectorBinaryToArrayBinary(pgv([1, -2.5, 3]));
    expect(arr.readInt32BE(0)).toBe(1); // ndim
    expect(arr.readUInt32BE(8)).toBe(700); // float4
    expect(arr.readInt32BE(12)).toBe(3);
    expect(arrayBinaryToVectorBinary(arr).equals(pgv([1, -2.5, 3]))).toBe(true);
  });
  test('halfvec uses float2 on the wire', () => {
    const h = Buffer.from([0, 2, 0, 0, 0x3e, 0x00, 0x40, 0x00]);
    const arr = vectorBinaryToArrayBinary(h, 'halfvec');
    expect(arr.readFloatBE(24)).toBe(1.5);
    expect(arrayBinaryToVectorBinary(arr, 'halfvec').equals(h)).toBe(true);
  });
  test('binary checks', () => {
    const nan = pgv([NaN]);
    expect(err(() => vectorBinaryToArrayBinary(nan)).message).toBe('NaN not allowed in vector');
    expect(err(() => vectorBinaryToArrayBinary(pgv([1, 2]), 'vector', 3)).message).toBe('expected 3 dimensions, not 2');
    expect(err(() => vectorBinaryToArrayBinary(Buffer.from([0, 0, 0, 0]))).message).toBe('vector must have at least 1 dimension');
  });
});
