// PlannerSession: Winnow's vector-query planner in front of VectorSession (issue 5).
//
// It handles index DDL (sql/index-ddl.ts) and answers recognised nearest-neighbour queries through a
// native index (recognize.ts): read-your-writes wait, optional pre-filter ids from Postgres, native
// search, then one rewritten Postgres statement that returns the rows. Everything else — and every
// hook — goes to the wrapped VectorSession unchanged, so pgvector translation keeps working on the
// rewritten text and its results.
import { serialize } from 'pg-protocol';
import type { FrontendAction, SessionContext, StatementHandler, StatementHandlerFactory } from '../../server/session.ts';
import { CommandComplete, DataRow, ErrorResponse, RowDescription } from '../../server/protocol/messages.ts';
import { parseUncached, type ParseResult } from '../parse.ts';
import { VectorSession } from '../vector-session.ts';
import { quoteIdent } from '../quote.ts';
import { createWinnowIndex, dropWinnowIndexes, isWinnowIndexStmt, reindexWinnowIndex, renameWinnowIndex, winnowIndexNamed, winnowIndexesIn } from '../index-ddl.ts';
import type { DatabaseIndexes, IndexManager } from '../../sync/index-manager.ts';
import { parseVectorLiteral, recognizeKnn, rewriteKnn } from './recognize.ts';
import { explainLines, selectStart, type PlanInfo } from './explain.ts';
import { PreparedKnnStatements } from './prepared.ts';
import { plannerStats, searchIndex } from './search.ts';
import { noGucs, settingsFrom, trackSet } from './settings.ts';
import { showStatus, statusShow } from './status.ts';
import { SessionVisibility } from './visibility.ts';

export { plannerStats } from './search.ts';
export type { PlanInfo } from './explain.ts';

type Node = Record<string, any>;

export class PlannerSession implements StatementHandler {
  readonly inner = new VectorSession();
  lastPlan: PlanInfo | null = null;
  /** winnow.* / pgvector settings SET in this session (read at Bind, where no internal query can run). */
  private gucs = noGucs();
  private dbCache: DatabaseIndexes | null = null;
  readonly visibility = new SessionVisibility();
  private readonly extended = new PreparedKnnStatements(this.inner, this.gucs, (ctx) => this.db(ctx), () => this.dbCache, this.visibility);

  constructor(private mgr: IndexManager) {}

  private async db(ctx: SessionContext) {
    this.dbCache ??= await this.mgr.forDatabase(ctx.params.user, ctx.params.database ?? ctx.params.user);
    return this.dbCache;
  }

  /**
   * True when handleQuery would hand the statement to VectorSession without doing anything itself:
   * lets onQuery stay synchronous for ordinary statements (a Promise holds the client's later messages).
   */
  private plainQuery(q: { text: string; parsed: ParseResult }): boolean {
    const p = q.parsed;
    if (!p.ok || p.statements.length !== 1) return true;
    const st = p.statements[0];
    const n = st.stmt as Node;
    switch (st.kind) {
      case 'VariableSetStmt':
        trackSet(this.gucs, n);
        return true;
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'TransactionStmt':
      case 'CopyStmt':
        return !isWinnowIndexStmt(n);
      case 'SelectStmt': {
        try {
          const pat = recognizeKnn(q.text, n, st.location, st.length);
          return !pat || !!pat.limitParam;
        } catch {
          return false; // handleQuery logs it and runs the query in Postgres
        }
      }
      default:
        return false;
    }
  }

  onQuery(ctx: SessionContext, q: { text: string; parsed: ParseResult; frame: Buffer }): FrontendAction | Promise<FrontendAction> {
    this.visibility.note(q.parsed);
    if (this.plainQuery(q)) return this.inner.onQuery(ctx, q);
    return this.onQueryAsync(ctx, q);
  }

  private async onQueryAsync(ctx: SessionContext, q: { text: string; parsed: ParseResult; frame: Buffer }): Promise<FrontendAction> {
    let r: FrontendAction | 'inner';
    try {
      r = await this.handleQuery(ctx, q);
    } catch (err) {
      // A hook that throws ends the session (server/session.ts): answer with an error instead.
      ctx.log.warn({ err }, 'winnow planner/DDL failed');
      return { respond: [ErrorResponse({ severity: 'ERROR', code: '57P03', message: `winnow: ${(err as Error).message}` })] };
    }
    return r === 'inner' ? this.inner.onQuery(ctx, q) : r;
  }

