// WHERE clauses over an index's INCLUDE columns compiled into a JavaScript predicate, so the
// `in` filter strategy can select the allowed ids inside Winnow (sync/include-store.ts) without a
// round trip to Postgres.
//
// Supported: comparisons = <> < <= > >= (ordering on numbers and booleans only: text ordering
// depends on the collation), IN / NOT IN (list), [NOT] BETWEEN [SYMMETRIC], IS [NOT] NULL,
// IS [NOT] TRUE/FALSE/UNKNOWN, IS [NOT] DISTINCT FROM, AND / OR / NOT, bare boolean columns, and
// constants with or without casts. Evaluation follows SQL's three-valued logic (a row passes only
// when the predicate is TRUE). Anything else — functions, arithmetic, other columns, subqueries,
// parameters, LIKE, casts of columns, a constant whose type Postgres would reject against the
// column — makes the clause ineligible (null), and another strategy answers it.
import type { IncludeValue } from '../../sync/include-store.ts';

type Node = Record<string, any>;

/** The part of IncludeStore the compiler needs (column names and their Postgres types). */
export interface IncludeColumns {
  readonly columns: readonly string[];
  typeOf(column: string): string;
}

export type IncludePredicate = (get: (column: string) => IncludeValue) => boolean;

type Get = (column: string) => IncludeValue;
/** SQL boolean: true, false or null (unknown). */
type Tri = boolean | null;
type BoolEv = (get: Get) => Tri;
/** Value categories: numbers (int2/4, float4/8, numeric), int8 (bigint), bool, text-like, bpchar. */
type Cat = 'num' | 'i8' | 'bool' | 'str' | 'bpchar';
type Value = { kind: 'col'; column: string; cat: Cat; type: string } | { kind: 'const'; value: IncludeValue; typed: Cat | null };

class Ineligible extends Error {}
const no = (why: string): never => { throw new Ineligible(why); };

const NUM_COL = new Set(['int2', 'int4', 'float4', 'float8', 'numeric']);
const STR_COL = new Set(['text', 'varchar', 'name']);

function catOf(type: string): Cat | null {
  if (NUM_COL.has(type)) return 'num';
  if (type === 'int8') return 'i8';
  if (type === 'bool') return 'bool';
  if (STR_COL.has(type)) return 'str';
  if (type === 'bpchar') return 'bpchar';
  return null;
}

/** Cast target names as the grammar produces them (last name component). */
const CAST_CAT: Record<string, Cat> = {
  int2: 'num', int4: 'num', int8: 'i8', float4: 'num', float8: 'num', numeric: 'num',
  text: 'str', varchar: 'str', name: 'str', bpchar: 'bpchar', bool: 'bool',
};
const INT_CASTS = new Set(['int2', 'int4', 'int8']);

/**
 * Compiles `where` (a parse-tree node) over the INCLUDE columns. `refs` are the names a column may
 * be qualified with (the table's alias, or its name). Returns null when the clause is not eligible.
 */
export function compileIncludePredicate(where: Node, cols: IncludeColumns, refs: readonly string[]): IncludePredicate | null {
  try {
    const ev = new Compiler(cols, refs).bool(where);
    return (get) => ev(get) === true;
  } catch (err) {
    if (err instanceof Ineligible) return null;
    throw err;
  }
}

/** Why a clause is not eligible (for EXPLAIN), or null when it is. */
export function includeIneligibility(where: Node, cols: IncludeColumns, refs: readonly string[]): string | null {
  try {
    new Compiler(cols, refs).bool(where);
    return null;
  } catch (err) {
    if (err instanceof Ineligible) return err.message;
    throw err;
  }
}

const and3 = (a: Tri, b: Tri): Tri => (a === false || b === false ? false : a === null || b === null ? null : true);
const or3 = (a: Tri, b: Tri): Tri => (a === true || b === true ? true : a === null || b === null ? null : false);
const not3 = (a: Tri): Tri => (a === null ? null : !a);

/** Three-way comparison of two non-null values of one category (number/bigint mix allowed). */
function cmp(a: Exclude<IncludeValue, null>, b: Exclude<IncludeValue, null>): number {
  if (typeof a === 'number' && Number.isNaN(a)) return typeof b === 'number' && Number.isNaN(b) ? 0 : 1; // Postgres: NaN = NaN, NaN > all
  if (typeof b === 'number' && Number.isNaN(b)) return -1;
  if (typeof a === 'boolean' || typeof b === 'boolean') return Number(a) - Number(b); // false < true
  return a < b ? -1 : a > b ? 1 : 0;
}

