// Column store for the INCLUDE columns of a Winnow index (CREATE INDEX … USING winnow (v …) INCLUDE (a, b)):
// for every row in the index, the values of those columns, kept current by the same change stream as
// the vectors (sync/index-manager.ts), so a filter on them can be evaluated without asking Postgres.
//
// Layout: one slot per row; per column a typed array indexed by slot (Float64Array for int2/int4/
// float4/float8/numeric, BigInt64Array for int8, Uint8Array for bool, dictionary codes in an
// Int32Array for text-like types) plus a null bitmap; ids per slot in a BigInt64Array and a Map id→slot.
// Deleted slots are tombstoned and reclaimed by compaction. `order` lists live slots by ascending id so
// `matching` returns sorted ids without sorting; it stays valid while new ids arrive in increasing
// order (bulk loads) and is rebuilt lazily otherwise.
import { crc32 } from 'node:zlib';

export type IncludeValue = string | number | bigint | boolean | null; // text/varchar→string, int2/int4/float4/float8/numeric→number, int8→bigint, bool→boolean

export interface IncludeColumn {
  name: string;
  /** Postgres type name (pg_type.typname): text, varchar, bpchar, name, int2, int4, int8, float4, float8, numeric, bool. */
  type: string;
}

const NUM_TYPES = new Set(['int2', 'int4', 'float4', 'float8', 'numeric']);
const STR_TYPES = new Set(['text', 'varchar', 'bpchar', 'name']);
export const INCLUDE_TYPES = new Set([...NUM_TYPES, ...STR_TYPES, 'int8', 'bool']);

const K_NUM = 0;
const K_I8 = 1;
const K_BOOL = 2;
const K_STR = 3;

function kindOf(type: string): number {
  if (NUM_TYPES.has(type)) return K_NUM;
  if (STR_TYPES.has(type)) return K_STR;
  if (type === 'int8') return K_I8;
  if (type === 'bool') return K_BOOL;
  throw new Error(`INCLUDE column type ${type} is not supported`);
}

class Col {
  readonly kind: number;
  num = new Float64Array(0);
  i8 = new BigInt64Array(0);
  /** bool: 0 false, 1 true; str: unused. */
  u8 = new Uint8Array(0);
  codes = new Int32Array(0);
  /** 1 = NULL (num, i8, bool). str uses code -1. */
  nulls = new Uint8Array(0);
  dict: string[] = [];
  dictIdx = new Map<string, number>();
  constructor(readonly name: string, readonly type: string) {
    this.kind = kindOf(type);
  }
  grow(cap: number): void {
    const g = <T extends { length: number; set(a: T): void }>(a: T, make: (n: number) => T): T => {
      if (a.length >= cap) return a;
      const b = make(cap);
      b.set(a);
      return b;
    };
    if (this.kind === K_NUM) this.num = g(this.num, (n) => new Float64Array(n));
    if (this.kind === K_I8) this.i8 = g(this.i8, (n) => new BigInt64Array(n));
    if (this.kind === K_BOOL) this.u8 = g(this.u8, (n) => new Uint8Array(n));
    if (this.kind === K_STR) this.codes = g(this.codes, (n) => new Int32Array(n));
    else this.nulls = g(this.nulls, (n) => new Uint8Array(n));
  }
  write(slot: number, v: IncludeValue): void {
    switch (this.kind) {
      case K_NUM:
        if (v === null) { this.nulls[slot] = 1; this.num[slot] = 0; } else { this.nulls[slot] = 0; this.num[slot] = Number(v); }
        break;
      case K_I8:
        if (v === null) { this.nulls[slot] = 1; this.i8[slot] = 0n; } else { this.nulls[slot] = 0; this.i8[slot] = BigInt(v as bigint); }
        break;
      case K_BOOL:
        if (v === null) { this.nulls[slot] = 1; this.u8[slot] = 0; } else { this.nulls[slot] = 0; this.u8[slot] = v ? 1 : 0; }
        break;
      default: {
        if (v === null) { this.codes[slot] = -1; break; }
        const s = String(v);
        let c = this.dictIdx.get(s);
        if (c === undefined) {
          c = this.dict.length;
          this.dict.push(s);
          this.dictIdx.set(s, c);
        }
        this.codes[slot] = c;
      }
    }
  }
  read(slot: number): IncludeValue {
    switch (this.kind) {
      case K_NUM: return this.nulls[slot] ? null : this.num[slot];
      case K_I8: return this.nulls[slot] ? null : this.i8[slot];
      case K_BOOL: return this.nulls[slot] ? null : this.u8[slot] === 1;
      default: { const c = this.codes[slot]; return c < 0 ? null : this.dict[c]; }
    }
  }
}

