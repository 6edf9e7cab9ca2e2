// What a vector query may assume about the index before it is answered from it, without a round trip
// to Postgres when nothing can have changed:
//
// - read-your-writes: after this session's own writes commit, its next vector query waits until the
//   index has applied everything committed so far (one pg_current_wal_lsn() read). A session that has
//   only read since its last wait has nothing of its own to wait for: other sessions' commits are seen
//   within the replication lag, which is the documented guarantee (README, sync/README.md).
// - the relation a name means (search_path), whether it has row-level security, and whether the
//   session's role may SELECT from it: read with that same LSN read, then cached; the cache is dropped
//   when the session may have changed them (any statement that is not a plain read, SET search_path,
//   SET ROLE) and refreshed at least every FACTS_TTL_MS for changes made by other sessions.
import type { SessionContext } from '../../server/session.ts';
import type { ParseResult } from '../parse.ts';
import type { DatabaseIndexes, LiveIndex } from '../../sync/index-manager.ts';
import { quoteIdent, quoteLiteral } from '../quote.ts';
import { lsnToBigInt } from '../../sync/pgoutput.ts';

type Node = Record<string, any>;

/** Other sessions' GRANT/REVOKE/ALTER TABLE … ROW LEVEL SECURITY are seen at most this late. */
export const FACTS_TTL_MS = 1000;

export interface TableFacts {
  relid: number;
  rls: boolean;
  /** The session's role has table-level SELECT (needed to answer from the index alone). */
  canSelect: boolean;
  at: number;
}

/** Statements after which the session has certainly not written anything nor changed what names mean. */
const READ_ONLY_KINDS = new Set(['SelectStmt', 'VariableShowStmt', 'ExplainStmt', 'PrepareStmt', 'DeallocateStmt']);

/** Statements that change rows but not what names, privileges or policies mean. */
const DATA_ONLY_KINDS = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'CopyStmt', 'TransactionStmt', 'SelectStmt', 'ExecuteStmt']);

/** Bumped by every DDL statement (GRANT/REVOKE, policies, …) through any Winnow session: all cached facts are stale. */
let privilegeEpoch = 0;

/** Round trips made to read the LSN and the facts (tests: a read-only session makes none after its first). */
export const visibilityStats = { lookups: 0 };

/** The current DDL epoch (caches of catalog facts compare it with the one they were read at). */
export const ddlEpoch = (): number => privilegeEpoch;

const pureCache = new WeakMap<ParseResult, boolean>();

/**
 * True when running the statements cannot write: SELECT/SHOW/EXPLAIN (not ANALYZE) without function
 * calls (a function may write) or locking clauses. Conservative: anything else counts as a write.
 */
export function isPlainRead(parsed: ParseResult): boolean {
  let v = pureCache.get(parsed);
  if (v !== undefined) return v;
  v = parsed.ok && parsed.statements.every((s) => READ_ONLY_KINDS.has(s.kind) && !hasCallOrLock(s.stmt) && !isExplainAnalyze(s.stmt));
  pureCache.set(parsed, v);
  return v;
}

function isExplainAnalyze(stmt: Node): boolean {
  return !!stmt.ExplainStmt?.options?.some((o: Node) => String(o.DefElem?.defname).toLowerCase() === 'analyze');
}

function hasCallOrLock(n: unknown): boolean {
  if (Array.isArray(n)) return n.some(hasCallOrLock);
  if (!n || typeof n !== 'object') return false;
  for (const [k, v] of Object.entries(n)) {
    if (k === 'FuncCall' || k === 'lockingClause' || k === 'intoClause') return true;
    if (hasCallOrLock(v)) return true;
  }
  return false;
}

export class SessionVisibility {
  /** The session may have committed writes the index has not been waited for. */
  private unsynced = true;
  private facts = new Map<string, TableFacts>();
  private epoch = privilegeEpoch;
  /** SET ROLE / SET SESSION AUTHORIZATION ran: the login role is not the one Postgres checks. */
  roleChanged = false;

