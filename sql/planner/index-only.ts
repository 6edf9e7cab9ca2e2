// Answering a vector query from the index alone: when every output column is the table's key or the
// ORDER BY distance, the index already holds the answer (ids and exact refine distances) and Postgres
// has nothing to add — no round trip. Whether that is safe (privilege, row-level security, this
// session's uncommitted changes) is decided by the caller (prepared.ts, visibility.ts); this file only
// recognises the shape and encodes the rows exactly as Postgres would send them.
import { CommandComplete, DataRow, RowDescription, formatCode, type FieldDescription } from '../../server/protocol/messages.ts';
import type { KnnPattern } from './recognize.ts';
import { quoteIdent } from '../quote.ts';
import { ddlEpoch } from './visibility.ts';

type Node = Record<string, any>;

/**
 * A key column, or the ORDER BY distance: computed with the query vector in parameter `param`
 * (extended protocol), or with the ORDER BY's own literal (`param: 0`, simple protocol).
 */
export type OutputColumn = 'key' | { param: number };

/** Key column types whose values the index holds exactly (ids are int64 inside). */
const INTEGER_TYPES: Record<number, number> = { 20: 8, 23: 4, 21: 2 };
const FLOAT8 = 701;
const OP_OF: Record<string, string> = { l2: '<->', ip: '<#>', cos: '<=>' };

/** `col <op> $n` or `col <op> $n::vector` on the pattern's column and operator: n, else null. */
function distanceParam(v: Node, pat: KnnPattern): number | null {
  const e = v?.A_Expr;
  if (!e || e.kind !== 'AEXPR_OP' || e.name?.length !== 1 || e.name[0].String?.sval !== OP_OF[pat.metric]) return null;
  const fields: Node[] | undefined = e.lexpr?.ColumnRef?.fields;
  if (!fields || fields[fields.length - 1].String?.sval !== pat.column) return null;
  if (fields.length === 2 && fields[0].String?.sval !== pat.ref) return null;
  let r = e.rexpr;
  if (r?.TypeCast) {
    const names = (r.TypeCast.typeName?.names ?? []).map((x: Node) => x.String?.sval);
    if (names[names.length - 1] !== 'vector' || r.TypeCast.typeName?.arrayBounds) return null;
    r = r.TypeCast.arg;
  }
  return typeof r?.ParamRef?.number === 'number' ? r.ParamRef.number : null;
}

/**
 * The output columns when the select list is only the key column (bare or qualified by the table's
 * name/alias) and the ORDER BY distance (drivers such as postgres.js send the query vector once per
 * use, as separate parameters: Bind checks they are equal); null otherwise.
 */
export function indexOnlyColumns(stmt: Node, pat: KnnPattern, keyColumn: string): OutputColumn[] | null {
  const targets: Node[] = stmt.SelectStmt?.targetList ?? [];
  if (targets.length === 0) return null;
  const literal = !('param' in pat.query);
  const out: OutputColumn[] = [];
  let literalDistances = 0;
  for (const t of targets) {
    const v = t.ResTarget?.val;
    const fields: Node[] | undefined = v?.ColumnRef?.fields;
    if (fields) {
      const names = fields.map((f) => f.String?.sval);
      if (names.some((n) => n === undefined) || names.length > 2) return null; // a * somewhere, or schema-qualified
      if (names[names.length - 1] !== keyColumn || (names.length === 2 && names[0] !== pat.ref)) return null;
      out.push('key');
      continue;
    }
    if (literal) {
      // recognize.ts found the select-list expressions equal to the ORDER BY's (same column, operator, literal).
      if (!v?.A_Expr) return null;
      literalDistances++;
      out.push({ param: 0 });
      continue;
    }
    const param = distanceParam(v, pat);
    if (param === null) return null;
    out.push({ param });
  }
  if (literal && literalDistances !== pat.distanceSpans.length) return null;
  return out;
}

/** Column names as Postgres would give them: the alias, else the column's name, else ?column?. */
export function outputNames(stmt: Node, keyColumn: string): string[] {
  return (stmt.SelectStmt?.targetList ?? []).map((t: Node) => t.ResTarget?.name ?? (t.ResTarget?.val?.ColumnRef ? keyColumn : '?column?'));
}

/**
 * The simple protocol's description of an index-only answer, from the key column's own description
 * (Postgres's, read once per table with `SELECT key FROM t LIMIT 0`).
 */
export function simpleFields(columns: OutputColumn[], names: string[], key: FieldDescription): FieldDescription[] {
  return columns.map((c, i) => (c === 'key'
    ? { ...key, name: names[i], format: 0 }
    : { name: names[i], tableOid: 0, columnAttr: 0, typeOid: FLOAT8, typeSize: 8, typeModifier: -1, format: 0 }));
}

