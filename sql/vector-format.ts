// pgvector's wire formats <-> the Postgres float4-array forms Winnow stores vectors in.
//
// Text: pgvector '[1,2,3]' <-> array '{1,2,3}'. Binary: pgvector send format (int16 dim, int16 unused,
// float4 big-endian values; halfvec: float2) <-> Postgres array binary format (int32 ndim, int32 hasnull,
// uint32 elemtype, then per dimension int32 length + int32 lower bound, then per element int32 len + bytes).
// Pure functions: the parser reproduces pgvector 0.8's vector_in/halfvec_in checks and error texts.

export type VectorKind = 'vector' | 'halfvec';

export const VECTOR_MAX_DIM = 16000;
const FLOAT4_OID = 700;

/** An error to report to the client exactly as pgvector would (SQLSTATE + message + optional detail). */
export class PgvectorError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly detail?: string,
  ) {
    super(message);
    this.name = 'PgvectorError';
  }
}

const isSpace = (c: string | undefined): boolean =>
  c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\v' || c === '\f';

// What strtof consumes from the start of a string (after its own whitespace skip).
// Sticky (matched at lastIndex, no slicing). Group 1 = a plain decimal, which float4in reads exactly
// as strtof does, so its digits can be handed to Postgres unchanged.
const NUMBER_RE = /[+-]?(?:0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?\d+)?|((?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|inf(?:inity)?|nan(?:\([0-9A-Za-z_]*\))?)/iy;

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** Nearest float16 value (round half to even) as a JS number; Infinity on overflow. */
export function roundToHalf(x: number): number {
  return halfBitsToNumber(numberToHalfBits(x));
}

/** IEEE float16 bits of a float32 value (round half to even). */
export function numberToHalfBits(x: number): number {
  F32[0] = x;
  const f = U32[0];
  const sign = (f >>> 16) & 0x8000;
  const exp = (f >>> 23) & 0xff;
  let mant = f & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    if (rem > half || (rem === half && (r & 1))) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1))) r++;
  return sign | r; // a carry into the exponent is correct, up to infinity (0x7c00)
}

