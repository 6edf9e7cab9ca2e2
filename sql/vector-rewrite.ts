// Rewrites pgvector text literals ('[1,2,3]') into the float4-array form Winnow stores ('{1,2,3}')
// wherever the statement makes them vectors, by splicing replacements into the original SQL text at
// the literal's location from the real Postgres grammar (libpg-query); the statement is never re-deparsed.
//
// Vector contexts recognised:
//   - casts: '…'::vector(n), CAST('…' AS halfvec), vector '…'
//   - operands of <-> <#> <=> <+> and of + - * || = <> < <= > >= when the other operand is a vector
//     column (catalog), a cast to vector/halfvec or a vector function call
//   - arguments of pgvector's functions (l2_distance, subvector, …)
//   - INSERT … VALUES and UPDATE … SET into vector/halfvec columns; DEFAULT of a vector column
// A literal that is not valid pgvector text yields pgvector's error without running the statement.
import { PgvectorError, vectorTextToArrayText, type VectorKind } from './vector-format.ts';

export interface VectorColumn {
  kind: VectorKind;
  typmod: number;
}

/** What the rewriter needs to know about the database. */
export interface Catalog {
  /** Vector/halfvec columns of a table (by unqualified or qualified name); undefined if unknown. */
  vectorColumns(table: string): ReadonlyMap<string, VectorColumn> | undefined;
}

export const emptyCatalog: Catalog = { vectorColumns: () => undefined };

export type RewriteResult =
  | {
      ok: true;
      sql: string;
      changed: boolean;
      /** $n parameters the statement evidently uses as vector/halfvec (same contexts as literals). */
      params: Map<number, VectorKind>;
    }
  | { ok: false; error: PgvectorError; /** index of the statement whose literal failed */ index: number };

type Node = Record<string, any>;

const DISTANCE_OPS = new Set(['<->', '<#>', '<=>', '<+>']);
const VECTOR_OPS = new Set(['+', '-', '*', '||', '=', '<>', '<', '<=', '>', '>=']);
const VECTOR_FUNCS = new Set([
  'l2_distance', 'inner_product', 'cosine_distance', 'l1_distance', 'vector_dims', 'vector_norm', 'l2_norm',
  'l2_normalize', 'binary_quantize', 'subvector', 'vector_l2_squared_distance', 'vector_negative_inner_product',
  'vector_spherical_distance', 'vector_add', 'vector_sub', 'vector_mul', 'vector_concat', 'vector_cmp',
]);
const VECTOR_TYPES = new Set(['vector', 'halfvec']);

export interface Replacement {
  start: number; // byte offsets in the UTF-8 text
  end: number;
  text: string;
}

/** Byte length of the SQL string literal starting at byte offset `at`; -1 if not a plain/E/dollar string. */
export function literalExtent(buf: Buffer, at: number): number {
  let i = at;
  let escapes = false;
  const c0 = buf[i];
  if (c0 === 0x45 || c0 === 0x65) {
    // E'…'
    escapes = true;
    i++;
  }
  if (buf[i] === 0x27) {
    i++;
    while (i < buf.length) {
      const c = buf[i];
      if (escapes && c === 0x5c) {
        i += 2;
        continue;
      }
      if (c === 0x27) {
        if (buf[i + 1] === 0x27) {
          i += 2;
          continue;
        }
        return i + 1 - at;
      }
      i++;
    }
    return -1;
  }
  if (c0 === 0x24) {
    // $tag$…$tag$
    let j = i + 1;
    while (j < buf.length && buf[j] !== 0x24) j++;
    const tag = buf.subarray(i, j + 1);
    const close = buf.indexOf(tag, j + 1);
    return close < 0 ? -1 : close + tag.length - at;
  }
  return -1;
}

function typeNameOf(tn: Node | undefined): { kind: VectorKind; typmod: number } | undefined {
  const names: Node[] | undefined = tn?.names;
  if (!names?.length) return undefined;
  const last = names[names.length - 1]?.String?.sval;
  if (!VECTOR_TYPES.has(last)) return undefined;
  if (tn!.arrayBounds?.length) return undefined;
  const mods: Node[] | undefined = tn!.typmods;
  let typmod = -1;
  if (mods?.length === 1 && mods[0].A_Const?.ival !== undefined) typmod = mods[0].A_Const.ival.ival ?? 0;
  // An invalid typmod is Postgres's to report (vector_typmod_in raises pgvector's messages).
  if (typmod < 1 || typmod > 16000) typmod = -1;
  return { kind: last as VectorKind, typmod };
}

