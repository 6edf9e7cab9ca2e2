// SQL-level PREPARE / EXECUTE on the simple protocol:
//
//   PREPARE q(vector) AS SELECT … ORDER BY emb <=> $1 LIMIT 10;   -- Postgres prepares it as usual
//   EXECUTE q('[…]');                                             -- planned like the SELECT itself
//
// The session remembers the text of each PREPARE it forwards (single-statement queries), and an
// EXECUTE of a remembered statement is turned back into its SELECT with the arguments substituted
// for $n, which the planner can then answer natively. When it is not planned, the EXECUTE itself goes
// to Postgres unchanged. Before the first use of a name the session checks pg_prepared_statements
// (the PREPARE may have failed); DEALLOCATE, DISCARD and a PREPARE over an existing name forget it.
import { minLocation, type ParsedStatement } from '../parse.ts';
import { listItems } from './cte.ts';
import { eol } from './recognize.ts';

type Node = Record<string, any>;

interface Remembered {
  /** The prepared SELECT's text (UTF-8) and, relative to it, the byte spans of its $n references. */
  query: string;
  params: { number: number; start: number; end: number }[];
  /** Declared parameter types as written (`vector`, `int`, …); shorter than the parameters when omitted. */
  types: string[];
  /** pg_prepared_statements confirmed the statement exists. */
  confirmed: boolean;
}

export class SqlPreparedStatements {
  private byName = new Map<string, Remembered>();

  /** Byte offset of the EXECUTE keyword of an `EXPLAIN [options] EXECUTE …` statement starting at `from`. */
  static executeKeyword(text: string, from: number): number {
    const latin = Buffer.from(text, 'utf8').toString('latin1');
    const m = /\bexecute\b/i.exec(latin.slice(from));
    return m ? from + m.index : -1;
  }

  /** Called for every simple Query the session forwards. */
  note(text: string, statements: ParsedStatement[]): void {
    for (const st of statements) {
      const n = st.stmt as Node;
      if (st.kind === 'PrepareStmt') {
        const name: string = n.PrepareStmt.name;
        // Preparing an existing name fails in Postgres: what it holds is no longer certain here.
        if (this.byName.has(name) || statements.length !== 1) {
          this.byName.delete(name);
          continue;
        }
        const r = remember(text, st);
        if (r) this.byName.set(name, r);
      } else if (st.kind === 'DeallocateStmt') {
        const name: string | undefined = n.DeallocateStmt.name;
        if (name === undefined || n.DeallocateStmt.isall) this.byName.clear();
        else this.byName.delete(name);
      } else if (st.kind === 'DiscardStmt') {
        this.byName.clear();
      }
    }
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** The prepared SELECT's text (with its $n), or null when the name is not known. */
  queryOf(name: string): string | null {
    return this.byName.get(name)?.query ?? null;
  }

  isConfirmed(name: string): boolean {
    return this.byName.get(name)?.confirmed ?? false;
  }

  confirm(name: string, exists: boolean): void {
    const r = this.byName.get(name);
    if (!r) return;
    if (exists) r.confirmed = true;
    else this.byName.delete(name);
  }

  /**
   * The SELECT an `EXECUTE name(args)` runs, with the arguments in place of $n; null when unknown.
   * `at` is the byte offset of the statement (or of the EXECUTE keyword inside an EXPLAIN).
   */
  substitute(text: string, ex: Node, at: number): string | null {
    const r = ex ? this.byName.get(ex.name) : undefined;
    if (!r) return null;
    const buf = Buffer.from(text, 'utf8');
    const latin = buf.toString('latin1');
    const args: Node[] = ex.params ?? [];
    let spans: [number, number][] = [];
    if (args.length) {
      const head = /\s*execute\s+(?:"(?:[^"]|"")*"|[^\s(;]+)\s*\(/iy;
      head.lastIndex = at;
      const m = head.exec(latin);
      if (!m) return null;
      const items = listItems(latin, at + m[0].length - 1);
      if (!items || items.length !== args.length) return null;
      spans = items;
    }
    const maxParam = r.params.reduce((x, p) => Math.max(x, p.number), 0);
    if (maxParam > args.length) return null; // Postgres reports the wrong number of parameters
    const qb = Buffer.from(r.query, 'utf8');
    let out = '';
    let pos = 0;
    for (const p of r.params) {
      const i = p.number - 1;
      const argText = eol(buf.subarray(spans[i][0], spans[i][1]).toString('utf8'));
      out += qb.subarray(pos, p.start).toString('utf8') + argument(argText, args[i], r.types[i]);
      pos = p.end;
    }
    return out + qb.subarray(pos).toString('utf8');
  }
}

