// A bound statement as the equivalent simple-protocol text: every $n replaced by a literal of its
// bound value, so that the simple-query planner (filter strategies, internal queries on the session's
// connection) can plan a prepared statement's Bind. The text is only for planning: what Postgres
// executes is still the client's prepared statement with the client's parameters.
import { quoteLiteral } from '../quote.ts';

type Node = Record<string, any>;

/** Parameter types whose text form can be written as a typed literal. */
const TYPE_NAMES: Record<number, string> = {
  16: 'boolean', 20: 'bigint', 21: 'smallint', 23: 'integer', 25: 'text', 700: 'real', 701: 'double precision',
  1043: 'varchar', 1042: 'bpchar', 1700: 'numeric', 1082: 'date', 1114: 'timestamp', 1184: 'timestamptz', 2950: 'uuid', 3802: 'jsonb', 114: 'json',
  1007: 'integer[]', 1016: 'bigint[]', 1009: 'text[]',
};

/** Binary parameters decoded for the fixed-size types (anything else in binary: not inlined). */
function binaryText(b: Buffer, type: number): string | null {
  switch (type) {
    case 16: return b.length === 1 ? (b[0] ? 'true' : 'false') : null;
    case 20: return b.length === 8 ? b.readBigInt64BE(0).toString() : null;
    case 21: return b.length === 2 ? String(b.readInt16BE(0)) : null;
    case 23: return b.length === 4 ? String(b.readInt32BE(0)) : null;
    case 700: return b.length === 4 ? String(b.readFloatBE(0)) : null;
    case 701: return b.length === 8 ? String(b.readDoubleBE(0)) : null;
    case 25: case 1043: case 1042: return b.toString('utf8');
    default: return null;
  }
}

/** A statement's parameter references in text order, per parse tree (prepared statements inline theirs at every Bind). */
const refsCache = new WeakMap<Node, readonly { number: number; location: number }[]>();
function sortedParamRefs(stmt: Node): readonly { number: number; location: number }[] {
  let refs = refsCache.get(stmt);
  if (!refs) refsCache.set(stmt, (refs = paramRefs(stmt).sort((a, b) => a.location - b.location)));
  return refs;
}

function paramRefs(n: unknown, out: { number: number; location: number }[] = []): { number: number; location: number }[] {
  if (Array.isArray(n)) for (const x of n) paramRefs(x, out);
  else if (n && typeof n === 'object') {
    const pr = (n as Node).ParamRef;
    if (pr && typeof pr.number === 'number' && typeof pr.location === 'number') out.push({ number: pr.number, location: pr.location });
    for (const v of Object.values(n)) paramRefs(v, out);
  }
  return out;
}

export interface BoundParams {
  values: (Buffer | null)[];
  /** Per parameter (already expanded from Bind's 0/1/n format codes). */
  formatOf: (i: number) => number;
  /** Type OIDs Postgres resolved for the statement's parameters (0 = unknown). */
  types: number[];
  /** Parameters left as $n (e.g. the query vector, which the planner reads from the Bind itself). */
  keep?: ReadonlySet<number>;
  /** Types written as untyped literals of their text (vector types: the planner reads '[…]' literals). */
  untyped?: (type: number) => boolean;
  /** The text form of a binary value of an `untyped` type (null: cannot be inlined). */
  untypedBinary?: (value: Buffer, type: number) => string | null;
}

/**
 * The statement text with every parameter inlined, or null when one cannot be written as a literal
 * (an unsupported binary type): the caller then lets Postgres run the statement as prepared.
 */
export function inlineParams(text: string, stmt: Node, p: BoundParams): string | null {
  const buf = Buffer.from(text, 'utf8');
  const refs = sortedParamRefs(stmt);
  let out = '';
  let at = 0;
  for (const r of refs) {
    const m = /^\$\d+/.exec(buf.subarray(r.location, r.location + 12).toString('latin1'));
    if (!m) return null;
    if (p.keep?.has(r.number)) continue;
    const v = p.values[r.number - 1];
    const type = p.types[r.number - 1] ?? 0;
    if (v === undefined) return null;
    let lit: string;
    if (v === null) lit = type && TYPE_NAMES[type] ? `NULL::${TYPE_NAMES[type]}` : 'NULL';
    else {
      const binary = p.formatOf(r.number - 1) === 1;
      const untyped = !!p.untyped?.(type);
      const s = !binary ? v.toString('utf8') : untyped ? p.untypedBinary?.(v, type) ?? null : binaryText(v, type);
      if (s === null) return null;
      if (type === 0 || untyped) lit = quoteLiteral(s);
      else if (TYPE_NAMES[type]) lit = `${quoteLiteral(s)}::${TYPE_NAMES[type]}`;
      else return null;
    }
    out += buf.subarray(at, r.location).toString('utf8') + lit;
    at = r.location + m[0].length;
  }
  return out + buf.subarray(at).toString('utf8');
}