export class IncludeStore {
  readonly columns: readonly string[];
  private cols: Col[];
  private ids = new BigInt64Array(0);
  private live = new Uint8Array(0);
  private slotOf = new Map<bigint, number>();
  /** Slots used (live + dead). */
  private n = 0;
  private dead = 0;
  /** Slots by ascending id (dead ones are skipped when read); null = rebuild before the next matching(). */
  private order: Uint32Array | null = new Uint32Array(0);
  private orderLen = 0;
  private maxId: bigint | null = null;
  private changes = 0;

  constructor(readonly definition: readonly IncludeColumn[]) {
    this.columns = definition.map((c) => c.name);
    this.cols = definition.map((c) => new Col(c.name, c.type));
  }

  /** Column's Postgres type name (e.g. 'text', 'int4'). */
  typeOf(column: string): string {
    return this.col(column).type;
  }

  value(id: bigint, column: string): IncludeValue | undefined {
    const col = this.col(column);
    const s = this.slotOf.get(id);
    return s === undefined ? undefined : col.read(s);
  }

  /** Ids, sorted ascending, of indexed rows for which pred returns true. */
  matching(pred: (get: (column: string) => IncludeValue) => boolean): BigInt64Array {
    const order = this.sortedSlots();
    let cur = 0;
    // One reader closure per column over its own typed array at the current slot; columns are found
    // by comparing names (a handful of columns; the predicate passes the same string objects each row).
    const names = this.columns;
    const nc = names.length;
    const readers = this.cols.map((c): (() => IncludeValue) => {
      const { nulls, num, i8, u8, codes, dict } = c;
      return c.kind === K_NUM ? () => (nulls[cur] ? null : num[cur])
        : c.kind === K_I8 ? () => (nulls[cur] ? null : i8[cur])
        : c.kind === K_BOOL ? () => (nulls[cur] ? null : u8[cur] === 1)
        : () => { const k = codes[cur]; return k < 0 ? null : dict[k]; };
    });
    const get = (column: string): IncludeValue => {
      for (let i = 0; i < nc; i++) if (names[i] === column) return readers[i]();
      throw new Error(`"${column}" is not an INCLUDE column of this index`);
    };
    const out = new BigInt64Array(this.slotOf.size);
    let m = 0;
    const ids = this.ids;
    const live = this.live;
    const len = this.orderLen;
    for (let j = 0; j < len; j++) {
      cur = order[j];
      if (live[cur] && pred(get)) out[m++] = ids[cur];
    }
    return out.slice(0, m);
  }

  get size(): number {
    return this.slotOf.size;
  }

  /** Changes with every set/delete/clear: a matching() result computed at the same version is still exact. */
  get version(): number {
    return this.changes;
  }

  has(id: bigint): boolean {
    return this.slotOf.has(id);
  }

  /** Inserts or replaces a row; `values` in column order. `undefined` keeps the stored value (NULL for a new row). */
  set(id: bigint, values: readonly (IncludeValue | undefined)[]): void {
    this.changes++;
    let s = this.slotOf.get(id);
    if (s === undefined) {
      if (this.n === this.ids.length) this.grow(Math.max(1024, this.n * 2));
      s = this.n++;
      this.ids[s] = id;
      this.live[s] = 1;
      this.slotOf.set(id, s);
      if (this.order) {
        if (this.maxId === null || id > this.maxId) {
          if (this.orderLen === this.order.length) {
            const o = new Uint32Array(Math.max(1024, this.orderLen * 2));
            o.set(this.order);
            this.order = o;
          }
          this.order[this.orderLen++] = s;
        } else this.order = null;
      }
      if (this.maxId === null || id > this.maxId) this.maxId = id;
      for (let i = 0; i < this.cols.length; i++) this.cols[i].write(s, values[i] === undefined ? null : values[i]!);
      return;
    }
    for (let i = 0; i < this.cols.length; i++) if (values[i] !== undefined) this.cols[i].write(s, values[i]!);
  }

  delete(id: bigint): boolean {
    const s = this.slotOf.get(id);
    if (s === undefined) return false;
    this.changes++;
    this.slotOf.delete(id);
    this.live[s] = 0;
    this.dead++;
    if (this.dead > 4096 && this.dead > this.n / 2) this.compact();
    return true;
  }

  clear(): void {
    this.changes++;
    this.cols = this.definition.map((c) => new Col(c.name, c.type));
    this.ids = new BigInt64Array(0);
    this.live = new Uint8Array(0);
    this.slotOf = new Map();
    this.n = 0;
    this.dead = 0;
    this.order = new Uint32Array(0);
    this.orderLen = 0;
    this.maxId = null;
  }