const INT_TYPES = /^(pg_catalog\.)?(int|int2|int4|int8|integer|smallint|bigint)$/i;

/**
 * An argument as it should appear in place of $n: constants as written (a string constant cast to the
 * declared type, so `'[…]'::vector` is recognised as a query vector), anything else parenthesised and cast.
 */
function argument(text: string, node: Node, type: string | undefined): string {
  const c = node.A_Const;
  if (c && (c.ival || c.fval)) {
    const bare = /^-/.test(text) ? `(${text})` : text;
    return !type || INT_TYPES.test(type) ? bare : `${bare}::${type}`;
  }
  if (c && c.sval) return type ? `${text}::${type}` : text;
  if (c && c.isnull) return type ? `NULL::${type}` : 'NULL';
  const cast = node.TypeCast;
  if (cast?.arg?.A_Const && !type) return text;
  if (cast?.arg?.A_Const && type) {
    const names: string[] = (cast.typeName?.names ?? []).map((x: Node) => x.String?.sval);
    if (names[names.length - 1] === type.replace(/\(.*$/, '').trim().toLowerCase()) return text;
  }
  return type ? `(${text})::${type}` : `(${text})`;
}

function remember(text: string, st: ParsedStatement): Remembered | null {
  const p = (st.stmt as Node).PrepareStmt;
  if (!p.query?.SelectStmt) return null;
  const buf = Buffer.from(text, 'utf8');
  const latin = buf.toString('latin1');
  const end = st.length > 0 ? st.location + st.length : buf.length;
  const first = minLocation(p.query);
  if (!Number.isFinite(first)) return null;
  const start = latin.slice(0, first + 1).toLowerCase().lastIndexOf('select');
  if (start < st.location) return null;
  let e = end;
  while (e > start && /[\s;]/.test(latin[e - 1])) e--;
  const types: string[] = [];
  const argtypes: Node[] = p.argtypes ?? [];
  if (argtypes.length) {
    const open = latin.lastIndexOf('(', argtypes[0].TypeName?.location ?? -1);
    const items = open >= 0 ? listItems(latin, open) : null;
    if (!items || items.length !== argtypes.length) return null;
    for (const [a, b] of items) types.push(buf.subarray(a, b).toString('utf8'));
  }
  const params: Remembered['params'] = [];
  const walk = (x: unknown) => {
    if (Array.isArray(x)) return x.forEach(walk);
    if (!x || typeof x !== 'object') return;
    const n = x as Node;
    if (n.ParamRef) {
      const m = /\$(\d+)/y;
      m.lastIndex = n.ParamRef.location;
      const hit = m.exec(latin);
      if (hit && Number(hit[1]) === n.ParamRef.number) params.push({ number: n.ParamRef.number, start: n.ParamRef.location - start, end: n.ParamRef.location + hit[0].length - start });
      else params.push({ number: -1, start: 0, end: 0 });
      return;
    }
    for (const v of Object.values(n)) walk(v);
  };
  walk(p.query);
  if (params.some((x) => x.number < 1 || x.start < 0 || x.end > e - start)) return null;
  params.sort((a, b) => a.start - b.start);
  return { query: buf.subarray(start, e).toString('utf8'), params, types, confirmed: false };
}