function stringConst(n: Node | undefined): { sval: string; location: number } | undefined {
  const c = n?.A_Const;
  if (c && c.sval !== undefined && c.location !== undefined) return { sval: c.sval.sval ?? '', location: c.location };
  return undefined;
}

function funcName(n: Node): string | undefined {
  const names: Node[] | undefined = n.funcname;
  return names?.[names.length - 1]?.String?.sval;
}

function opName(n: Node): string | undefined {
  const names: Node[] | undefined = n.name;
  return names?.[names.length - 1]?.String?.sval;
}

/** Collects RangeVar relation names of a statement (for column-type lookups). */
function collectRelations(node: unknown, out: Set<string>): void {
  if (Array.isArray(node)) {
    for (const x of node) collectRelations(x, out);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  for (const [k, v] of Object.entries(node as Node)) {
    if (k === 'RangeVar' && v && typeof v === 'object') {
      const rv = v as Node;
      if (rv.relname) out.add(rv.schemaname ? `${rv.schemaname}.${rv.relname}` : rv.relname);
    } else if ((k === 'relation') && v && typeof v === 'object' && (v as Node).relname) {
      const rv = v as Node;
      out.add(rv.schemaname ? `${rv.schemaname}.${rv.relname}` : rv.relname);
    }
    collectRelations(v, out);
  }
}

class Rewriter {
  readonly replacements: Replacement[] = [];
  private readonly seen = new Set<number>();
  private readonly columns = new Map<string, VectorColumn>();

  constructor(
    private readonly buf: Buffer,
    private readonly base: number,
    private readonly catalog: Catalog,
    stmt: Node,
  ) {
    const rels = new Set<string>();
    collectRelations(stmt, rels);
    for (const r of rels) {
      const cols = catalog.vectorColumns(r);
      if (cols) for (const [name, c] of cols) if (!this.columns.has(name)) this.columns.set(name, c);
    }
  }

  readonly params = new Map<number, VectorKind>();

  /** Rewrites the string constant `n` as a `kind` literal (throws PgvectorError on bad text); notes a $n there. */
  literal(n: Node | undefined, kind: VectorKind, typmod = -1): boolean {
    const p = n?.ParamRef?.number;
    if (typeof p === 'number') {
      if (!this.params.has(p)) this.params.set(p, kind);
      return false;
    }
    const c = stringConst(n);
    if (!c) return false;
    const start = this.base + c.location;
    if (this.seen.has(start)) return true;
    const len = literalExtent(this.buf, start);
    if (len < 0) return false;
    this.seen.add(start);
    this.replacements.push({ start, end: start + len, text: `'${vectorTextToArrayText(c.sval, kind, typmod)}'` });
    return true;
  }

  /** The vector kind an expression evidently has, if any. */
  kindOf(n: Node | undefined): VectorKind | undefined {
    if (!n) return undefined;
    if (n.TypeCast) return typeNameOf(n.TypeCast.typeName)?.kind;
    if (n.ColumnRef) {
      const fields: Node[] = n.ColumnRef.fields ?? [];
      const name = fields[fields.length - 1]?.String?.sval;
      return name !== undefined ? this.columns.get(name)?.kind : undefined;
    }
    if (n.FuncCall) {
      const f = funcName(n.FuncCall);
      if (f === 'l2_normalize' || f === 'subvector' || f === 'avg' || f === 'sum') {
        return this.kindOf(n.FuncCall.args?.[0]);
      }
      return undefined;
    }
    if (n.A_Expr && ['+', '-', '*', '||'].includes(opName(n.A_Expr) ?? '')) {
      return this.kindOf(n.A_Expr.lexpr) ?? this.kindOf(n.A_Expr.rexpr);
    }
    const siblings = this.siblings(n);
    if (siblings) for (const x of siblings) {
      const k = this.kindOf(x);
      if (k) return k;
    }
    return undefined;
  }

  /** Expressions whose types Postgres unifies (a literal among them takes the others' type). */
  siblings(n: Node): Node[] | undefined {
    if (n.CoalesceExpr) return n.CoalesceExpr.args;
    if (n.MinMaxExpr) return n.MinMaxExpr.args;
    if (n.A_ArrayExpr) return n.A_ArrayExpr.elements;
    if (n.CaseExpr) return [...(n.CaseExpr.args ?? []).map((w: Node) => w.CaseWhen?.result), n.CaseExpr.defresult].filter(Boolean);
    return undefined;
  }

  walk(node: unknown): void {
    if (Array.isArray(node)) {
      for (const x of node) this.walk(x);
      return;
    }
    if (node === null || typeof node !== 'object') return;
    const n = node as Node;
    if (n.TypeCast) {
      const t = typeNameOf(n.TypeCast.typeName);
      if (t) this.literal(n.TypeCast.arg, t.kind, t.typmod);
    } else if (this.siblings(n)) {
      const sib = this.siblings(n)!;
      const k = sib.map((x) => this.kindOf(x)).find(Boolean);
      if (k) for (const x of sib) this.literal(x, k);
    } else if (n.SelectStmt?.valuesLists) {
      const rows: Node[][] = n.SelectStmt.valuesLists.map((r: Node) => r.List?.items ?? []);
      const width = Math.max(0, ...rows.map((r) => r.length));
      for (let c = 0; c < width; c++) {
        const k = rows.map((r) => this.kindOf(r[c])).find(Boolean);
        if (k) for (const r of rows) this.literal(r[c], k);
      }
    } else if (n.A_Expr && n.A_Expr.kind === 'AEXPR_IN') {
      const k = this.kindOf(n.A_Expr.lexpr);
      const items: Node[] = n.A_Expr.rexpr?.List?.items ?? (Array.isArray(n.A_Expr.rexpr) ? n.A_Expr.rexpr : []);
      if (k) for (const x of items) this.literal(x, k);
    } else if (n.A_Expr && ['AEXPR_OP', 'AEXPR_DISTINCT', 'AEXPR_NOT_DISTINCT', 'AEXPR_NULLIF'].includes(n.A_Expr.kind)) {
      const op = opName(n.A_Expr) ?? '';
      const { lexpr, rexpr } = n.A_Expr;
      if (DISTANCE_OPS.has(op) || VECTOR_OPS.has(op)) {
        const lk = this.kindOf(lexpr);
        const rk = this.kindOf(rexpr);
        const distance = DISTANCE_OPS.has(op);
        const slot = (x: Node | undefined) => stringConst(x) || x?.ParamRef;
        if (slot(rexpr) && (lk || (distance && !slot(lexpr)))) this.literal(rexpr, lk ?? 'vector');
        if (slot(lexpr) && (rk || (distance && !slot(rexpr)))) this.literal(lexpr, rk ?? 'vector');
      }
    } else if (n.FuncCall) {
      const f = funcName(n.FuncCall);
      if (f && VECTOR_FUNCS.has(f)) {
        const args: Node[] = n.FuncCall.args ?? [];
        const known = args.map((a) => this.kindOf(a)).find((k) => k !== undefined);
        // Only literals and no typed argument: pgvector resolves the vector_* functions (one overload)
        // and reports the others as ambiguous (vector vs halfvec), which Postgres does here too.
        const nonLiteral = args.some((a) => !a.A_Const);
        const kind = known ?? (nonLiteral || (f.startsWith('vector_') && f !== 'vector_dims') ? 'vector' : undefined);
        if (kind) for (const a of args) if (stringConst(a) || a.ParamRef) this.literal(a, kind);
      }
    } else if (n.ExecuteStmt) {
      const kinds = (this.catalog as AllColumnsCatalog).preparedParams?.(n.ExecuteStmt.name);
      (n.ExecuteStmt.params ?? []).forEach((p: Node, i: number) => {
        const k = kinds?.[i];
        if (k) this.literal(p, k);
      });
    } else if (n.InsertStmt) {
      this.insert(n.InsertStmt);
    } else if (n.UpdateStmt) {
      for (const t of n.UpdateStmt.targetList ?? []) {
        const rt = t.ResTarget;
        const col = rt?.name !== undefined ? this.columns.get(rt.name) : undefined;
        if (col) this.literal(rt.val, col.kind, col.typmod);
      }
    } else if (n.ColumnDef) {
      const t = typeNameOf(n.ColumnDef.typeName);
      if (t) {
        for (const c of n.ColumnDef.constraints ?? []) {
          if (c.Constraint?.contype === 'CONSTR_DEFAULT') this.literal(c.Constraint.raw_expr, t.kind, t.typmod);
        }
        if (n.ColumnDef.raw_default) this.literal(n.ColumnDef.raw_default, t.kind, t.typmod);
      }
    }
    for (const v of Object.values(n)) if (v && typeof v === 'object') this.walk(v);
  }

  private insert(ins: Node): void {
    const rel = ins.relation;
    if (!rel?.relname) return;
    const cols = this.catalog.vectorColumns(rel.schemaname ? `${rel.schemaname}.${rel.relname}` : rel.relname);
    if (!cols || cols.size === 0) return;
    const values: Node[] | undefined = ins.selectStmt?.SelectStmt?.valuesLists;
    if (!values) return;
    let names: (string | undefined)[];
    if (ins.cols?.length) names = ins.cols.map((c: Node) => c.ResTarget?.name);
    else names = [...((this.catalog as AllColumnsCatalog).allColumns?.(rel.relname) ?? [])];
    for (const row of values) {
      const items: Node[] = row.List?.items ?? [];
      items.forEach((item, i) => {
        const col = names[i] !== undefined ? cols.get(names[i]!) : undefined;
        if (col) this.literal(item, col.kind, col.typmod);
      });
    }
  }
}

/** Optional catalog extensions. */
export interface AllColumnsCatalog extends Catalog {
  /** Every column name of a table in order (INSERT without a column list). */
  allColumns?(table: string): readonly string[] | undefined;
  /** Parameter kinds of an SQL-level prepared statement (EXECUTE name('[1,2]')). */
  preparedParams?(name: string): readonly (VectorKind | undefined)[] | undefined;
}

/**
 * Rewrites the vector literals of one statement. `stmt` is libpg-query's node for it and `location`
 * its byte offset in `text` (ParsedStatement.location).
 */
export function rewriteStatements(
  text: string,
  statements: readonly { stmt: Record<string, unknown> }[],
  catalog: Catalog,
  /** Further replacements (byte ranges of `text`), e.g. whole statements the caller substitutes. */
  extra: readonly Replacement[] = [],
): RewriteResult {
  const buf = Buffer.from(text, 'utf8');
  const all: Replacement[] = [...extra];
  const params = new Map<number, VectorKind>();
  let index = 0;
  try {
    for (const s of statements) {
      const r = new Rewriter(buf, 0, catalog, s.stmt as Node);
      r.walk(s.stmt);
      all.push(...r.replacements);
      for (const [k, v] of r.params) if (!params.has(k)) params.set(k, v);
      index++;
    }
  } catch (err) {
    if (err instanceof PgvectorError) return { ok: false, error: err, index };
    throw err;
  }
  if (all.length === 0) return { ok: true, sql: text, changed: false, params };
  all.sort((a, b) => a.start - b.start);
  const parts: Buffer[] = [];
  let pos = 0;
  for (const r of all) {
    parts.push(buf.subarray(pos, r.start), Buffer.from(r.text, 'utf8'));
    pos = r.end;
  }
  parts.push(buf.subarray(pos));
  return { ok: true, sql: Buffer.concat(parts).toString('utf8'), changed: true, params };
}

/** A statement that makes Postgres itself raise `e` (so transaction state follows, as with pgvector). */
export function raiseStatement(e: PgvectorError): string {
  const q = (x: string) => `'${x.replace(/'/g, "''")}'`;
  let tag = 'winnow_raise';
  while (e.message.includes(`$${tag}$`) || (e.detail ?? '').includes(`$${tag}$`)) tag += '_';
  return `DO $${tag}$BEGIN RAISE EXCEPTION USING ERRCODE = ${q(e.code)}, MESSAGE = ${q(e.message)}${e.detail ? `, DETAIL = ${q(e.detail)}` : ''}; END$${tag}$`;
}