export function halfBitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** Shortest decimal text that reads back (strtof) as this float32 value — Postgres's float4 output. */
export function float4ToText(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  let s = '';
  for (let p = 1; p <= 9; p++) {
    s = x.toPrecision(p);
    if (Math.fround(Number(s)) === x) break;
  }
  // Postgres (Ryu) style: plain digits when the exponent is small, otherwise d.ddde+XX.
  const n = Number(s);
  const exp = Math.floor(Math.log10(Math.abs(n)));
  const digits = s.replace(/^-/, '').replace(/e.*$/, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '') || '0';
  if (exp < -4 || exp >= 15) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${n < 0 ? '-' : ''}${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  return String(n);
}

export interface ParsedVector {
  /** The element texts to hand to Postgres's float4 input (already validated and normalised). */
  elements: string[];
  values: number[];
}

/**
 * Parses pgvector's text format with pgvector's exact checks and errors (vector_in / halfvec_in).
 * typmod -1 = unconstrained.
 */
export function parseVectorText(lit: string, kind: VectorKind = 'vector', typmod = -1): ParsedVector {
  const syntax = (detail?: string) =>
    new PgvectorError('22P02', `invalid input syntax for type ${kind}: "${lit}"`, detail);
  let i = 0;
  while (isSpace(lit[i])) i++;
  if (lit[i] !== '[') throw syntax('Vector contents must start with "[".');
  i++;
  while (isSpace(lit[i])) i++;
  if (lit[i] === ']') throw new PgvectorError('22000', `${kind} must have at least 1 dimension`);
  const elements: string[] = [];
  const values: number[] = [];
  for (;;) {
    if (values.length === VECTOR_MAX_DIM) {
      throw new PgvectorError('54000', `${kind} cannot have more than ${VECTOR_MAX_DIM} dimensions`);
    }
    while (isSpace(lit[i])) i++;
    if (i >= lit.length) throw syntax();
    NUMBER_RE.lastIndex = i;
    const m = NUMBER_RE.exec(lit);
    if (!m) throw syntax();
    const token = m[0];
    const decimal = m[1] !== undefined;
    let v = decimal ? Number(token) : parseCNumber(token);
    const f = Math.fround(v);
    if (!Number.isFinite(f) && Number.isFinite(v)) {
      throw new PgvectorError('22003', `"${token}" is out of range for type ${kind}`);
    }
    let out = kind === 'halfvec' ? roundToHalf(f) : f;
    if (Number.isNaN(out)) throw new PgvectorError('22000', `NaN not allowed in ${kind}`);
    if (!Number.isFinite(out)) {
      if (kind === 'halfvec' && Number.isFinite(f)) {
        throw new PgvectorError('22003', `"${token}" is out of range for type ${kind}`);
      }
      throw new PgvectorError('22000', `infinite value not allowed in ${kind}`);
    }
    values.push(out);
    // Pass the user's digits through when they are plain decimals (float4in == strtof); otherwise
    // (underflow to 0, hex, halfvec rounding) hand Postgres the exact value.
    const plain = kind === 'vector' && decimal && (f !== 0 || v === 0);
    elements.push(plain ? token : float4ToText(out));
    i += token.length;
    while (isSpace(lit[i])) i++;
    if (lit[i] === ',') i++;
    else if (lit[i] === ']') {
      i++;
      break;
    } else throw syntax();
    v = 0;
  }
  while (isSpace(lit[i])) i++;
  if (i < lit.length) throw syntax('Junk after closing right brace.');
  if (typmod !== -1 && typmod !== values.length) {
    throw new PgvectorError('22000', `expected ${typmod} dimensions, not ${values.length}`);
  }
  return { elements, values };
}

function parseCNumber(token: string): number {
  const t = token.toLowerCase();
  const neg = t.startsWith('-');
  const body = t.replace(/^[+-]/, '');
  if (body.startsWith('inf')) return neg ? -Infinity : Infinity;
  if (body.startsWith('nan')) return NaN;
  if (body.startsWith('0x')) {
    const m = /^0x([0-9a-f]*)\.?([0-9a-f]*)(?:p([+-]?\d+))?$/.exec(body)!;
    const intPart = m[1] || '0';
    const frac = m[2] || '';
    let v = parseInt(intPart + frac || '0', 16) / 16 ** frac.length;
    v *= 2 ** Number(m[3] ?? 0);
    return neg ? -v : v;
  }
  return Number(token);
}

/**
 * Fast path: a literal made only of plain decimals (no exponent, no run of 38+ digits) can neither
 * overflow, underflow nor hold NaN/Inf, so its digits go to Postgres as they are. One pass over the
 * characters; returns the dimension count, or -1 when the literal needs the full parser.
 */
function plainDims(lit: string): number {
  const n = lit.length;
  let i = 0;
  const space = (c: number) => c === 32 || (c >= 9 && c <= 13);
  while (i < n && space(lit.charCodeAt(i))) i++;
  if (lit.charCodeAt(i) !== 91 /* [ */) return -1;
  i++;
  let dims = 0;
  for (;;) {
    while (i < n && space(lit.charCodeAt(i))) i++;
    let c = lit.charCodeAt(i);
    if (c === 43 || c === 45) c = lit.charCodeAt(++i); // sign
    let digits = 0;
    let run = 0;
    while (c >= 48 && c <= 57) {
      digits++;
      if (++run >= 38) return -1;
      c = lit.charCodeAt(++i);
    }
    if (c === 46 /* . */) {
      c = lit.charCodeAt(++i);
      run = 0;
      while (c >= 48 && c <= 57) {
        digits++;
        if (++run >= 38) return -1;
        c = lit.charCodeAt(++i);
      }
    }
    if (digits === 0) return -1;
    dims++;
    while (i < n && space(lit.charCodeAt(i))) i++;
    c = lit.charCodeAt(i);
    i++;
    if (c === 44 /* , */) continue;
    if (c !== 93 /* ] */) return -1;
    break;
  }
  while (i < n && space(lit.charCodeAt(i))) i++;
  return i === n ? dims : -1;
}

const SPACES_RE = /[ \t\n\r\v\f]+/g;

/** pgvector text -> Postgres array text ('{…}') for a vector/halfvec value. */
export function vectorTextToArrayText(lit: string, kind: VectorKind = 'vector', typmod = -1): string {
  if (kind === 'vector') {
    const dims = plainDims(lit);
    if (dims > 0 && dims <= VECTOR_MAX_DIM && (typmod === -1 || typmod === dims)) {
      const inner = lit.slice(lit.indexOf('[') + 1, lit.lastIndexOf(']'));
      return `{${inner.replace(SPACES_RE, '')}}`;
    }
  }
  return `{${parseVectorText(lit, kind, typmod).elements.join(',')}}`;
}

/** Postgres array text of a float4 array ('{1,2.5}') -> pgvector text ('[1,2.5]'). */
export function arrayTextToVectorText(text: string): string {
  // A vector's array never has nulls, quotes or nesting; lower-bound decoration is possible
  // only for arrays built outside Winnow's functions ('[2:3]={…}').
  const brace = text.indexOf('{');
  return `[${text.slice(brace + 1, text.length - 1)}]`;
}

/** pgvector binary (int16 dim, int16 unused, float4/float2 BE values) -> Postgres float4-array binary. */
export function vectorBinaryToArrayBinary(buf: Buffer, kind: VectorKind = 'vector', typmod = -1): Buffer {
  if (buf.length < 4) throw new PgvectorError('08P01', 'insufficient data left in message');
  const dim = buf.readInt16BE(0);
  const unused = buf.readInt16BE(2);
  if (dim < 1) throw new PgvectorError('22000', `${kind} must have at least 1 dimension`);
  if (dim > VECTOR_MAX_DIM) throw new PgvectorError('54000', `${kind} cannot have more than ${VECTOR_MAX_DIM} dimensions`);
  if (unused !== 0) throw new PgvectorError('22000', 'expected unused to be 0, not ' + unused);
  const size = kind === 'halfvec' ? 2 : 4;
  if (buf.length < 4 + dim * size) throw new PgvectorError('08P01', 'insufficient data left in message');
  if (typmod !== -1 && typmod !== dim) throw new PgvectorError('22000', `expected ${typmod} dimensions, not ${dim}`);
  const out = Buffer.alloc(20 + dim * 8);
  out.writeInt32BE(1, 0);
  out.writeInt32BE(0, 4);
  out.writeUInt32BE(FLOAT4_OID, 8);
  out.writeInt32BE(dim, 12);
  out.writeInt32BE(1, 16);
  for (let k = 0; k < dim; k++) {
    const v = kind === 'halfvec' ? halfBitsToNumber(buf.readUInt16BE(4 + 2 * k)) : buf.readFloatBE(4 + 4 * k);
    if (Number.isNaN(v)) throw new PgvectorError('22000', `NaN not allowed in ${kind}`);
    if (!Number.isFinite(v)) throw new PgvectorError('22000', `infinite value not allowed in ${kind}`);
    out.writeInt32BE(4, 20 + 8 * k);
    out.writeFloatBE(v, 24 + 8 * k);
  }
  return out;
}

/** Postgres float4-array binary -> pgvector binary (vector: float4 values; halfvec: float2). */
export function arrayBinaryToVectorBinary(buf: Buffer, kind: VectorKind = 'vector'): Buffer {
  const ndim = buf.readInt32BE(0);
  const dim = ndim === 0 ? 0 : buf.readInt32BE(12);
  let p = 12 + 8 * ndim;
  const size = kind === 'halfvec' ? 2 : 4;
  const out = Buffer.alloc(4 + dim * size);
  out.writeInt16BE(dim, 0);
  out.writeInt16BE(0, 2);
  for (let k = 0; k < dim; k++) {
    const len = buf.readInt32BE(p);
    const v = buf.readFloatBE(p + 4);
    p += 4 + len;
    if (kind === 'halfvec') out.writeUInt16BE(numberToHalfBits(v), 4 + 2 * k);
    else out.writeFloatBE(v, 4 + 4 * k);
  }
  return out;
}