  private col(column: string): Col {
    const i = this.columns.indexOf(column);
    if (i < 0) throw new Error(`"${column}" is not an INCLUDE column of this index`);
    return this.cols[i];
  }

  private grow(cap: number): void {
    const ids = new BigInt64Array(cap);
    ids.set(this.ids.subarray(0, this.n));
    this.ids = ids;
    const live = new Uint8Array(cap);
    live.set(this.live.subarray(0, this.n));
    this.live = live;
    for (const c of this.cols) c.grow(cap);
  }

  private sortedSlots(): Uint32Array {
    if (this.order) return this.order;
    const order = new Uint32Array(this.slotOf.size);
    const keys = new Float64Array(this.n);
    let j = 0;
    let safe = true;
    for (let s = 0; s < this.n; s++) {
      if (!this.live[s]) continue;
      order[j++] = s;
      const id = this.ids[s];
      if (id > 9007199254740991n || id < -9007199254740991n) safe = false;
      keys[s] = Number(id);
    }
    if (safe) order.sort((a, b) => keys[a] - keys[b]);
    else {
      const ids = this.ids;
      order.sort((a, b) => (ids[a] < ids[b] ? -1 : ids[a] > ids[b] ? 1 : 0));
    }
    this.order = order;
    this.orderLen = order.length;
    return order;
  }

  /** Rewrites the live rows in id order into fresh arrays (drops tombstones and unused dictionary entries). */
  private compact(): void {
    const rows = this.export();
    this.load(rows);
  }

  /** Live rows in id order, as columns (for compaction and snapshots). */
  private export(): { ids: BigInt64Array; values: IncludeValue[][] } {
    const order = this.sortedSlots();
    const n = this.slotOf.size;
    const ids = new BigInt64Array(n);
    const values = this.cols.map(() => new Array<IncludeValue>(n));
    let j = 0;
    for (let o = 0; o < this.orderLen; o++) {
      const s = order[o];
      if (!this.live[s]) continue;
      ids[j] = this.ids[s];
      for (let i = 0; i < this.cols.length; i++) values[i][j] = this.cols[i].read(s);
      j++;
    }
    return { ids, values };
  }

  private load(rows: { ids: BigInt64Array; values: IncludeValue[][] }): void {
    this.clear();
    const n = rows.ids.length;
    this.grow(Math.max(1024, n));
    const row = new Array<IncludeValue>(this.cols.length);
    for (let j = 0; j < n; j++) {
      for (let i = 0; i < this.cols.length; i++) row[i] = rows.values[i][j];
      this.set(rows.ids[j], row);
    }
  }

  /**
   * Snapshot bytes: "WNWINC01", u32 header length, JSON header (columns, rows, dictionaries),
   * ids (int64 LE), per column its array (float64 / int64 / uint8 / int32 codes) and null bytes, CRC-32 of all before it.
   */
  serialize(): Buffer {
    const { ids, values } = this.export();
    const n = ids.length;
    const parts: Buffer[] = [];
    const dicts: (string[] | null)[] = [];
    const bodies: Buffer[] = [];
    for (let i = 0; i < this.cols.length; i++) {
      const c = this.cols[i];
      const v = values[i];
      const nulls = new Uint8Array(n);
      for (let j = 0; j < n; j++) nulls[j] = v[j] === null ? 1 : 0;
      if (c.kind === K_STR) {
        const dict: string[] = [];
        const idx = new Map<string, number>();
        const codes = new Int32Array(n);
        for (let j = 0; j < n; j++) {
          const s = v[j] as string | null;
          if (s === null) { codes[j] = -1; continue; }
          let k = idx.get(s);
          if (k === undefined) { k = dict.length; dict.push(s); idx.set(s, k); }
          codes[j] = k;
        }
        dicts.push(dict);
        bodies.push(Buffer.from(codes.buffer, codes.byteOffset, codes.byteLength));
      } else {
        dicts.push(null);
        if (c.kind === K_NUM) bodies.push(Buffer.from(Float64Array.from(v, (x) => (x === null ? 0 : (x as number))).buffer));
        else if (c.kind === K_I8) bodies.push(Buffer.from(BigInt64Array.from(v, (x) => (x === null ? 0n : (x as bigint))).buffer));
        else bodies.push(Buffer.from(Uint8Array.from(v, (x) => (x === true ? 1 : 0))));
        bodies.push(Buffer.from(nulls));
      }
    }
    const header = Buffer.from(JSON.stringify({ columns: this.definition, rows: n, dicts }));
    const len = Buffer.alloc(4);
    len.writeUInt32LE(header.length);
    parts.push(Buffer.from('WNWINC01'), len, header, Buffer.from(ids.buffer, ids.byteOffset, ids.byteLength), ...bodies);
    const all = Buffer.concat(parts);
    const crc = Buffer.alloc(4);
    crc.writeUInt32LE(crc32(all));
    return Buffer.concat([all, crc]);
  }

