// Nearest-neighbour parts inside a larger statement: common table expressions and subqueries in FROM.
//
//   WITH nn AS (SELECT id … ORDER BY emb <-> q LIMIT 10) SELECT … FROM nn JOIN …
//   SELECT … FROM (SELECT … ORDER BY emb <-> q LIMIT 10) s JOIN …
//
// Each such SELECT is located in the original text (the parenthesis around it, found by scanning the
// text the way Postgres's lexer skips strings, quoted identifiers, comments and dollar quotes) so the
// session can plan it like a top-level query and splice its rewritten, by-id form into the statement
// in place; the rest of the statement runs in Postgres unchanged.
import { minLocation } from '../parse.ts';

type Node = Record<string, any>;

export interface InnerSelect {
  /** `{ SelectStmt: … }` of the subquery. */
  stmt: Node;
  /** Byte range of the SELECT's text (from the SELECT keyword to before its closing parenthesis). */
  start: number;
  end: number;
  /** For EXPLAIN: `CTE name` or `subquery alias`. */
  label: string;
}

/** The SELECTs of WITH items and FROM-clause subqueries (also inside joins) of a top-level SELECT. */
export function innerSelects(text: string, stmt: Node): InnerSelect[] {
  const s = stmt.SelectStmt;
  if (!s) return [];
  const candidates: { q: Node; label: string }[] = [];
  for (const c of s.withClause?.ctes ?? []) {
    const q = c.CommonTableExpr?.ctequery;
    if (q?.SelectStmt && !s.withClause.recursive) candidates.push({ q, label: `CTE ${c.CommonTableExpr.ctename}` });
  }
  const fromItem = (f: Node) => {
    const rs = f.RangeSubselect;
    if (rs && !rs.lateral && rs.subquery?.SelectStmt) candidates.push({ q: rs.subquery, label: `subquery ${rs.alias?.aliasname ?? '(unnamed)'}` });
    if (f.JoinExpr) {
      fromItem(f.JoinExpr.larg);
      fromItem(f.JoinExpr.rarg);
    }
  };
  for (const f of s.fromClause ?? []) fromItem(f);
  if (!candidates.length) return [];
  const buf = Buffer.from(text, 'utf8');
  const latin = buf.toString('latin1');
  const out: InnerSelect[] = [];
  for (const { q, label } of candidates) {
    const first = minLocation(q);
    if (!Number.isFinite(first)) continue;
    const start = latin.slice(0, first + 1).toLowerCase().lastIndexOf('select');
    if (start < 0) continue;
    let open = start - 1;
    while (open >= 0 && /\s/.test(latin[open])) open--;
    if (latin[open] !== '(') continue;
    const close = matchingParen(latin, open);
    if (close < 0) continue;
    out.push({ stmt: q, start, end: close, label });
  }
  return out;
}

/** Replaces byte ranges of `text` (non-overlapping) with new texts. */
export function spliceText(text: string, parts: { start: number; end: number; text: string }[]): string {
  const buf = Buffer.from(text, 'utf8');
  const sorted = [...parts].sort((a, b) => a.start - b.start);
  let out = '';
  let at = 0;
  for (const p of sorted) {
    out += buf.subarray(at, p.start).toString('utf8') + p.text;
    at = p.end;
  }
  return out + buf.subarray(at).toString('utf8');
}

/** The byte ranges of a parenthesised, comma-separated list starting at `open` (trimmed); null if unbalanced. */
export function listItems(s: string, open: number): [number, number][] | null {
  const commas: number[] = [];
  const close = matchingParen(s, open, (i) => commas.push(i));
  if (close < 0) return null;
  const bounds = [open, ...commas, close];
  const items: [number, number][] = [];
  for (let j = 0; j + 1 < bounds.length; j++) {
    let a = bounds[j] + 1, b = bounds[j + 1];
    while (a < b && /\s/.test(s[a])) a++;
    while (b > a && /\s/.test(s[b - 1])) b--;
    items.push([a, b]);
  }
  return items.length === 1 && items[0][0] === items[0][1] ? [] : items;
}

/**
 * Offset of the ')' closing the '(' at `open`, skipping literals and comments; -1 if none.
 * `onComma` sees the commas directly inside that parenthesis.
 */
export function matchingParen(s: string, open: number, onComma?: (i: number) => void): number {
  let depth = 0;
  let i = open;
  const n = s.length;
  while (i < n) {
    const c = s[i];
    if (c === '(') depth++;
    else if (c === ',' && depth === 1) onComma?.(i);
    else if (c === ')') {
      depth--;
      if (depth === 0) return i;
    } else if (c === "'") {
      // E'…' strings take backslash escapes; '' is a quote in both.
      const escapes = i > 0 && (s[i - 1] === 'e' || s[i - 1] === 'E') && (i < 2 || !/[\w$]/.test(s[i - 2]));
      i++;
      while (i < n) {
        if (escapes && s[i] === '\\') i += 2;
        else if (s[i] === "'") {
          if (s[i + 1] === "'") i += 2;
          else break;
        } else i++;
      }
    } else if (c === '"') {
      i++;
      while (i < n && !(s[i] === '"' && s[i + 1] !== '"')) i += s[i] === '"' ? 2 : 1;
    } else if (c === '-' && s[i + 1] === '-') {
      while (i < n && s[i] !== '\n') i++;
    } else if (c === '/' && s[i + 1] === '*') {
      let nest = 1;
      i += 2;
      while (i < n && nest > 0) {
        if (s[i] === '/' && s[i + 1] === '*') { nest++; i += 2; }
        else if (s[i] === '*' && s[i + 1] === '/') { nest--; i += 2; }
        else i++;
      }
      continue;
    } else if (c === '$' && (i === 0 || !/[\w$]/.test(s[i - 1]))) {
      const m = /^\$([A-Za-z_\x80-\xff][\w\x80-\xff]*)?\$/.exec(s.slice(i, i + 64));
      if (m) {
        const endTag = s.indexOf(m[0], i + m[0].length);
        if (endTag < 0) return -1;
        i = endTag + m[0].length;
        continue;
      }
    }
    i++;
  }
  return -1;
}