const padTrim = (s: string) => s.replace(/ +$/, '');

class Compiler {
  constructor(private cols: IncludeColumns, private refs: readonly string[]) {}

  bool(n: Node): BoolEv {
    if (n.BoolExpr) {
      const args: BoolEv[] = n.BoolExpr.args.map((a: Node) => this.bool(a));
      switch (n.BoolExpr.boolop) {
        case 'AND_EXPR': return (g) => { let r: Tri = true; for (const a of args) { r = and3(r, a(g)); if (r === false) return false; } return r; };
        case 'OR_EXPR': return (g) => { let r: Tri = false; for (const a of args) { r = or3(r, a(g)); if (r === true) return true; } return r; };
        case 'NOT_EXPR': return (g) => not3(args[0](g));
      }
      return no('boolean operator');
    }
    if (n.NullTest) {
      const v = this.value(n.NullTest.arg);
      const f = this.getter(v);
      return n.NullTest.nulltesttype === 'IS_NULL' ? (g) => f(g) === null : (g) => f(g) !== null;
    }
    if (n.BooleanTest) {
      const e = this.bool(n.BooleanTest.arg);
      switch (n.BooleanTest.booltesttype) {
        case 'IS_TRUE': return (g) => e(g) === true;
        case 'IS_NOT_TRUE': return (g) => e(g) !== true;
        case 'IS_FALSE': return (g) => e(g) === false;
        case 'IS_NOT_FALSE': return (g) => e(g) !== false;
        case 'IS_UNKNOWN': return (g) => e(g) === null;
        case 'IS_NOT_UNKNOWN': return (g) => e(g) !== null;
      }
      return no('boolean test');
    }
    if (n.A_Expr) return this.aexpr(n.A_Expr);
    if (n.ColumnRef || n.A_Const || n.TypeCast) {
      const v = this.value(n);
      if (this.catOfValue(v) !== 'bool') return no('not a boolean expression');
      const f = this.getter(this.coerce(v, 'bool'));
      return (g) => f(g) as Tri;
    }
    return no(`${Object.keys(n)[0]} is not supported`);
  }

  private aexpr(e: Node): BoolEv {
    const op: string = e.name?.[0]?.String?.sval;
    switch (e.kind) {
      case 'AEXPR_OP': {
        if (!['=', '<>', '<', '<=', '>', '>='].includes(op) || e.name.length !== 1) return no(`operator ${op}`);
        return this.comparison(op, this.value(e.lexpr), this.value(e.rexpr));
      }
      case 'AEXPR_DISTINCT':
      case 'AEXPR_NOT_DISTINCT': {
        const [a, b] = this.pair(this.value(e.lexpr), this.value(e.rexpr));
        const eq = this.comparison('=', a, b);
        const fa = this.getter(a), fb = this.getter(b);
        const notDistinct = (g: Get): boolean => {
          const x = fa(g), y = fb(g);
          if (x === null || y === null) return x === null && y === null;
          return eq(g) === true;
        };
        return e.kind === 'AEXPR_DISTINCT' ? (g) => !notDistinct(g) : notDistinct;
      }
      case 'AEXPR_IN': {
        const items: Node[] = e.rexpr?.List?.items;
        if (!items) return no('IN needs a list');
        const left = this.value(e.lexpr);
        const tests = items.map((it) => this.comparison('=', left, this.value(it)));
        const any: BoolEv = (g) => { let r: Tri = false; for (const t of tests) { r = or3(r, t(g)); if (r === true) return true; } return r; };
        if (op === '=') return any;
        if (op === '<>') return (g) => not3(any(g));
        return no('IN operator');
      }
      case 'AEXPR_BETWEEN':
      case 'AEXPR_NOT_BETWEEN':
      case 'AEXPR_BETWEEN_SYM':
      case 'AEXPR_NOT_BETWEEN_SYM': {
        const items: Node[] = e.rexpr?.List?.items;
        if (!items || items.length !== 2) return no('BETWEEN');
        const x = this.value(e.lexpr), lo = this.value(items[0]), hi = this.value(items[1]);
        const plain: BoolEv = ((ge, le) => (g: Get) => and3(ge(g), le(g)))(this.comparison('>=', x, lo), this.comparison('<=', x, hi));
        let ev = plain;
        if (e.kind.endsWith('_SYM')) {
          const swapped: BoolEv = ((ge, le) => (g: Get) => and3(ge(g), le(g)))(this.comparison('>=', x, hi), this.comparison('<=', x, lo));
          ev = (g) => or3(plain(g), swapped(g));
        }
        return e.kind.startsWith('AEXPR_NOT') ? (g) => not3(ev(g)) : ev;
      }
    }
    return no(`expression kind ${e.kind}`);
  }

