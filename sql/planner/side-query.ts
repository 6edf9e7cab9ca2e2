// Filter queries for a Bind whose session connection is busy: when the client sent Parse and Bind in
// one batch (every unnamed statement, and a named one's first run), no query can run on the session's
// own connection before the client's Sync (Session.query refuses: it would commit the batch's implicit
// transaction or, after an error, never be answered). The pre/post filter strategies and the
// selectivity estimate then run on Winnow's own connection to the database instead
// (DatabaseIndexes.queryAs) — as the session's role, with the settings Postgres reported to the
// session — but only for predicates whose value cannot depend on anything else of the session:
// columns, constants, casts, comparisons, boolean logic; no function calls (now(), current_user,
// current_setting() …), no subqueries, no parameters left, on a table without row-level security.
// The rows finally returned still come from the client's own statement on its own connection
// (`… WHERE p AND pk = ANY(ids)`), so a side query can at worst leave a row out, never let one in.
import type { SessionContext } from '../../server/session.ts';
import type { DatabaseIndexes, LiveIndex } from '../../sync/index-manager.ts';
import type { FilterQuery } from './filter.ts';
import { quoteIdent } from '../quote.ts';

type Node = Record<string, any>;

/** Reported settings that change how constants in a predicate are read; set the same on the side. */
const READ_SETTINGS = ['TimeZone', 'DateStyle', 'IntervalStyle'];

/** Expression nodes a context-free predicate may contain (their values depend only on the row). */
const PLAIN_NODES = new Set([
  'ColumnRef', 'A_Const', 'TypeCast', 'A_Expr', 'BoolExpr', 'NullTest', 'BooleanTest', 'A_ArrayExpr', 'List', 'CollateClause',
  // Inside those: names and constants.
  'String', 'Integer', 'Float', 'Boolean', 'BitString', 'TypeName', 'A_Star',
]);

/** True when the WHERE tree evaluates the same in any session of the same role and reported settings. */
export function contextFreePredicate(node: unknown): boolean {
  if (Array.isArray(node)) return node.every(contextFreePredicate);
  if (!node || typeof node !== 'object') return true;
  for (const [k, v] of Object.entries(node as Node)) {
    // Node wrappers are single-key objects named after the node type ({ A_Expr: {…} }); other keys are fields.
    if (/^[A-Z]/.test(k) && !PLAIN_NODES.has(k)) return false;
    // 'name'::regclass and friends look names up in the session's search_path.
    if (k === 'TypeCast' && /^reg/.test(String((v as Node).typeName?.names?.at(-1)?.String?.sval ?? ''))) return false;
    if (!contextFreePredicate(v)) return false;
  }
  return true;
}

/**
 * The filter query and context to run it in when the session's connection is busy with the client's
 * batch: a SessionContext whose query() runs on Winnow's own connection as the session's role, and
 * the FilterQuery with its table named by schema (not by the side connection's search_path). Null
 * when the predicate or the session does not allow it (row-level security, SET ROLE, a predicate that
 * is not context-free, non-standard string literals): the caller runs the statement exactly.
 */
export function sideFilter(ctx: SessionContext, db: DatabaseIndexes, li: LiveIndex, fq: FilterQuery, roleChanged: boolean): { ctx: SessionContext; fq: FilterQuery } | null {
  if (fq.rls || roleChanged || !fq.whereNode || !contextFreePredicate(fq.whereNode)) return null;
  const p = ctx.serverParams;
  if (p.get('standard_conforming_strings') !== 'on') return null;
  const role = p.get('session_authorization') ?? ctx.params.user;
  if (!role) return null;
  const settings = new Map<string, string>();
  for (const name of READ_SETTINGS) {
    const v = p.get(name);
    if (v !== undefined) settings.set(name, v);
  }
  return {
    ctx: Object.create(ctx, { query: { value: (text: string) => db.queryAs(role, settings, text) } }) as SessionContext,
    fq: { ...fq, fromList: `${quoteIdent(li.meta.schema)}.${quoteIdent(li.meta.table)} AS ${quoteIdent(fq.ref)}` },
  };
}