  private async handleQuery(ctx: SessionContext, q: { text: string; parsed: ParseResult; frame: Buffer }): Promise<FrontendAction | 'inner'> {
    const p = q.parsed;
    if (p.ok && p.statements.length === 1) {
      const st = p.statements[0];
      if (st.kind === 'VariableSetStmt') trackSet(this.gucs, st.stmt);
      const show = st.kind === 'VariableShowStmt' ? statusShow(st.stmt) : null;
      if (show) return { respond: await showStatus(await this.db(ctx), show) };
      if (isWinnowIndexStmt(st.stmt)) return { respond: await createWinnowIndex(ctx, this.mgr, st.stmt) };
      if (st.kind === 'DropStmt' && (st.stmt as Node).DropStmt.removeType === 'OBJECT_INDEX') {
        const targets = await winnowIndexesIn(ctx, this.mgr, st.stmt);
        if (targets.length) return { respond: await dropWinnowIndexes(ctx, this.mgr, q.text, targets) };
      }
      if (st.kind === 'RenameStmt' && (st.stmt as Node).RenameStmt.renameType === 'OBJECT_INDEX') {
        const t = await winnowIndexNamed(ctx, this.mgr, (st.stmt as Node).RenameStmt.relation);
        if (t) return { respond: await renameWinnowIndex(ctx, this.mgr, q.text, t, (st.stmt as Node).RenameStmt.newname) };
      }
      if (st.kind === 'ReindexStmt' && (st.stmt as Node).ReindexStmt.kind === 'REINDEX_OBJECT_INDEX') {
        const t = await winnowIndexNamed(ctx, this.mgr, (st.stmt as Node).ReindexStmt.relation);
        if (t) return { respond: await reindexWinnowIndex(ctx, this.mgr, q.text, t) };
      }
      if (st.kind === 'SelectStmt') {
        let planned: string | null = null;
        try {
          planned = await this.plan(ctx, q.text, st.stmt, st.location, st.length);
        } catch (err) {
          // Never fail a query because of the index: Postgres answers it exactly.
          ctx.log.warn({ err }, 'winnow planner failed; running the query in Postgres');
          plannerStats.exactFallbacks++;
        }
        if (planned) {
          // The rewritten text carries this query's ids and distances: it never repeats, so it must not
          // take a place in the shared parse cache from the statements that do.
          const parsed = parseUncached(planned);
          const frame = serialize.query(planned);
          const r = await this.inner.onQuery(ctx, { text: planned, parsed, frame });
          return r ?? { forward: [frame] };
        }
      }
      if (st.kind === 'ExplainStmt') {
        const ex = (st.stmt as Node).ExplainStmt;
        const opts: string[] = (ex.options ?? []).map((o: Node) => String(o.DefElem?.defname).toLowerCase());
        const inner = ex.query;
        if (inner?.SelectStmt) {
          const text = await this.explain(ctx, q.text, inner, opts.includes('analyze'));
          if (text) return { respond: [RowDescription([{ name: 'QUERY PLAN', typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 }]), ...text.map((l) => DataRow([l])), CommandComplete('EXPLAIN')] };
        }
      }
    }
    return 'inner';
  }

  /** Returns the rewritten statement, or null to run the original in Postgres (exactly). */
  async plan(ctx: SessionContext, text: string, stmt: Node, location: number, length: number): Promise<string | null> {
    const pat = recognizeKnn(text, stmt, location, length);
    if (!pat || pat.limitParam) return null;
    // Inside a transaction block the session may have uncommitted writes the index cannot see:
    // exact execution in Postgres (documented).
    if (ctx.transactionStatus !== 'I') return null;
    const db = await this.db(ctx);
    if (db.indexes.size === 0) return null;
    const vec = 'literal' in pat.query ? parseVectorLiteral(pat.query.literal) : null;
    if (!vec) return null;
    const t0 = performance.now();
    const facts = await this.visibility.resolve(ctx, db, pat.schema, pat.table);
    if (!facts) return null;
    const li = db.find(facts.relid, pat.column, pat.metric);
    if (!li || vec.length !== li.meta.dim) return null;
    const k = pat.limit + pat.offset;
    const settings = settingsFrom(this.gucs, k);
    const t1 = performance.now();
    let filter: BigInt64Array | undefined;
    // Row-level security: the rows this role may see are a filter too (pre-filter under its role).
    if (pat.where || facts.rls) {
      const f = await ctx.query(`SELECT ${quoteIdent(pat.ref)}.${quoteIdent(li.meta.keyColumn)}::bigint FROM ${pat.fromList}${pat.where ? ` WHERE ${pat.where}` : ''}`);
      if (f.error) return null; // Postgres reports it on the original statement
      filter = BigInt64Array.from(f.rows, (row) => BigInt(row[0]!));
      filter.sort();
    }
    const t2 = performance.now();
    const res = searchIndex(li, vec, k, settings, filter);
    const t3 = performance.now();
    this.lastPlan = {
      index: li.meta.name, strategy: filter ? 'pre' : 'none', exact: li.index.stats().nlist === 0, nprobe: settings.nprobe, kFactor: settings.kFactor,
      k, allowed: filter ? filter.length : null, returned: res.ids.length, ms: { wait: t1 - t0, filter: t2 - t1, search: t3 - t2 },
    };
    return rewriteKnn(pat, li.meta.keyColumn, res.ids, res.distances);
  }

  private async explain(ctx: SessionContext, text: string, stmt: Node, analyze: boolean): Promise<string[] | null> {
    const sel = selectStart(text, stmt);
    if (sel < 0) return null;
    const planned = await this.plan(ctx, text, stmt, sel, 0).catch(() => null);
    if (!planned || !this.lastPlan) return null;
    return explainLines(ctx, this.lastPlan, planned, analyze);
  }

  onParse(ctx: SessionContext, p: Parameters<NonNullable<StatementHandler['onParse']>>[1]) { return this.extended.onParse(ctx, p); }
  onBind(ctx: SessionContext, f: Buffer) { return this.extended.onBind(ctx, f); }
  onDescribe(ctx: SessionContext, f: Buffer) { return this.extended.onDescribe(ctx, f); }
  onExecute(ctx: SessionContext, f: Buffer) { return this.extended.onExecute(ctx, f); }
  onClose(ctx: SessionContext, f: Buffer) { return this.extended.onClose(ctx, f); }
  onSync(ctx: SessionContext, f: Buffer) { return this.extended.onSync(ctx, f); }
  onCopy(ctx: SessionContext, f: Buffer) { return this.inner.onCopy(ctx, f); }
  onBackendMessage(ctx: SessionContext, f: Buffer) { return this.inner.onBackendMessage(ctx, f); }
}

export function plannerSessionFactory(mgr: IndexManager): StatementHandlerFactory {
  return () => new PlannerSession(mgr);
}
