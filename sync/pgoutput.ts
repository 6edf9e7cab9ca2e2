// Decoder for pgoutput's logical replication messages (protocol version 1, binary tuple values),
// as returned one message per row by pg_logical_slot_peek_binary_changes(…, 'proto_version', '1',
// 'publication_names', …, 'binary', 'true'). Only what the index sync needs: Begin, Commit,
// Relation, Insert, Update, Delete, Truncate (Type/Origin/Message are skipped).

export type TupleValue = null | 'unchanged' | Buffer;

export type PgOutputMessage =
  | { tag: 'begin'; finalLsn: bigint; xid: number }
  | { tag: 'commit'; commitLsn: bigint; endLsn: bigint }
  | { tag: 'relation'; relid: number; schema: string; name: string; columns: { name: string; typeOid: number; key: boolean }[] }
  | { tag: 'insert'; relid: number; tuple: TupleValue[] }
  | { tag: 'update'; relid: number; oldKey: TupleValue[] | null; tuple: TupleValue[] }
  | { tag: 'delete'; relid: number; oldKey: TupleValue[] }
  | { tag: 'truncate'; relids: number[] }
  | { tag: 'other' };

class Reader {
  p = 0;
  constructor(private b: Buffer) {}
  u8(): number { return this.b[this.p++]; }
  i16(): number { const v = this.b.readInt16BE(this.p); this.p += 2; return v; }
  i32(): number { const v = this.b.readInt32BE(this.p); this.p += 4; return v; }
  u32(): number { const v = this.b.readUInt32BE(this.p); this.p += 4; return v; }
  i64(): bigint { const v = this.b.readBigUInt64BE(this.p); this.p += 8; return v; }
  str(): string {
    const end = this.b.indexOf(0, this.p);
    const s = this.b.toString('utf8', this.p, end);
    this.p = end + 1;
    return s;
  }
  bytes(n: number): Buffer { const v = this.b.subarray(this.p, this.p + n); this.p += n; return v; }
  tuple(): TupleValue[] {
    const n = this.i16();
    const out: TupleValue[] = [];
    for (let i = 0; i < n; i++) {
      const kind = String.fromCharCode(this.u8());
      if (kind === 'n') out.push(null);
      else if (kind === 'u') out.push('unchanged');
      else if (kind === 't' || kind === 'b') out.push(this.bytes(this.i32()));
      else throw new Error(`pgoutput: unknown tuple value kind ${kind}`);
    }
    return out;
  }
}

export function decodePgOutput(b: Buffer): PgOutputMessage {
  const r = new Reader(b);
  const tag = String.fromCharCode(r.u8());
  switch (tag) {
    case 'B': {
      const finalLsn = r.i64();
      r.i64(); // commit timestamp
      return { tag: 'begin', finalLsn, xid: r.u32() };
    }
    case 'C': {
      r.u8(); // flags
      const commitLsn = r.i64();
      return { tag: 'commit', commitLsn, endLsn: r.i64() };
    }
    case 'R': {
      const relid = r.u32();
      const schema = r.str();
      const name = r.str();
      r.u8(); // replica identity
      const n = r.i16();
      const columns = [];
      for (let i = 0; i < n; i++) {
        const flags = r.u8();
        const cname = r.str();
        const typeOid = r.u32();
        r.i32(); // typmod
        columns.push({ name: cname, typeOid, key: (flags & 1) === 1 });
      }
      return { tag: 'relation', relid, schema, name, columns };
    }
    case 'I': {
      const relid = r.u32();
      r.u8(); // 'N'
      return { tag: 'insert', relid, tuple: r.tuple() };
    }
    case 'U': {
      const relid = r.u32();
      let k = String.fromCharCode(r.u8());
      let oldKey: TupleValue[] | null = null;
      if (k === 'K' || k === 'O') {
        oldKey = r.tuple();
        k = String.fromCharCode(r.u8());
      }
      return { tag: 'update', relid, oldKey, tuple: r.tuple() };
    }
    case 'D': {
      const relid = r.u32();
      r.u8(); // 'K' or 'O'
      return { tag: 'delete', relid, oldKey: r.tuple() };
    }
    case 'T': {
      const n = r.i32();
      r.u8(); // options
      const relids: number[] = [];
      for (let i = 0; i < n; i++) relids.push(r.u32());
      return { tag: 'truncate', relids };
    }
    default:
      return { tag: 'other' };
  }
}

/** Binary integer key (int2/int4/int8 send format) → bigint. */
export function decodeKey(v: Buffer): bigint {
  if (v.length === 8) return v.readBigInt64BE(0);
  if (v.length === 4) return BigInt(v.readInt32BE(0));
  if (v.length === 2) return BigInt(v.readInt16BE(0));
  throw new Error(`unexpected key length ${v.length}`);
}

/**
 * Binary float4[] (array_send; Winnow's vector/halfvec types use it) → Float32Array, written at
 * `out[offset…]` when given. Returns the dimension.
 */
export function decodeFloat4Array(v: Buffer, out?: Float32Array, offset = 0): { dim: number; values: Float32Array } {
  const ndim = v.readInt32BE(0);
  if (ndim === 0) return { dim: 0, values: new Float32Array(0) };
  if (ndim !== 1) throw new Error('vector value is not one-dimensional');
  const dim = v.readInt32BE(12);
  const values = out ? out.subarray(offset, offset + dim) : new Float32Array(dim);
  let p = 20;
  for (let i = 0; i < dim; i++) {
    const len = v.readInt32BE(p);
    if (len !== 4) throw new Error('NULL or non-float4 element in vector value');
    values[i] = v.readFloatBE(p + 4);
    p += 8;
  }
  return { dim, values };
}

export function lsnToBigInt(lsn: string): bigint {
  const [hi, lo] = lsn.split('/');
  return (BigInt('0x' + hi) << 32n) | BigInt('0x' + lo);
}

export function bigIntToLsn(v: bigint): string {
  return `${(v >> 32n).toString(16).toUpperCase()}/${(v & 0xffffffffn).toString(16).toUpperCase()}`;
}
