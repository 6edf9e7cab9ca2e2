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
import { parseStatement, parseUncached, type ParseResult } from '../parse.ts';
import { VectorSession } from '../vector-session.ts';
import { quoteLiteral } from '../quote.ts';
import { createWinnowIndex, dropWinnowIndexes, isWinnowIndexStmt, reindexWinnowIndex, renameWinnowIndex, winnowIndexNamed, winnowIndexesIn } from '../index-ddl.ts';
import type { DatabaseIndexes, IndexManager } from '../../sync/index-manager.ts';
import { parseVectorLiteral, recognizeKnn, recognizeRange, rewriteKnn, rewriteRange, type KnnPattern, type RangePattern } from './recognize.ts';
import { innerSelects, spliceText } from './cte.ts';
import { sideFilter } from './side-query.ts';
import { filteredSearch, type FilterQuery } from './filter.ts';
import { RANGE_FIRST_K, rangeSearch } from './threshold.ts';
import { SqlPreparedStatements } from './sql-prepared.ts';
import type { Metric } from '../../native/index.ts';
import { simpleIndexOnlyAnswer } from './index-only.ts';
import { isLearnCall, runLearn } from './learn.ts';
import { explainLines, selectStart, type PlanInfo } from './explain.ts';
import { PreparedKnnStatements } from './prepared.ts';
import { plannerStats } from './search.ts';
import { FILTER_STRATEGIES, filterStrategyOf, gucsFromStartup, noGucs, settingsFrom, trackSet, type SessionGucs } from './settings.ts';
import { showStatus, statusShow } from './status.ts';
import { SessionVisibility } from './visibility.ts';
import { indexMayAnswerInTransaction } from './transaction.ts';

export { plannerStats } from './search.ts';
export type { PlanInfo } from './explain.ts';

type Node = Record<string, any>;

export class PlannerSession implements StatementHandler {
  readonly inner = new VectorSession();
  lastPlan: PlanInfo | null = null;
  /** The last plan()'s whole answer when the index alone gives it (simple protocol; index-only.ts). */
  private indexOnly: Buffer[] | null = null;
  /** Every part the last plan() answered through an index (one, or one per planned CTE/subquery). */
  plans: PlanInfo[] = [];
  /** SQL-level PREPAREd statements this session sent (EXECUTE is planned like their SELECT). */
  private readonly sqlPrepared = new SqlPreparedStatements();
  /** winnow.* / pgvector settings SET in this session (read at Bind, where no internal query can run). */
  private gucs: SessionGucs;
  private dbCache: DatabaseIndexes | null = null;
  readonly visibility = new SessionVisibility();
  private readonly extended: PreparedKnnStatements;

