// Each SIMD kernel against its scalar reference, bit for bit, plus the scalar
// reference against an independent JS model of the same arithmetic.
import { describe, expect, it } from 'vitest';
import { testing } from '../../native/index.ts';
import { rng } from './helpers.ts';
import { float16ToFloat32 } from '../../bench/lib/datasets.ts';

const info = testing.kernelInfo();
const impls = info.avx2 ? (['scalar', 'avx2'] as const) : (['scalar'] as const);
const lengths = [0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 127, 128, 129, 300, 512, 784, 1000];

function randFloats(n: number, r: () => number, scale = 1): Float32Array {
  return new Float32Array(n).map(() => (r() * 2 - 1) * scale);
}

describe('SIMD kernels', () => {
  it('reports the dispatched implementation (this CI machine type has AVX2)', () => {
    expect(['scalar', 'avx2']).toContain(info.active);
    // The project targets x86-64 machines with AVX2; if this fails the fast path is off.
    expect(info.avx2).toBe(true);
    expect(info.active).toBe(process.env.WINNOW_SIMD === 'scalar' ? 'scalar' : 'avx2');
  });

  for (const name of ['dot', 'l2sq'] as const) {
    it(`${name}: avx2 == scalar bit for bit on every length`, () => {
      const r = rng(42);
      for (const n of lengths) {
        for (let rep = 0; rep < 5; rep++) {
          const a = randFloats(n, r, 10 ** (rep - 2)), b = randFloats(n, r, 3);
          const s = testing.kernel(name, 'scalar', a, b);
          for (const impl of impls) expect(Object.is(testing.kernel(name, impl, a, b), s), `${name} n=${n} ${impl}`).toBe(true);
          // And the scalar result is the right number (float64 reference, loose tolerance).
          let ref = 0;
          for (let i = 0; i < n; i++) ref += name === 'dot' ? a[i] * b[i] : (a[i] - b[i]) ** 2;
          expect(Math.abs(s - ref)).toBeLessThanOrEqual(1e-4 * (Math.abs(ref) + 1));
        }
      }
    });
  }

  for (const name of ['dot_f16', 'l2sq_f16'] as const) {
    it(`${name}: avx2 == scalar bit for bit, and equals the float32 kernel on widened halves`, () => {
      const r = rng(7);
      for (const n of lengths) {
        const a = randFloats(n, r, 2);
        const bf = randFloats(n, r, 2);
        const bh = testing.floatToHalf(bf);
        const s = testing.kernel(name, 'scalar', a, bh);
        for (const impl of impls) expect(Object.is(testing.kernel(name, impl, a, bh), s), `${name} n=${n} ${impl}`).toBe(true);
        // Widening is exact, so the f16 kernel must equal the f32 kernel on the widened values.
        const widened = new Float32Array(n).map((_, i) => float16ToFloat32(bh[i]));
        expect(Object.is(testing.kernel(name === 'dot_f16' ? 'dot' : 'l2sq', 'scalar', a, widened), s)).toBe(true);
      }
    });
  }

  it('float16 conversion rounds to nearest even and handles specials', () => {
    const cases: Array<[number, number]> = [
      [0, 0x0000], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [65504, 0x7bff], [65520, 0x7c00], [1e9, 0x7c00],
      [Infinity, 0x7c00], [-Infinity, 0xfc00], [2 ** -24, 0x0001], [2 ** -25, 0x0000], [3 * 2 ** -26, 0x0001],
      [2 ** -14, 0x0400], [1 + 2 ** -11, 0x3c00] /* tie -> even */, [1 + 3 * 2 ** -11, 0x3c02], [0.1, 0x2e66],
    ];
    const out = testing.floatToHalf(new Float32Array(cases.map((c) => c[0])));
    cases.forEach(([v, h], i) => expect(out[i], `half(${v})`).toBe(h));
    expect(testing.floatToHalf(new Float32Array([NaN]))[0] & 0x7c00).toBe(0x7c00);
    // Round trip of every finite half is exact.
    const all = new Float32Array(0x7c00).map((_, h) => float16ToFloat32(h));
    const back = testing.floatToHalf(all);
    for (let h = 0; h < 0x7c00; h++) if (back[h] !== h) throw new Error(`half ${h} does not round-trip`);
  });

  it('fastscan: avx2 == scalar == JS model of the blocked 4-bit layout', () => {
    const r = rng(99);
    for (const m of [2, 4, 6, 16, 32, 64, 128, 256]) {
      for (const n of [1, 31, 32, 33, 100, 256]) {
        const codes = new Uint8Array(n * m).map(() => Math.floor(r() * 16));
        const lut = new Uint8Array(m * 16).map(() => Math.floor(r() * 256));
        const packed = testing.packCodes(codes, m);
        const nb = Math.ceil(n / 32);
        const s = testing.kernel('fastscan', 'scalar', packed, nb, m, lut);
        for (const impl of impls) expect(Array.from(testing.kernel('fastscan', impl, packed, nb, m, lut)), `m=${m} n=${n} ${impl}`).toEqual(Array.from(s));
        for (let i = 0; i < n; i++) {
          let acc = 0;
          for (let j = 0; j < m; j++) acc += lut[j * 16 + codes[i * m + j]];
          expect(s[i]).toBe(acc);
        }
        // Padding slots of the last block decode as code 0.
        for (let i = n; i < nb * 32; i++) {
          let acc = 0;
          for (let j = 0; j < m; j++) acc += lut[j * 16];
          expect(s[i]).toBe(acc);
        }
      }
    }
  });

  it('fastscan_mask: sums and survivor masks agree between avx2, scalar and a JS model', () => {
    const r = rng(5);
    for (const m of [2, 8, 64, 128]) {
      const n = 96;
      const codes = new Uint8Array(n * m).map(() => Math.floor(r() * 16));
      const lut = new Uint8Array(m * 16).map(() => Math.floor(r() * 256));
      const packed = testing.packCodes(codes, m);
      const plain = testing.kernel('fastscan', 'scalar', packed, 3, m, lut);
      const sorted = Array.from(plain).sort((a, b) => a - b);
      for (const thr of [0, sorted[0], sorted[10], sorted[48], sorted[95], 65535]) {
        const ref = testing.kernel('fastscan_mask', 'scalar', packed, 3, m, lut, thr);
        expect(Array.from(ref.sums)).toEqual(Array.from(plain));
        for (let b = 0; b < 3; b++) {
          let mask = 0;
          for (let i = 0; i < 32; i++) if (plain[b * 32 + i] <= thr) mask |= 1 << i;
          expect(ref.masks[b]).toBe(mask >>> 0);
        }
        for (const impl of impls) {
          const got = testing.kernel('fastscan_mask', impl, packed, 3, m, lut, thr);
          expect(Array.from(got.sums)).toEqual(Array.from(ref.sums));
          expect(Array.from(got.masks)).toEqual(Array.from(ref.masks));
        }
      }
    }
  });

  it('fastscan accumulates up to 256 × 255 without uint16 overflow', () => {
    const m = 256;
    const codes = new Uint8Array(32 * m).fill(15);
    const lut = new Uint8Array(m * 16).fill(255);
    for (const impl of impls) {
      const out = testing.kernel('fastscan', impl, testing.packCodes(codes, m), 1, m, lut);
      expect(Array.from(out)).toEqual(new Array(32).fill(256 * 255));
    }
  });
});

