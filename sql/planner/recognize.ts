// Recognises the nearest-neighbour shape in a parse tree and rewrites it around the index's answer:
//
//   SELECT <list> FROM t [alias] [WHERE p] ORDER BY col <op> q [ASC] LIMIT k [OFFSET n]
//
// becomes one Postgres query over the same table, under the client's role (privileges and RLS apply):
//
//   SELECT <list, with `col <op> q` replaced by the index's distance>
//     FROM t [alias] WHERE [(p) AND] alias.pk = ANY($ids) ORDER BY array_position($ids, alias.pk)
//     LIMIT k OFFSET n
//
// The text is rebuilt from byte slices of the original (never deparsed), so everything else in the
// select list and WHERE reaches Postgres exactly as the client wrote it.
import { parseVectorText, type Metric } from '../../native/index.ts';
import { quoteIdent, quoteLiteral } from '../quote.ts';
import { minLocation } from '../parse.ts';

type Node = Record<string, any>;

export interface KnnPattern {
  /** Schema as written (undefined = search_path) and table name. */
  schema?: string;
  table: string;
  /** Name used to qualify columns in the rewritten text (alias or table name). */
  ref: string;
  column: string;
  metric: Metric;
  /** The query vector: a literal's text or a parameter number. */
  query: { literal: string } | { param: number };
  limit: number;
  /** LIMIT $n (extended protocol): the limit is known at Bind. */
  limitParam?: number;
  offset: number;
  /** Original text pieces (UTF-8 exact). */
  selectList: string;
  fromList: string;
  where: string | null;
  /** Byte spans in `where` (relative) of expressions equal to the ORDER BY distance (rewritten to the index's distance). */
  whereSpans: [number, number][];
  /**
   * `WHERE … AND col <op> q < r [AND …]` (or <=, or r > col <op> q) with the ORDER BY's distance: the
   * result is cut at r. The first such conjunct; `filterWhere`/`filterWhereNode` are the WHERE clause
   * without it (what pre/post/in filters evaluate; null when nothing else is left).
   */
  threshold?: Radius;
  filterWhere: string | null;
  filterWhereNode: Node | null;
  /** Byte spans in selectList (relative) of expressions equal to the ORDER BY distance. */
  distanceSpans: [number, number][];
  /** Select-list distance spans that carry no alias (Postgres would name them ?column?). */
  unnamed: Set<number>;
}

const OPS: Record<string, Metric> = { '<->': 'l2', '<#>': 'ip', '<=>': 'cos' };

export interface Radius { r: number; inclusive: boolean }

type Distance = NonNullable<ReturnType<typeof distanceExpr>>;
type QueryOperand = { literal: string } | { param: number };


function constInt(n: Node | undefined): number | null {
  // A Bind's parameter written in as a typed literal (bind-params.ts): '10'::bigint.
  const cast = n?.TypeCast;
  if (cast) {
    const names = (cast.typeName?.names ?? []).map((x: Node) => x.String?.sval);
    if (!['int2', 'int4', 'int8'].includes(names[names.length - 1])) return null;
    const inner = cast.arg?.A_Const;
    if (inner?.sval && /^\s*\d+\s*$/.test(inner.sval.sval ?? '')) return Number(inner.sval.sval);
    return constInt(cast.arg);
  }
  const c = n?.A_Const;
  if (!c) return null;
  if (c.ival) return typeof c.ival.ival === 'number' ? c.ival.ival : 0;
  if (c.isnull) return null;
  return null;
}

/** End byte (exclusive) of the query operand: '…' literal [::type[(n)]] or $n. */
function operandEnd(latin: string, start: number): number | null {
  const re = /(?:\$\d+|'(?:[^']|'')*')(?:\s*::\s*[A-Za-z_][\w.]*(?:\s*\(\s*\d+\s*\))?)?/y;
  re.lastIndex = start;
  const m = re.exec(latin);
  return m ? start + m[0].length : null;
}