  /** `startup`: the settings the connection's StartupMessage gave (gucsFromStartup), RESET's target. */
  constructor(private mgr: IndexManager, private readonly startup: SessionGucs = noGucs()) {
    this.gucs = { ...startup };
    this.extended = new PreparedKnnStatements(this.inner, this.gucs, (ctx) => this.db(ctx), () => this.dbCache, this.visibility, (ctx, text, stmt, location, length, busy) => this.plan(ctx, text, stmt, location, length, { busy }));
  }

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
        if (badFilterStrategy(n)) return false; // handleQuery answers with Postgres's error for it
        trackSet(this.gucs, n, this.startup);
        return true;
      case 'PrepareStmt':
      case 'DeallocateStmt':
      case 'DiscardStmt':
        return true; // noted in onQuery
      case 'ExecuteStmt':
        return !this.sqlPrepared.has(n.ExecuteStmt.name);
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'TransactionStmt':
      case 'CopyStmt':
        return !isWinnowIndexStmt(n);
      case 'SelectStmt': {
        if (isLearnCall(n)) return false; // SELECT winnow.learn(…): handleQuery runs it
        try {
          const pat = recognizeKnn(q.text, n, st.location, st.length);
          if (pat) return !!pat.limitParam;
          // Distance thresholds and nearest-neighbour CTEs/subqueries need at least a distance operator.
          if (!/<->|<#>|<=>/.test(q.text)) return true;
          return !recognizeRange(q.text, n, st.location, st.length) && innerSelects(q.text, n).length === 0;
        } catch {
          return false; // handleQuery logs it and runs the query in Postgres
        }
      }
      default:
        return false;
    }
  }

  onQuery(ctx: SessionContext, q: { text: string; parsed: ParseResult; frame: Buffer }): FrontendAction | Promise<FrontendAction> {
    const only = q.parsed.ok && q.parsed.statements.length === 1 ? q.parsed.statements[0] : null;
    const executed = only?.kind === 'ExecuteStmt' ? this.sqlPrepared.queryOf((only.stmt as Node).ExecuteStmt.name) : null;
    this.visibility.note(q.parsed, executed === null ? null : parseStatement(executed));
    if (q.parsed.ok && q.parsed.statements.some((s) => s.kind === 'PrepareStmt' || s.kind === 'DeallocateStmt' || s.kind === 'DiscardStmt')) {
      this.sqlPrepared.note(q.text, q.parsed.statements);
    }
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
      if (st.kind === 'VariableSetStmt') {
        const bad = badFilterStrategy(st.stmt);
        // Postgres accepts any value for a custom setting: raise its own error for a bad one (and leave
        // the previous value), inside Postgres so a transaction block fails as it would.
        if (bad !== null) {
          const body = `BEGIN RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = ${quoteLiteral(`invalid value for parameter "winnow.filter_strategy": "${bad}"`)}, HINT = ${quoteLiteral(`Available values: ${FILTER_STRATEGIES.join(', ')}.`)}; END`;
          return this.runInstead(ctx, `DO ${quoteLiteral(body)}`);
        }
        trackSet(this.gucs, st.stmt, this.startup);
      }
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
      const learn = st.kind === 'SelectStmt' ? isLearnCall(st.stmt) : null;
      if (learn) return { respond: await runLearn(ctx, this.mgr, learn) };
      if (st.kind === 'ExecuteStmt' || st.kind === 'SelectStmt') {
        let planned: string | null = null;
        try {
          planned = st.kind === 'ExecuteStmt'
            ? await this.planExecute(ctx, q.text, (st.stmt as Node).ExecuteStmt, st.location)
            : await this.plan(ctx, q.text, st.stmt, st.location, st.length);
        } catch (err) {
          // Never fail a query because of the index: Postgres answers it exactly.
          ctx.log.warn({ err }, 'winnow planner failed; running the query in Postgres');
          plannerStats.exactFallbacks++;
        }
        if (planned && this.indexOnly) return { respond: this.indexOnly };
        if (planned) {
          // The rewritten text carries this query's ids and distances: it never repeats, so it must not
          // take a place in the shared parse cache from the statements that do.
          return this.runInstead(ctx, planned);
        }
      }
      if (st.kind === 'ExplainStmt') {
        const ex = (st.stmt as Node).ExplainStmt;
        const opts: string[] = (ex.options ?? []).map((o: Node) => String(o.DefElem?.defname).toLowerCase());
        const inner = ex.query;
        if (inner?.SelectStmt || inner?.ExecuteStmt) {
          const text = await this.explain(ctx, q.text, inner, opts.includes('analyze'), st.location);
          if (text) return { respond: [RowDescription([{ name: 'QUERY PLAN', typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 }]), ...text.map((l) => DataRow([l])), CommandComplete('EXPLAIN')] };
        }
      }
    }
    return 'inner';
  }

  /**
   * Returns the rewritten statement, or null to run the original in Postgres (exactly). Plans the
   * statement itself (ORDER BY distance LIMIT k, or a distance threshold), or else each CTE / FROM
   * subquery that has that shape, rewritten in place. `this.plans` describes what was planned.
   * `atBind`: planning a Bind (prepared.ts); `busy` when the client's batch holds the session's connection.
   */
  async plan(ctx: SessionContext, text: string, stmt: Node, location: number, length: number, atBind?: { busy: boolean }): Promise<string | null> {
    this.indexOnly = null;
    this.plans = [];
    this.lastPlan = null;
    const knn = recognizeKnn(text, stmt, location, length);
    if (knn) return this.planKnn(ctx, knn, null, atBind, stmt);
    const range = recognizeRange(text, stmt, location, length);
    if (range) return this.planRange(ctx, range, null, atBind);
    const parts: { start: number; end: number; text: string }[] = [];
    for (const inner of innerSelects(text, stmt)) {
      const part = inner.label;
      const p = recognizeKnn(text, inner.stmt, inner.start, inner.end - inner.start);
      const r = p ? null : recognizeRange(text, inner.stmt, inner.start, inner.end - inner.start);
      const planned = p ? await this.planKnn(ctx, p, part, atBind) : r ? await this.planRange(ctx, r, part, atBind) : null;
      if (planned) parts.push({ start: inner.start, end: inner.end, text: planned });
    }
    if (!parts.length) return null;
    // This statement's bytes (an EXPLAIN's text starts before them) with the planned parts replaced.
    const buf = Buffer.from(text, 'utf8');
    const own = buf.subarray(location, length > 0 ? location + length : buf.length).toString('utf8');
    return spliceText(own, parts.map((p) => ({ start: p.start - location, end: p.end - location, text: p.text })));
  }

  /**
   * The index, query vector and settings for a planned part, after read-your-writes; null = run in
   * Postgres. `atBind`: planning a Bind, when the session's connection may be inside the client's
   * batch: the table is found by name and the facts are read on Winnow's own connection, as for
   * prepared statements (prepared.ts).
   */
  private async target(ctx: SessionContext, schema: string | undefined, table: string, column: string, metric: Metric, literal: string, k: number, atBind: { busy: boolean } | undefined) {
    // Inside a transaction block only at READ COMMITTED with nothing written yet (transaction.ts); the
    // check needs the session's connection, so not while the client's batch is in Postgres.
    if (ctx.transactionStatus === 'E') return null;
    if (ctx.transactionStatus === 'T' && (atBind?.busy || !(await indexMayAnswerInTransaction(ctx)))) return null;
    const db = await this.db(ctx);
    if (db.indexes.size === 0) return null;
    const vec = parseVectorLiteral(literal);
    if (!vec) return null;
    const t0 = performance.now();
    const byName = atBind ? db.findByName(schema, table, column, metric) : undefined;
    if (atBind && !byName) return null;
    const facts = byName ? await this.visibility.forIndex(db, byName, ctx.params.user) : await this.visibility.resolve(ctx, db, schema, table);
    if (!facts) return null;
    const li = db.find(facts.relid, column, metric);
    if (!li || vec.length !== li.meta.dim) return null;
    const settings = settingsFrom(this.gucs, k);
    return { db, vec, facts, li, settings, waitMs: performance.now() - t0 };
  }

  private async planKnn(ctx: SessionContext, pat: KnnPattern, part: string | null, atBind: { busy: boolean } | undefined, stmt?: Node): Promise<string | null> {
    if (pat.limitParam || !('literal' in pat.query)) return null;
    const k = pat.limit + pat.offset;
    const t = await this.target(ctx, pat.schema, pat.table, pat.column, pat.metric, pat.query.literal, k, atBind);
    if (!t) return null;
    const { li, vec, facts, settings } = t;
    const requested = filterStrategyOf(this.gucs.filterStrategy) ?? 'auto';
    const fq: FilterQuery = {
      ref: pat.ref, fromList: pat.fromList, keyColumn: li.meta.keyColumn, where: pat.filterWhere, whereNode: pat.filterWhereNode,
      rls: facts.rls, radius: pat.threshold,
    };
    // A Bind inside the client's batch: filter queries on Winnow's own connection when the predicate allows (side-query.ts).
    const side = atBind?.busy ? sideFilter(ctx, t.db, li, fq, this.visibility.roleChanged) : null;
    const res = await filteredSearch(side?.ctx ?? ctx, li, vec, k, settings, side?.fq ?? fq, requested);
    if (!res) return null;
    const info: PlanInfo = {
      index: li.meta.name, kind: 'knn', part, strategy: res.strategy, requested, reason: res.reason,
      estimatedRows: res.estimate?.rows ?? null, selectivity: res.estimate?.selectivity ?? null, selectivitySource: res.estimate?.source,
      estimatedCandidates: res.estimatedCandidates, candidates: res.candidates, rounds: res.strategy === 'post' || res.rounds > 1 ? res.rounds : undefined,
      radius: pat.threshold ?? null, exact: !li.index.isTrained, nprobe: settings.nprobe, kFactor: settings.kFactor, k,
      allowed: res.strategy === 'pre' || res.strategy === 'in' ? res.candidates : res.inAllowed ?? null, returned: res.ids.length,
      ms: { wait: t.waitMs, estimate: res.ms.estimate, filter: res.ms.filter, search: res.ms.search, check: res.ms.check },
    };
    this.plans.push(info);
    this.lastPlan = info;
    // The whole statement's output is the key and the distance, the role may read the table and no
    // policy applies: the index's answer is the answer (no Postgres round trip).
    if (part === null && stmt && facts.canSelect && !facts.rls) {
      this.indexOnly = await simpleIndexOnlyAnswer((text) => ctx.query(text), stmt, pat, li.meta.relid, pat.fromList, li.meta.keyColumn, res);
      if (this.indexOnly) plannerStats.indexOnly++;
    }
    return rewriteKnn(pat, li.meta.keyColumn, res.ids, res.distances);
  }

  private async planRange(ctx: SessionContext, pat: RangePattern, part: string | null, atBind: { busy: boolean } | undefined): Promise<string | null> {
    const t = await this.target(ctx, pat.schema, pat.table, pat.column, pat.metric, pat.query.literal, RANGE_FIRST_K, atBind);
    if (!t) return null;
    const { li, vec, settings } = t;
    // The rest of the WHERE clause, row-level security and privileges apply in Postgres on the ids found.
    const t1 = performance.now();
    const res = rangeSearch(li, vec, pat.radius, settings);
    const info: PlanInfo = {
      index: li.meta.name, kind: 'range', part, strategy: 'none', radius: pat.radius, exact: !li.index.isTrained,
      nprobe: settings.nprobe, kFactor: settings.kFactor, k: res.k, allowed: null, returned: res.ids.length, rounds: res.rounds,
      ms: { wait: t.waitMs, filter: 0, search: performance.now() - t1 },
    };
    this.plans.push(info);
    this.lastPlan = info;
    return rewriteRange(pat, li.meta.keyColumn, res.ids, res.distances);
  }

  /** EXPLAIN of a SELECT (or of an EXECUTE of a remembered PREPARE): Winnow's plan, then Postgres's. */
  private async explain(ctx: SessionContext, text: string, stmt: Node, analyze: boolean, location: number): Promise<string[] | null> {
    let planned: string | null;
    if (stmt.ExecuteStmt) {
      const at = SqlPreparedStatements.executeKeyword(text, location);
      planned = at < 0 ? null : await this.planExecute(ctx, text, stmt.ExecuteStmt, at).catch(() => null);
    } else {
      const sel = selectStart(text, stmt);
      if (sel < 0) return null;
      planned = await this.plan(ctx, text, stmt, sel, 0).catch(() => null);
    }
    if (!planned || !this.plans.length) return null;
    return explainLines(ctx, this.plans, planned, analyze);
  }

  /** `EXECUTE name(args)` of a statement this session PREPAREd: its SELECT with the arguments, planned. */
  private async planExecute(ctx: SessionContext, text: string, ex: Node, at: number): Promise<string | null> {
    this.plans = [];
    if (!this.sqlPrepared.has(ex.name) || ctx.transactionStatus === 'E') return null;
    if (!this.sqlPrepared.isConfirmed(ex.name)) {
      // The PREPARE may have failed in Postgres: then EXECUTE must fail there too.
      const r = await ctx.query(`SELECT 1 FROM pg_catalog.pg_prepared_statements WHERE name = ${quoteLiteral(ex.name)}`);
      if (r.error) return null;
      this.sqlPrepared.confirm(ex.name, r.rows.length > 0);
      if (!r.rows.length) return null;
    }
    const select = this.sqlPrepared.substitute(text, ex, at);
    if (!select) return null;
    const parsed = parseUncached(select);
    if (!parsed.ok || parsed.statements.length !== 1 || parsed.statements[0].kind !== 'SelectStmt') return null;
    const st = parsed.statements[0];
    return this.plan(ctx, select, st.stmt, st.location, st.length);
  }

  /** Sends `text` to Postgres instead of the client's statement (through VectorSession). */
  private async runInstead(ctx: SessionContext, text: string): Promise<FrontendAction> {
    // The rewritten text carries this query's ids and distances: it never repeats, so it must not
    // take a place in the shared parse cache from the statements that do.
    const parsed = parseUncached(text);
    const frame = serialize.query(text);
    const r = await this.inner.onQuery(ctx, { text, parsed, frame });
    return r ?? { forward: [frame] };
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
  return (ctx) => new PlannerSession(mgr, gucsFromStartup(ctx.params.options));
}

/** The value of a `SET winnow.filter_strategy = …` that is not a strategy (null otherwise). */
function badFilterStrategy(stmt: Node): string | null {
  const v = stmt.VariableSetStmt;
  if (!v || String(v.name).toLowerCase() !== 'winnow.filter_strategy' || v.kind !== 'VAR_SET_VALUE') return null;
  const a = v.args?.[0]?.A_Const;
  const value = a ? String(a.sval?.sval ?? a.ival?.ival ?? a.fval?.fval ?? '') : '';
  return filterStrategyOf(value) === null || (v.args?.length ?? 0) !== 1 ? value : null;
}