/** True when Postgres's own description of the statement has the types the encoder writes. */
export function encodable(columns: OutputColumn[], fields: FieldDescription[]): boolean {
  if (fields.length !== columns.length) return false;
  return columns.every((c, i) => (c === 'key' ? INTEGER_TYPES[fields[i].typeOid] !== undefined : fields[i].typeOid === FLOAT8));
}

/** Every distance column's parameter carries the same bytes (and format) as the ORDER BY's. */
export function sameQueryParams(columns: OutputColumn[], queryParam: number, params: (Buffer | null)[], formatOf: (i: number) => number): boolean {
  const q = params[queryParam - 1];
  return columns.every((c) => c === 'key' || c.param === 0 || c.param === queryParam || (q != null && params[c.param - 1] != null && params[c.param - 1]!.equals(q) && formatOf(c.param - 1) === formatOf(queryParam - 1)));
}

/**
 * float8out's text: shortest round-trip digits (as JS), but an exponent when the decimal exponent is
 * below -4 or at least 15, written with a sign and at least two digits ("1e-05", "1.5e+15").
 */
export function float8Text(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'Infinity' : '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const e = x.toExponential(); // shortest digits: "1.2345e-7"
  const m = /^(-?[\d.]+)e([+-])(\d+)$/.exec(e)!;
  const realExp = (m[2] === '-' ? -1 : 1) * Number(m[3]);
  if (realExp >= -4 && realExp < 15) return String(x);
  return `${m[1]}e${m[2]}${m[3].padStart(2, '0')}`;
}

function keyValue(id: bigint, field: FieldDescription, format: number): string | Buffer {
  if (format === 0) return id.toString();
  const size = INTEGER_TYPES[field.typeOid];
  const b = Buffer.allocUnsafe(size);
  if (size === 8) b.writeBigInt64BE(id);
  else if (size === 4) b.writeInt32BE(Number(id));
  else b.writeInt16BE(Number(id));
  return b;
}

function distanceValue(d: number, format: number): string | Buffer {
  if (format === 0) return float8Text(d);
  const b = Buffer.allocUnsafe(8);
  b.writeDoubleBE(d);
  return b;
}

/** DataRow messages for the rows ids[from, to) with result formats as given in Bind. */
export function indexOnlyRows(columns: OutputColumn[], fields: FieldDescription[], formats: number[], ids: BigInt64Array, dists: Float32Array, from: number, to: number): Buffer[] {
  const fmt = (i: number) => formatCode(formats, i);
  const rows: Buffer[] = [];
  for (let r = from; r < to; r++) {
    rows.push(DataRow(columns.map((c, i) => (c === 'key' ? keyValue(ids[r], fields[i], fmt(i)) : distanceValue(dists[r], fmt(i))))));
  }
  return rows;
}

/** The statement's fields with the result formats requested in Bind (for Describe of the portal). */
export function withFormats(fields: FieldDescription[], formats: number[]): FieldDescription[] {
  return fields.map((f, i) => ({ ...f, format: formatCode(formats, i) }));
}

/** The key column's description per table (tableOid, attnum, type), read once with `SELECT key FROM t LIMIT 0`. */
const keyFields = new Map<number, { field: FieldDescription; epoch: number }>();

/**
 * A simple-protocol query's whole answer from the index (RowDescription, DataRows, CommandComplete),
 * or null when its output is not only the key and the distance. The caller has checked that the index
 * alone may answer (privilege, no row-level security, no uncommitted change of this session).
 */
export async function simpleIndexOnlyAnswer(
  query: (text: string) => Promise<{ fields: FieldDescription[]; error?: unknown }>,
  stmt: Node, pat: KnnPattern, relid: number, table: string, keyColumn: string,
  res: { ids: BigInt64Array; distances: Float32Array },
): Promise<Buffer[] | null> {
  const output = indexOnlyColumns(stmt, pat, keyColumn);
  if (!output) return null;
  // Any DDL through Winnow (an ALTER COLUMN … TYPE among them) drops what was read.
  let key = keyFields.get(relid)?.epoch === ddlEpoch() ? keyFields.get(relid)!.field : undefined;
  if (!key) {
    const r = await query(`SELECT ${quoteIdent(keyColumn)} FROM ${table} LIMIT 0`);
    if (r.error || r.fields.length !== 1) return null;
    key = r.fields[0];
    keyFields.set(relid, { field: key, epoch: ddlEpoch() });
  }
  const fields = simpleFields(output, outputNames(stmt, keyColumn), key);
  if (!encodable(output, fields)) return null;
  const from = Math.min(pat.offset, res.ids.length);
  const rows = indexOnlyRows(output, fields, [], res.ids, res.distances, from, res.ids.length);
  return [RowDescription(fields), ...rows, CommandComplete(`SELECT ${rows.length}`)];
}