function operand(n: Node): { literal: string; start: number } | { param: number; start: number } | null {
  if (n.ParamRef) return { param: n.ParamRef.number, start: n.ParamRef.location };
  let c = n;
  if (c.TypeCast) {
    const names = (c.TypeCast.typeName?.names ?? []).map((x: Node) => x.String?.sval);
    const t = names[names.length - 1];
    if (t !== 'vector') return null;
    c = c.TypeCast.arg;
    if (c?.ParamRef) return { param: c.ParamRef.number, start: c.ParamRef.location };
  }
  if (c?.A_Const?.sval) return { literal: c.A_Const.sval.sval, start: c.A_Const.location };
  return null;
}

function distanceExpr(n: Node | undefined): { column: string; metric: Metric; op: NonNullable<ReturnType<typeof operand>>; colStart: number } | null {
  const e = n?.A_Expr;
  if (!e || e.kind !== 'AEXPR_OP' || e.name?.length !== 1) return null;
  const metric = OPS[e.name[0].String?.sval];
  if (!metric) return null;
  const fields = e.lexpr?.ColumnRef?.fields;
  if (!fields || !e.rexpr) return null;
  const column = fields[fields.length - 1].String?.sval;
  if (!column) return null;
  const op = operand(e.rexpr);
  if (!op) return null;
  return { column, metric, op, colStart: e.lexpr.ColumnRef.location };
}

const sameQuery = (a: { literal: string } | { param: number }, b: { literal: string } | { param: number }) =>
  'literal' in a ? 'literal' in b && a.literal === b.literal : 'param' in b && a.param === b.param;

/** Returns the pattern or null (then the statement runs in Postgres unchanged). */
/**
 * Patterns already recognised, per statement node: the hooks ask twice for one statement (is it a
 * vector query? then plan it), and cached parses hand the same node back for a repeated text.
 */
const recognized = new WeakMap<Node, { text: string; location: number; length: number; pat: KnnPattern | null }>();

export function recognizeKnn(text: string, stmt: Node, stmtLocation: number, stmtLength: number): KnnPattern | null {
  const hit = recognized.get(stmt);
  if (hit && hit.text === text && hit.location === stmtLocation && hit.length === stmtLength) return hit.pat;
  const pat = recognizeKnnUncached(text, stmt, stmtLocation, stmtLength);
  recognized.set(stmt, { text, location: stmtLocation, length: stmtLength, pat });
  return pat;
}