  /** `a op b` with SQL semantics: null when either side is null. */
  private comparison(op: string, a0: Value, b0: Value): BoolEv {
    const [a, b] = this.pair(a0, b0);
    const cat = this.catOfValue(a) ?? this.catOfValue(b) ?? 'str';
    if (op !== '=' && op !== '<>' && (cat === 'str' || cat === 'bpchar')) return no('ordering on text depends on the collation');
    const fa = this.getter(a), fb = this.getter(b);
    const norm = cat === 'bpchar' ? (v: IncludeValue) => (v === null ? null : padTrim(String(v))) : (v: IncludeValue) => v;
    const test: (c: number) => boolean =
      op === '=' ? (c) => c === 0 : op === '<>' ? (c) => c !== 0 : op === '<' ? (c) => c < 0 : op === '<=' ? (c) => c <= 0 : op === '>' ? (c) => c > 0 : (c) => c >= 0;
    return (g) => {
      const x = norm(fa(g)), y = norm(fb(g));
      if (x === null || y === null) return null;
      return test(cmp(x, y));
    };
  }

  /** Brings two operands to one category (untyped literals take the column's type, as in Postgres). */
  private pair(a: Value, b: Value): [Value, Value] {
    const ca = this.catOfValue(a), cb = this.catOfValue(b);
    if (ca && cb) {
      const numeric = (c: Cat) => c === 'num' || c === 'i8';
      const text = (c: Cat) => c === 'str' || c === 'bpchar';
      if (ca === cb || (numeric(ca) && numeric(cb))) return [a, b];
      // text against bpchar casts the bpchar side to text (padding dropped) and compares as text: left to Postgres.
      if (text(ca) && text(cb)) return no('text compared with character(n)');
      return no(`cannot compare ${ca} with ${cb}`);
    }
    if (ca) return [a, this.coerce(b, ca, a)];
    if (cb) return [this.coerce(a, cb, b), b];
    return [a, b];
  }

  private catOfValue(v: Value): Cat | null {
    return v.kind === 'col' ? v.cat : v.typed;
  }

  /** An untyped literal (or NULL) given the category of the other side. */
  private coerce(v: Value, cat: Cat, other?: Value): Value {
    if (v.kind !== 'const' || v.typed) return v;
    const x = v.value;
    if (x === null) return { kind: 'const', value: null, typed: cat };
    const s = String(x);
    const colType = other?.kind === 'col' ? other.type : null;
    switch (cat) {
      case 'num':
      case 'i8': {
        if (typeof x === 'boolean') return no('boolean literal against a number');
        if (typeof x === 'string') {
          // An unknown literal becomes the column's type: '2.5' against an integer column is an error in Postgres.
          const t = s.trim();
          let n = parseNumText(t);
          if (n === null) return no('literal is not a number');
          if ((colType && INT_CASTS.has(colType)) && !/^[+-]?\d+$/.test(t)) return no('non-integer literal against an integer column');
          if (colType === 'float4') n = Math.fround(n);
          return { kind: 'const', value: cat === 'i8' && /^[+-]?\d+$/.test(t) ? BigInt(t) : n, typed: cat };
        }
        return { kind: 'const', value: x, typed: cat };
      }
      case 'bool': {
        if (typeof x === 'boolean') return { kind: 'const', value: x, typed: 'bool' };
        const b = parseBool(s);
        if (b === null || typeof x !== 'string') return no('literal is not a boolean');
        return { kind: 'const', value: b, typed: 'bool' };
      }
      default:
        if (typeof x !== 'string') return no('number against a text column');
        return { kind: 'const', value: x, typed: cat };
    }
  }

  private getter(v: Value): (g: Get) => IncludeValue {
    if (v.kind === 'col') {
      const c = v.column;
      // float4: the store may hold the text form's double (0.1) or the binary form's (0.10000000149):
      // both are the same real, compared as Postgres does after rounding to single precision.
      if (v.type === 'float4') return (g) => { const x = g(c); return typeof x === 'number' ? Math.fround(x) : x; };
      return (g) => g(c);
    }
    const x = v.value;
    return () => x;
  }

