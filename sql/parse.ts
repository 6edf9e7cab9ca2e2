// Every statement string that reaches Winnow goes through the real PostgreSQL grammar
// (libpg-query, WASM) so later issues can plan and rewrite. Parsing costs ~50–100 µs,
// so results are cached by statement text in a small LRU: a repeated query (the common
// case: ORMs, prepared statements, pg's unnamed Parse) is a Map lookup.
import { loadModule, parseSync } from 'libpg-query';

export interface ParsedStatement {
  /** Node tree of one statement as libpg-query returns it, e.g. `{ SelectStmt: {...} }`. */
  stmt: Record<string, unknown>;
  /** Byte range in the query text (stmt_location/stmt_len; len 0 = to the end). */
  location: number;
  length: number;
  /** Top-level node tag, e.g. 'SelectStmt', 'InsertStmt', 'TransactionStmt'. */
  kind: string;
}

export type ParseResult =
  | { ok: true; text: string; statements: ParsedStatement[] }
  | { ok: false; text: string; error: { message: string; cursorPosition?: number } };

let loaded: Promise<void> | null = null;
let ready = false;

/** Loads the WASM module once; call at server start so the first query does not pay for it. */
export function loadParser(): Promise<void> {
  if (!loaded) loaded = loadModule().then(() => { ready = true; });
  return loaded;
}

/** Statements longer than this are parsed but not cached (a 10 MB INSERT must not pin memory). */
const MAX_CACHED_TEXT = 64 * 1024;

export class ParseCache {
  private readonly map = new Map<string, ParseResult>();
  hits = 0;
  misses = 0;
  constructor(readonly capacity = 2048) {}

  get(text: string): ParseResult {
    const hit = this.map.get(text);
    if (hit !== undefined) {
      this.hits++;
      // LRU: re-insert moves it to the most-recent end (Map keeps insertion order).
      if (this.map.size > this.capacity >> 1) {
        this.map.delete(text);
        this.map.set(text, hit);
      }
      return hit;
    }
    this.misses++;
    const result = parseUncached(text);
    if (text.length <= MAX_CACHED_TEXT) {
      this.map.set(text, result);
      if (this.map.size > this.capacity) {
        const oldest = this.map.keys().next().value as string;
        this.map.delete(oldest);
      }
    }
    return result;
  }

  get size(): number {
    return this.map.size;
  }

  clear(): void {
    this.map.clear();
  }
}

/** Parses without the cache. Never throws: a parse failure is a result, Postgres reports the real error. */
export function parseUncached(text: string): ParseResult {
  if (!ready) throw new Error('libpg-query is not loaded: await loadParser() first');
  try {
    const tree = parseSync(text) as { stmts?: Array<{ stmt?: Record<string, unknown>; stmt_location?: number; stmt_len?: number }> };
    const statements: ParsedStatement[] = (tree.stmts ?? []).map((s) => {
      const stmt = s.stmt ?? {};
      return { stmt, location: s.stmt_location ?? 0, length: s.stmt_len ?? 0, kind: Object.keys(stmt)[0] ?? 'Unknown' };
    });
    return { ok: true, text, statements };
  } catch (err) {
    const e = err as Error & { sqlDetails?: { message: string; cursorPosition?: number } };
    return { ok: false, text, error: { message: e.sqlDetails?.message ?? e.message, cursorPosition: e.sqlDetails?.cursorPosition } };
  }
}

/** Process-wide cache shared by all sessions (statement text is the key, so sharing is safe). */
export const sharedParseCache = new ParseCache();

export function parseStatement(text: string): ParseResult {
  return sharedParseCache.get(text);
}

/** The smallest `location` in a parse tree: where the node's text starts (-1 locations are ignored). */
export function minLocation(n: unknown): number {
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