function recognizeKnnUncached(text: string, stmt: Node, stmtLocation: number, stmtLength: number): KnnPattern | null {
  const s = stmt.SelectStmt;
  if (!s || s.op !== 'SETOP_NONE' || s.withClause || s.distinctClause || s.groupClause || s.havingClause || s.windowClause
    || s.lockingClause || s.intoClause || s.valuesLists || s.groupDistinct) return null;
  if (s.limitOption !== 'LIMIT_OPTION_COUNT') return null;
  if (!s.fromClause || s.fromClause.length !== 1 || !s.fromClause[0].RangeVar) return null;
  if (!s.sortClause || s.sortClause.length !== 1) return null;
  const sort = s.sortClause[0].SortBy;
  if (sort.sortby_dir === 'SORTBY_DESC' || sort.sortby_dir === 'SORTBY_USING' || sort.sortby_nulls !== 'SORTBY_NULLS_DEFAULT') return null;
  const d = distanceExpr(sort.node);
  if (!d) return null;
  const limitParam: number | undefined = s.limitCount?.ParamRef?.number;
  const limit = limitParam ? 0 : constInt(s.limitCount);
  if (limit === null || limit < 0) return null;
  const offset = s.limitOffset ? constInt(s.limitOffset) : 0;
  if (offset === null || offset < 0) return null;
  const rv = s.fromClause[0].RangeVar;
  if (rv.catalogname || rv.inh === false) return null;

  const buf = Buffer.from(text, 'utf8');
  const latin = buf.toString('latin1');
  const end = stmtLength > 0 ? stmtLocation + stmtLength : buf.length;
  const slice = (a: number, b: number) => buf.subarray(a, b).toString('utf8');
  const head = /\s*(?:--[^\n]*\n\s*)*select\b/iy;
  head.lastIndex = stmtLocation;
  const hm = head.exec(latin);
  if (!hm) return null;
  const selStart = stmtLocation + hm[0].length;
  const fromKw = latin.slice(0, rv.location).search(/\bfrom\s*$/i);
  if (fromKw < selStart) return null;
  // ORDER BY: the last "order by" before the sort expression's first byte.
  const sortStart = minLocation(sort.node);
  const orderKw = latin.slice(0, sortStart).toLowerCase().lastIndexOf('order');
  if (orderKw < 0) return null;
  let fromEnd = orderKw;
  let w: WhereParts = { where: null, whereSpans: [], filterWhere: null, filterWhereNode: null };
  if (s.whereClause) {
    const wStart = minLocation(s.whereClause);
    const wKw = latin.slice(0, wStart).toLowerCase().lastIndexOf('where');
    if (wKw < rv.location) return null;
    fromEnd = wKw;
    w = whereParts(buf, latin, s.whereClause, wKw + 5, orderKw, d);
  }
  if (end < orderKw) return null;
  const selectList = slice(selStart, fromKw);
  const fromList = slice(fromKw + 4, fromEnd).trim();

  const distanceSpans: [number, number][] = [];
  const unnamed = new Set<number>();
  const selLatin = latin.slice(selStart, fromKw);
  for (const t of s.targetList ?? []) {
    const rt = t.ResTarget;
    const td = distanceExpr(rt?.val);
    if (!td || td.column !== d.column || td.metric !== d.metric || !sameQuery(td.op, d.op)) continue;
    const e = operandEnd(latin, td.op.start);
    if (e === null || td.colStart < selStart || e > fromKw) continue;
    // Only replace when the expression is the whole target (no surrounding operators inside it).
    const a = td.colStart - selStart;
    const b = e - selStart;
    const before = selLatin.slice(0, a).trimEnd();
    const after = selLatin.slice(b).trimStart();
    if (!(before === '' || before.endsWith(',')) || !(after === '' || after.startsWith(',') || /^as\b/i.test(after) || /^[A-Za-z_"]/.test(after))) continue;
    distanceSpans.push([a, b]);
    if (!rt.name) unnamed.add(distanceSpans.length - 1);
  }
  return {
    schema: rv.schemaname,
    table: rv.relname,
    ref: rv.alias?.aliasname ?? rv.relname,
    column: d.column,
    metric: d.metric,
    query: 'literal' in d.op ? { literal: d.op.literal } : { param: d.op.param },
    limit,
    limitParam,
    offset,
    selectList,
    fromList,
    ...w,
    distanceSpans,
    unnamed,
  };
}


/** The rewritten statement given the index's answer (ids in distance order, their distances). */
export function rewriteKnn(p: KnnPattern, keyColumn: string, ids: BigInt64Array | bigint[], dists: ArrayLike<number>): string {
  const idArr = `'{${Array.from(ids, String).join(',')}}'::bigint[]`;
  const distArr = `'{${Array.from(dists as ArrayLike<number>, (x) => (Number.isFinite(x) ? String(x) : x > 0 ? 'Infinity' : '-Infinity')).join(',')}}'::float8[]`;
  const key = `${quoteIdent(p.ref)}.${quoteIdent(keyColumn)}`;
  const pos = `array_position(${idArr}, ${key}::bigint)`;
  const selBuf = Buffer.from(p.selectList, 'utf8');
  let sel = '';
  let at = 0;
  p.distanceSpans.forEach(([a, b], i) => {
    sel += selBuf.subarray(at, a).toString('utf8') + `(${distArr})[${pos}]` + (p.unnamed.has(i) ? ' AS "?column?"' : '');
    at = b;
  });
  sel += selBuf.subarray(at).toString('utf8');
  const cond = `${key} = ANY(${idArr})`;
  const where = p.where === null ? null : replaceSpans(p.where, p.whereSpans, `(${distArr})[${pos}]`);
  return `SELECT ${eol(sel.trim())} FROM ${eol(p.fromList)} WHERE ${where ? `(${eol(where)}) AND ` : ''}${cond} ORDER BY ${pos} LIMIT ${p.limit}${p.offset ? ` OFFSET ${p.offset}` : ''}`;
}

/**
 * The statement prepared for the extended protocol: ids and distances arrive as two extra
 * parameters ($I bigint[], $D float8[]) at each Bind. When $I is NULL (no usable index at Bind
 * time, a transaction block, a WHERE clause) the same statement is Postgres's exact answer.
 */
export function rewriteKnnParams(p: KnnPattern, keyColumn: string, nParams: number): string {
  // A literal query vector stays a literal (an unknown-typed one takes the column's type, as in the client's text).
  const query = 'param' in p.query ? `$${p.query.param}` : quoteLiteral(p.query.literal);
  const I = `$${nParams + 1}::bigint[]`;
  const D = `$${nParams + 2}::float8[]`;
  const key = `${quoteIdent(p.ref)}.${quoteIdent(keyColumn)}`;
  const dist = `${quoteIdent(p.ref)}.${quoteIdent(p.column)} ${OP_TEXT[p.metric]} ${query}`;
  const pos = `array_position(${I}, ${key}::bigint)`;
  const selBuf = Buffer.from(p.selectList, 'utf8');
  let sel = '';
  let at = 0;
  p.distanceSpans.forEach(([a, b], i) => {
    sel += selBuf.subarray(at, a).toString('utf8') + `(CASE WHEN ${D} IS NULL THEN ${dist} ELSE (${D})[${pos}] END)` + (p.unnamed.has(i) ? ' AS "?column?"' : '');
    at = b;
  });
  sel += selBuf.subarray(at).toString('utf8');
  const limit = p.limitParam ? `$${p.limitParam}` : String(p.limit);
  return `SELECT ${eol(sel.trim())} FROM ${eol(p.fromList)} WHERE ${p.where ? `(${eol(p.where)}) AND ` : ''}(${I} IS NULL OR ${key} = ANY(${I})) ORDER BY CASE WHEN ${I} IS NULL THEN ${dist} END, ${pos} LIMIT ${limit}${p.offset ? ` OFFSET ${p.offset}` : ''}`;
}

const OP_TEXT: Record<Metric, string> = { l2: '<->', ip: '<#>', cos: '<=>' };

/**
 * A fragment of the client's text followed by what Winnow appends: a `-- comment` at its end would
 * swallow the rest of the line, so it is ended with a newline (harmless anywhere else: a fragment is
 * a whole expression or list, never inside a literal).
 */
export function eol(fragment: string): string {
  return fragment.includes('--') ? fragment + '\n' : fragment;
}

/** pgvector text '[1,2,3]' → Float32Array, parsed as pgvector parses it (null when malformed: Postgres reports the error). */
export function parseVectorLiteral(s: string): Float32Array | null {
  return parseVectorText(Buffer.from(s, 'utf8'));
}

// ---------------------------------------------------------------- WHERE: distances and thresholds

interface WhereParts {
  where: string | null;
  whereSpans: [number, number][];
  threshold?: Radius;
  filterWhere: string | null;
  filterWhereNode: Node | null;
}

const ASCII_WS = new Set([0x20, 0x09, 0x0a, 0x0d, 0x0c, 0x0b]);

/** [a, b) without ASCII whitespace at either end (never cuts into a UTF-8 sequence). */
function trimSpan(buf: Buffer, a: number, b: number): [number, number] {
  while (a < b && ASCII_WS.has(buf[a])) a++;
  while (b > a && ASCII_WS.has(buf[b - 1])) b--;
  return [a, b];
}

/** `text` with each byte span replaced by `by` (spans sorted, not overlapping). */
function replaceSpans(text: string, spans: [number, number][], by: string | ((i: number) => string)): string {
  if (!spans.length) return text;
  const b = Buffer.from(text, 'utf8');
  let out = '';
  let at = 0;
  spans.forEach(([x, y], i) => {
    out += b.subarray(at, x).toString('utf8') + (typeof by === 'string' ? by : by(i));
    at = y;
  });
  return out + b.subarray(at).toString('utf8');
}

const IDENT = String.raw`(?:"(?:[^"]|"")*"|[A-Za-z_\x80-\xff][\w$\x80-\xff]*)`;
/** Text from a distance's column reference to its operand: `[q.]col <op> `, nothing else (no parentheses). */
const DIST_HEAD = new RegExp(String.raw`^(?:${IDENT}\s*\.\s*){0,2}${IDENT}\s*(?:<->|<#>|<=>)\s*$`);

/** Byte span of a distance expression `col <op> operand` whose text is exactly that (else null). */
function distanceSpan(latin: string, td: Distance): [number, number] | null {
  const e = operandEnd(latin, td.op.start);
  if (e === null || !DIST_HEAD.test(latin.slice(td.colStart, td.op.start))) return null;
  return [td.colStart, e];
}

const sameDistance = (a: Distance, b: Distance) => a.column === b.column && a.metric === b.metric && sameQuery(a.op, b.op);

/**
 * Spans of every occurrence of distance `d` in `node` (not inside subqueries, whose columns may be
 * other tables'). False when one is found whose text cannot be replaced exactly.
 */
function distanceSpansIn(latin: string, node: unknown, d: Distance, out: [number, number][]): boolean {
  let ok = true;
  const walk = (x: unknown) => {
    if (!ok) return;
    if (Array.isArray(x)) return x.forEach(walk);
    if (!x || typeof x !== 'object') return;
    const n = x as Node;
    if (n.SubLink) return; // a subquery: its own scope
    if (n.A_Expr) {
      const td = distanceExpr(n);
      if (td && sameDistance(td, d)) {
        const sp = distanceSpan(latin, td);
        if (!sp) ok = false;
        else out.push(sp);
        return;
      }
    }
    for (const v of Object.values(n)) walk(v);
  };
  walk(node);
  out.sort((a, b) => a[0] - b[0]);
  return ok;
}

/** A numeric constant (optionally cast to a numeric type): its value and the end of its text. */
function numericConst(latin: string, n: Node): { value: number; start: number; end: number } | null {
  let c = n;
  let type: string | null = null;
  if (c.TypeCast) {
    const names = (c.TypeCast.typeName?.names ?? []).map((x: Node) => x.String?.sval);
    type = names[names.length - 1];
    if (!['float4', 'float8', 'numeric', 'int2', 'int4', 'int8'].includes(type!)) return null;
    c = c.TypeCast.arg;
  }
  const a = c?.A_Const;
  if (!a) return null;
  // A quoted number ('0.5') is an unknown literal that Postgres reads as float8 here.
  const text = a.sval && /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i.test(a.sval.sval ?? '') ? a.sval.sval : null;
  let value = a.ival ? (typeof a.ival.ival === 'number' ? a.ival.ival : 0) : a.fval ? Number(a.fval.fval) : text !== null ? Number(text) : null;
  if (value === null || !Number.isFinite(value)) return null;
  if (type === 'float4') value = Math.fround(value); // compared as the real it is cast to
  // The literal, possibly quoted or cast: -1.5e3, '0.5', 0.5::float8, '0.5'::real.
  const re = /(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|'[^']*')(?:\s*::\s*[A-Za-z_][\w]*(?:\s+precision)?)?/y;
  re.lastIndex = a.location;
  const m = re.exec(latin);
  if (!m) return null;
  return { value, start: a.location, end: a.location + m[0].length };
}

/** `d < r`, `d <= r`, `r > d`, `r >= d` for a distance matching `want` (any distance when omitted). */
function thresholdOf(latin: string, n: Node, want?: Distance): { d: Distance; radius: Radius; span: [number, number] } | null {
  const e = n.A_Expr;
  if (!e || e.kind !== 'AEXPR_OP' || e.name?.length !== 1) return null;
  const op: string = e.name[0].String?.sval;
  let dn: Node, cn: Node, inclusive: boolean;
  if (op === '<' || op === '<=') [dn, cn, inclusive] = [e.lexpr, e.rexpr, op === '<='];
  else if (op === '>' || op === '>=') [dn, cn, inclusive] = [e.rexpr, e.lexpr, op === '>='];
  else return null;
  const d = distanceExpr(dn);
  if (!d || (want && !sameDistance(d, want))) return null;
  const ds = distanceSpan(latin, d);
  const c = numericConst(latin, cn);
  if (!ds || !c) return null;
  const span: [number, number] = op[0] === '<' ? [ds[0], c.end] : [c.start, ds[1]];
  // The conjunct's text must be exactly `<distance> <op> <constant>` (or reversed).
  const mid = op[0] === '<' ? latin.slice(ds[1], c.start) : latin.slice(c.end, ds[0]);
  if (mid.trim() !== op) return null;
  return { d, radius: { r: c.value, inclusive }, span };
}

const conjuncts = (w: Node): Node[] => (w.BoolExpr?.boolop === 'AND_EXPR' ? w.BoolExpr.args : [w]);

/** The WHERE clause between byte offsets a and b: its text, distance spans and threshold. */
function whereParts(buf: Buffer, latin: string, whereNode: Node, a0: number, b0: number, d: Distance): WhereParts {
  const [a, b] = trimSpan(buf, a0, b0);
  const where = buf.subarray(a, b).toString('utf8');
  const abs: [number, number][] = [];
  const exact = distanceSpansIn(latin, whereNode, d, abs);
  const whereSpans = exact ? abs.map(([x, y]) => [x - a, y - a] as [number, number]) : [];
  const parts = conjuncts(whereNode);
  for (let i = 0; i < parts.length; i++) {
    const t = thresholdOf(latin, parts[i], d);
    if (!t || t.span[0] < a || t.span[1] > b) continue;
    const rest = parts.filter((_, j) => j !== i);
    const filterWhere = rest.length ? replaceSpans(where, [[t.span[0] - a, t.span[1] - a]], 'true') : null;
    const filterWhereNode = rest.length === 0 ? null : rest.length === 1 ? rest[0] : { BoolExpr: { boolop: 'AND_EXPR', args: rest } };
    return { where, whereSpans, threshold: t.radius, filterWhere, filterWhereNode };
  }
  return { where, whereSpans, filterWhere: where, filterWhereNode: whereNode };
}

// ---------------------------------------------------------------- range queries

/**
 * `SELECT … FROM t [alias] WHERE … AND col <op> q < r [AND …] …` without the ORDER BY distance LIMIT
 * shape: every row within r of q (any select list, ORDER BY, GROUP BY, LIMIT). The index finds the
 * ids within r; the statement runs unchanged in Postgres except that the threshold conjunct becomes
 * `pk = ANY(ids)` and every occurrence of the distance becomes the index's distance.
 */
export interface RangePattern {
  schema?: string;
  table: string;
  ref: string;
  column: string;
  metric: Metric;
  query: { literal: string };
  radius: Radius;
  /** The statement's text (UTF-8 exact) and spans in it: [start, end, 'ids' | 'dist']. */
  text: string;
  spans: [number, number, 'ids' | 'dist' | 'unnamed'][];
}

export function recognizeRange(text: string, stmt: Node, stmtLocation: number, stmtLength: number): RangePattern | null {
  const s = stmt.SelectStmt;
  if (!s || s.op !== 'SETOP_NONE' || s.withClause || s.lockingClause || s.intoClause || s.valuesLists || !s.whereClause) return null;
  if (!s.fromClause || s.fromClause.length !== 1 || !s.fromClause[0].RangeVar) return null;
  const rv = s.fromClause[0].RangeVar;
  if (rv.catalogname || rv.inh === false) return null;
  const buf = Buffer.from(text, 'utf8');
  const latin = buf.toString('latin1');
  const head = /\s*(?:--[^\n]*\n\s*)*select\b/iy;
  head.lastIndex = stmtLocation;
  if (!head.exec(latin)) return null;
  const [a, b] = trimSpan(buf, stmtLocation, stmtLength > 0 ? stmtLocation + stmtLength : buf.length);
  let found: ReturnType<typeof thresholdOf> = null;
  for (const c of conjuncts(s.whereClause)) {
    const t = thresholdOf(latin, c);
    if (t && 'literal' in t.d.op) {
      found = t;
      break;
    }
  }
  if (!found || found.span[0] < a || found.span[1] > b) return null;
  const d = found.d;
  const dist: [number, number][] = [];
  if (!distanceSpansIn(latin, s, d, dist)) return null;
  // A whole select-list entry without a name keeps Postgres's name for it (?column?).
  const unnamed = new Set<number>();
  for (const t of s.targetList ?? []) {
    const td = t.ResTarget && !t.ResTarget.name ? distanceExpr(t.ResTarget.val) : null;
    if (td && sameDistance(td, d)) unnamed.add(td.colStart);
  }
  const spans: [number, number, 'ids' | 'dist' | 'unnamed'][] = [[found.span[0] - a, found.span[1] - a, 'ids']];
  for (const [x, y] of dist) if (y <= found.span[0] || x >= found.span[1]) spans.push([x - a, y - a, unnamed.has(x) ? 'unnamed' : 'dist']);
  spans.sort((p, q) => p[0] - q[0]);
  return {
    schema: rv.schemaname,
    table: rv.relname,
    ref: rv.alias?.aliasname ?? rv.relname,
    column: d.column,
    metric: d.metric,
    query: { literal: (d.op as { literal: string }).literal },
    radius: found.radius,
    text: buf.subarray(a, b).toString('utf8'),
    spans,
  };
}

/**
 * Whether a SELECT's WHERE compares a distance with anything (`col <op> q < r`, r or q possibly
 * parameters): at Parse, the statements worth planning at each Bind once the parameters are known.
 */
export function hasDistanceThreshold(stmt: Node): boolean {
  const w = stmt.SelectStmt?.whereClause;
  if (!w) return false;
  return conjuncts(w).some((c) => {
    const e = c.A_Expr;
    if (!e || e.kind !== 'AEXPR_OP' || e.name?.length !== 1 || !['<', '<=', '>', '>='].includes(e.name[0].String?.sval)) return false;
    return !!(distanceExpr(e.lexpr) ?? distanceExpr(e.rexpr));
  });
}

/** The range statement restricted to the ids the index found within the radius. */
export function rewriteRange(p: RangePattern, keyColumn: string, ids: BigInt64Array | bigint[], dists: ArrayLike<number>): string {
  const idArr = `'{${Array.from(ids, String).join(',')}}'::bigint[]`;
  const distArr = `'{${Array.from(dists as ArrayLike<number>, (x) => (Number.isFinite(x) ? String(x) : x > 0 ? 'Infinity' : '-Infinity')).join(',')}}'::float8[]`;
  const key = `${quoteIdent(p.ref)}.${quoteIdent(keyColumn)}`;
  const lookup = `(${distArr})[array_position(${idArr}, ${key}::bigint)]`;
  return replaceSpans(p.text, p.spans.map(([x, y]) => [x, y]), (i) => (p.spans[i][2] === 'ids' ? `(${key} = ANY(${idArr}))` : p.spans[i][2] === 'unnamed' ? `${lookup} AS "?column?"` : lookup));
}