  private value(n: Node): Value {
    if (n.ColumnRef) {
      const f: Node[] = n.ColumnRef.fields;
      const names = f.map((x) => x.String?.sval);
      if (names.some((x) => typeof x !== 'string')) return no('column reference');
      const column = names[names.length - 1];
      if (names.length === 2 && !this.refs.includes(names[0])) return no(`unknown qualifier ${names[0]}`);
      if (names.length > 2) return no('qualified column reference');
      if (!this.cols.columns.includes(column)) return no(`column "${column}" is not an INCLUDE column`);
      const type = this.cols.typeOf(column);
      const cat = catOf(type);
      if (!cat) return no(`INCLUDE column type ${type}`);
      return { kind: 'col', column, cat, type };
    }
    if (n.A_Const) {
      const c = n.A_Const;
      if (c.isnull) return { kind: 'const', value: null, typed: null };
      if (c.ival) return { kind: 'const', value: typeof c.ival.ival === 'number' ? c.ival.ival : 0, typed: 'num' };
      if (c.fval) {
        const t = String(c.fval.fval);
        // Integer literals beyond int4 arrive as fval: keep them exact.
        return { kind: 'const', value: /^[+-]?\d+$/.test(t) ? BigInt(t) : Number(t), typed: /^[+-]?\d+$/.test(t) ? 'i8' : 'num' };
      }
      if (c.boolval) return { kind: 'const', value: c.boolval.boolval === true, typed: 'bool' };
      if (c.sval) return { kind: 'const', value: c.sval.sval ?? '', typed: null };
      return { kind: 'const', value: c.ival !== undefined ? 0 : null, typed: null };
    }
    if (n.TypeCast) {
      const names: string[] = (n.TypeCast.typeName?.names ?? []).map((x: Node) => x.String?.sval);
      if (n.TypeCast.typeName?.arrayBounds) return no('array cast');
      const t = names[names.length - 1];
      const cat = CAST_CAT[t];
      if (!cat) return no(`cast to ${t}`);
      const inner = this.value(n.TypeCast.arg);
      if (inner.kind !== 'const') return no('cast of a column');
      const x = inner.value;
      if (x === null) return { kind: 'const', value: null, typed: cat };
      if (cat === 'str' || cat === 'bpchar') {
        if (typeof x === 'boolean') return { kind: 'const', value: x ? 'true' : 'false', typed: cat };
        if (n.TypeCast.typeName?.typmods) return no('length-limited text cast');
        return { kind: 'const', value: String(x), typed: cat };
      }
      if (cat === 'bool') {
        if (typeof x === 'boolean') return { kind: 'const', value: x, typed: 'bool' };
        const b = typeof x === 'string' ? parseBool(x) : null;
        if (b === null) return no('cast to boolean');
        return { kind: 'const', value: b, typed: 'bool' };
      }
      // Numbers.
      if (typeof x === 'boolean') return no('boolean to number cast');
      const s = String(x).trim();
      const parsed = parseNumText(s);
      if (parsed === null) return no('cast text to number');
      if (INT_CASTS.has(t)) {
        if (!/^[+-]?\d+$/.test(s)) return no('rounding cast to integer');
        return { kind: 'const', value: t === 'int8' ? BigInt(s) : Number(s), typed: cat };
      }
      let v = parsed;
      if (t === 'float4') v = Math.fround(v);
      return { kind: 'const', value: v, typed: 'num' };
    }
    return no(`${Object.keys(n)[0]} is not supported`);
  }
}

function parseBool(s: string): boolean | null {
  const t = s.trim().toLowerCase();
  if (['t', 'true', 'y', 'yes', 'on', '1'].includes(t)) return true;
  if (['f', 'false', 'n', 'no', 'off', '0'].includes(t)) return false;
  return null;
}

/** Postgres's numeric input text (incl. NaN and ±Infinity) → number, or null when it is not one. */
function parseNumText(t: string): number | null {
  if (/^[+-]?(\d+\.?\d*(e[+-]?\d+)?|\.\d+(e[+-]?\d+)?)$/i.test(t)) return Number(t);
  if (/^[+-]?nan$/i.test(t)) return NaN;
  if (/^[+-]?(inf|infinity)$/i.test(t)) return t.startsWith('-') ? -Infinity : Infinity;
  return null;
}