  /**
   * Every statement the session runs (simple Query, and Bind of a prepared statement). For a lone
   * `EXECUTE name(args)`, `prepared` is the statement the name stands for, when the session knows it.
   */
  note(parsed: ParseResult, prepared?: ParseResult | null): void {
    if (isPlainRead(parsed)) return;
    if (prepared && isPlainRead(prepared) && parsed.ok && parsed.statements.length === 1 && parsed.statements[0].kind === 'ExecuteStmt'
      && !hasCallOrLock((parsed.statements[0].stmt as Node).ExecuteStmt?.params)) return;
    this.unsynced = true;
    if (!parsed.ok) {
      privilegeEpoch++;
      return;
    }
    for (const s of parsed.statements) {
      if (DATA_ONLY_KINDS.has(s.kind)) continue;
      const set = (s.stmt as Node).VariableSetStmt;
      if (set) {
        const name = String(set.name ?? '').toLowerCase();
        if (name === 'role' || name === 'session_authorization') this.roleChanged = true;
        if (name === 'search_path' || set.kind === 'VAR_RESET_ALL') this.facts.clear();
        continue;
      }
      // DDL (GRANT/REVOKE, ALTER TABLE … ROW LEVEL SECURITY, CREATE POLICY, CREATE TEMP TABLE, role
      // changes…): every session's cached facts may be wrong now.
      privilegeEpoch++;
    }
  }

  /** Cached facts under `key` when usable with no round trip (nothing to wait for, fresh, same DDL epoch). */
  private usable(key: string): TableFacts | null {
    if (this.epoch !== privilegeEpoch) {
      this.facts.clear();
      this.epoch = privilegeEpoch;
    }
    const f = this.facts.get(key);
    return f && !this.unsynced && performance.now() - f.at < FACTS_TTL_MS ? f : null;
  }

  /**
   * Cached facts about `schema.table` for the simple protocol: the session's own connection resolves
   * the name (search_path, temp tables) and, when needed, reads the LSN to wait for.
   * Null when the table does not exist (Postgres reports it).
   */
  async resolve(ctx: SessionContext, db: DatabaseIndexes, schema: string | undefined, table: string): Promise<(TableFacts & { waitedMs: number }) | null> {
    const key = (schema ?? '') + '\0' + table;
    const cached = this.usable(key);
    if (cached) return { ...cached, waitedMs: 0 };
    const t0 = performance.now();
    visibilityStats.lookups++;
    const rel = quoteLiteral((schema ? quoteIdent(schema) + '.' : '') + quoteIdent(table));
    const r = await ctx.query(`SELECT pg_current_wal_lsn()::text, c.oid::bigint, c.relrowsecurity::text, has_table_privilege(c.oid, 'SELECT')::text
      FROM (SELECT to_regclass(${rel}) AS oid) o LEFT JOIN pg_catalog.pg_class c ON c.oid = o.oid`);
    if (r.error || !r.rows.length || !r.rows[0][1]) return null;
    const [lsn, relid, rls, sel] = r.rows[0];
    // Everything committed before this query started — including this session's writes — is in the index.
    await db.waitFor(lsnToBigInt(lsn!));
    this.unsynced = false;
    const f: TableFacts = { relid: Number(relid), rls: rls === 'true', canSelect: sel === 'true', at: performance.now() };
    this.facts.set(key, f);
    return { ...f, waitedMs: performance.now() - t0 };
  }

  /** Facts usable with no round trip at all (nothing to wait for, cache fresh), or null. */
  cachedForIndex(li: LiveIndex): TableFacts | null {
    return this.usable('\u0001' + li.meta.relid);
  }

  /**
   * The same for the extended protocol, where no query can run on the session's connection mid-batch:
   * the index (resolved by name at Parse) gives the relation, and Winnow's own connection reads the
   * LSN, RLS and the login role's privilege.
   */
  async forIndex(db: DatabaseIndexes, li: LiveIndex, role: string): Promise<(TableFacts & { waitedMs: number })> {
    const key = '\u0001' + li.meta.relid;
    const cached = this.usable(key);
    if (cached) return { ...cached, waitedMs: 0 };
    const t0 = performance.now();
    visibilityStats.lookups++;
    const { lsn, rls, canSelect } = await db.currentLsnAndRls(li.meta.relid, role);
    await db.waitFor(lsn);
    this.unsynced = false;
    const f: TableFacts = { relid: li.meta.relid, rls, canSelect: canSelect && !this.roleChanged, at: performance.now() };
    this.facts.set(key, f);
    return { ...f, waitedMs: performance.now() - t0 };
  }
}