  /** Inverse of serialize(); throws on a damaged buffer or other column definitions. */
  static deserialize(buf: Buffer, definition: readonly IncludeColumn[]): IncludeStore {
    if (buf.length < 16 || buf.toString('latin1', 0, 8) !== 'WNWINC01') throw new Error('include store: bad magic');
    const body = buf.subarray(0, buf.length - 4);
    if (crc32(body) !== buf.readUInt32LE(buf.length - 4)) throw new Error('include store: checksum mismatch');
    const hl = buf.readUInt32LE(8);
    const h = JSON.parse(buf.toString('utf8', 12, 12 + hl)) as { columns: IncludeColumn[]; rows: number; dicts: (string[] | null)[] };
    if (JSON.stringify(h.columns) !== JSON.stringify(definition)) throw new Error('include store: other column definitions');
    const n = h.rows;
    let p = 12 + hl;
    const take = (bytes: number): Buffer => {
      if (p + bytes > body.length) throw new Error('include store: truncated');
      const b = Buffer.from(body.subarray(p, p + bytes)); // copy: aligned for typed-array views
      p += bytes;
      return b;
    };
    const idsB = take(8 * n);
    const ids = new BigInt64Array(idsB.buffer, idsB.byteOffset, n);
    const store = new IncludeStore(definition);
    const values: IncludeValue[][] = [];
    for (let i = 0; i < definition.length; i++) {
      const kind = kindOf(definition[i].type);
      const col = new Array<IncludeValue>(n);
      if (kind === K_STR) {
        const b = take(4 * n);
        const codes = new Int32Array(b.buffer, b.byteOffset, n);
        const dict = h.dicts[i] ?? [];
        for (let j = 0; j < n; j++) col[j] = codes[j] < 0 ? null : dict[codes[j]];
      } else {
        const width = kind === K_BOOL ? 1 : 8;
        const b = take(width * n);
        const nulls = take(n);
        if (kind === K_NUM) { const a = new Float64Array(b.buffer, b.byteOffset, n); for (let j = 0; j < n; j++) col[j] = nulls[j] ? null : a[j]; }
        else if (kind === K_I8) { const a = new BigInt64Array(b.buffer, b.byteOffset, n); for (let j = 0; j < n; j++) col[j] = nulls[j] ? null : a[j]; }
        else for (let j = 0; j < n; j++) col[j] = nulls[j] ? null : b[j] === 1;
      }
      values.push(col);
    }
    if (p !== body.length) throw new Error('include store: trailing bytes');
    store.load({ ids, values });
    return store;
  }
}

/** A value in Postgres text output format → IncludeValue for `type` (the build scan reads text). */
export function parseIncludeText(type: string, text: string | null): IncludeValue {
  if (text === null) return null;
  switch (kindOf(type)) {
    case K_NUM: return Number(text);
    case K_I8: return BigInt(text);
    case K_BOOL: return text === 't' || text === 'true';
    default: return text;
  }
}

/** A value in binary send format (pgoutput with binary = true) → IncludeValue for `type`. */
export function decodeIncludeBinary(type: string, b: Buffer): IncludeValue {
  switch (type) {
    case 'int2': return b.readInt16BE(0);
    case 'int4': return b.readInt32BE(0);
    case 'int8': return b.readBigInt64BE(0);
    case 'float4': return b.readFloatBE(0);
    case 'float8': return b.readDoubleBE(0);
    case 'bool': return b[0] !== 0;
    case 'numeric': return decodeNumericBinary(b);
    default: return b.toString('utf8');
  }
}

/** numeric_send: ndigits, weight, sign, dscale (int16 each), then base-10000 digits. */
export function decodeNumericBinary(b: Buffer): number {
  const ndigits = b.readInt16BE(0);
  const weight = b.readInt16BE(2);
  const sign = b.readUInt16BE(4);
  if (sign === 0xc000) return NaN;
  if (sign === 0xd000) return Infinity;
  if (sign === 0xf000) return -Infinity;
  if (ndigits === 0) return 0;
  let s = '';
  for (let i = 0; i < ndigits; i++) s += String(b.readInt16BE(8 + 2 * i)).padStart(4, '0');
  const intDigits = (weight + 1) * 4;
  let text: string;
  if (intDigits <= 0) text = '0.' + '0'.repeat(-intDigits) + s;
  else if (intDigits >= s.length) text = s + '0'.repeat(intDigits - s.length);
  else text = s.slice(0, intDigits) + '.' + s.slice(intDigits);
  return Number((sign === 0x4000 ? '-' : '') + text);
}
