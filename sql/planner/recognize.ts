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
import type { Metric } from '../../native/index.ts';
import { quoteIdent } from '../quote.ts';

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
  /** Byte spans in selectList (relative) of expressions equal to the ORDER BY distance. */
  distanceSpans: [number, number][];
  /** Select-list distance spans that carry no alias (Postgres would name them ?column?). */
  unnamed: Set<number>;
}

const OPS: Record<string, Metric> = { '<->': 'l2', '<#>': 'ip', '<=>': 'cos' };

function minLocation(n: unknown): number {
  let min = Infinity;
  const walk = (x: unknown) => {
    if (Array.isArray(x)) x.forEach(walk);
    else if (x && typeof x === 'object') {
      for (const [k, v] of Object.entries(x)) {
        if (k === 'location' && typeof v === 'number' && v >= 0) min = Math.min(min, v);
        else walk(v);
      }
    }
  };
  walk(n);
  return min;
}

function constInt(n: Node | undefined): number | null {
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
export function recognizeKnn(text: string, stmt: Node, stmtLocation: number, stmtLength: number): KnnPattern | null {
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
  let where: string | null = null;
  if (s.whereClause) {
    const wStart = minLocation(s.whereClause);
    const wKw = latin.slice(0, wStart).toLowerCase().lastIndexOf('where');
    if (wKw < rv.location) return null;
    fromEnd = wKw;
    where = slice(wKw + 5, orderKw).trim();
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
    where,
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
  return `SELECT ${sel.trim()} FROM ${p.fromList} WHERE ${p.where ? `(${p.where}) AND ` : ''}${cond} ORDER BY ${pos} LIMIT ${p.limit}${p.offset ? ` OFFSET ${p.offset}` : ''}`;
}

/**
 * The statement prepared for the extended protocol: ids and distances arrive as two extra
 * parameters ($I bigint[], $D float8[]) at each Bind. When $I is NULL (no usable index at Bind
 * time, a transaction block, a WHERE clause) the same statement is Postgres's exact answer.
 */
export function rewriteKnnParams(p: KnnPattern, keyColumn: string, nParams: number): string {
  if (!('param' in p.query)) throw new Error('rewriteKnnParams needs a parameter query vector');
  const I = `$${nParams + 1}::bigint[]`;
  const D = `$${nParams + 2}::float8[]`;
  const key = `${quoteIdent(p.ref)}.${quoteIdent(keyColumn)}`;
  const dist = `${quoteIdent(p.ref)}.${quoteIdent(p.column)} ${OP_TEXT[p.metric]} $${p.query.param}`;
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
  return `SELECT ${sel.trim()} FROM ${p.fromList} WHERE ${p.where ? `(${p.where}) AND ` : ''}(${I} IS NULL OR ${key} = ANY(${I})) ORDER BY CASE WHEN ${I} IS NULL THEN ${dist} END, ${pos} LIMIT ${limit}${p.offset ? ` OFFSET ${p.offset}` : ''}`;
}

const OP_TEXT: Record<Metric, string> = { l2: '<->', ip: '<#>', cos: '<=>' };

/** pgvector text '[1,2,3]' → Float32Array (null when malformed: Postgres reports the error). */
export function parseVectorLiteral(s: string): Float32Array | null {
  const t = s.trim();
  if (!t.startsWith('[') || !t.endsWith(']')) return null;
  const parts = t.slice(1, -1).split(',');
  const out = new Float32Array(parts.length);
  for (let i = 0; i < parts.length; i++) {
    const x = Number(parts[i].trim());
    if (parts[i].trim() === '' || !Number.isFinite(x)) return null;
    out[i] = x;
  }
  return out;
}
