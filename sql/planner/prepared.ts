// Extended protocol: nearest-neighbour statements prepared once and run many times.
//
// A recognised statement (query vector a parameter or a literal) is prepared in a parameterised
// rewritten form (recognize.ts rewriteKnnParams); each Bind searches the index and appends the
// ids/distances parameters. Statements the planner did not prepare pass through VectorSession synchronously.
import { serialize } from 'pg-protocol';
import type { FrontendAction, SessionContext, StatementHandler } from '../../server/session.ts';
import { Bind, BindComplete, formatCode, CloseComplete, CommandComplete, PortalSuspended, RowDescription, decodeBind, decodeExecute, decodeTarget, type BindMessage, type FieldDescription } from '../../server/protocol/messages.ts';
import { encodable, indexOnlyColumns, indexOnlyRows, sameQueryParams, withFormats, type OutputColumn } from './index-only.ts';
import { parseStatement, type ParseResult } from '../parse.ts';
import { bindStatementName, type VectorSession } from '../vector-session.ts';
import type { DatabaseIndexes, LiveIndex } from '../../sync/index-manager.ts';
import { parseVectorText } from '../../native/index.ts';
import { hasDistanceThreshold, recognizeKnn, rewriteKnnParams, type KnnPattern } from './recognize.ts';
import { innerSelects } from './cte.ts';
import { searchIndex, plannerStats } from './search.ts';
import { filteredSearch, inIndexSearch, type FilterQuery } from './filter.ts';
import { indexMayAnswerInTransaction } from './transaction.ts';
import { inlineParams } from './bind-params.ts';
import { sideFilter } from './side-query.ts';
import { filterStrategyOf, settingsFrom, type SessionGucs } from './settings.ts';
import type { SessionVisibility, TableFacts } from './visibility.ts';

type Node = Record<string, any>;
type ParseArgs = Parameters<NonNullable<StatementHandler['onParse']>>[1];
/** Plans a statement's simple-protocol text (PlannerSession.plan): the rewritten text, or null to run it as it is. */
export type PlanText = (ctx: SessionContext, text: string, stmt: Node, location: number, length: number, sessionBusy: boolean) => Promise<string | null>;
/** `literal`: the statement's own query vector, parsed once at Parse (null: it is parameter `queryParam`). */
type Prepared = { pat: KnnPattern; li: LiveIndex; nParams: number; output: OutputColumn[] | null; literal: Float32Array | null; queryParam: number };

export class PreparedKnnStatements {
  private prepared = new Map<string, Prepared>();
  /**
   * Statements with nearest-neighbour parts the Parse-time rewrite does not cover (CTEs, FROM
   * subqueries, distance thresholds): planned at each Bind from their text with the parameters inlined.
   */
  private planAtBind = new Set<string>();
  /** The unnamed portal when it was answered from the index alone (nothing of it exists in Postgres). */
  private portal: { fields: FieldDescription[]; rows: Buffer[]; sent: number } | null = null;
  /** A message of the current batch (since the last Sync) went to Postgres. */
  private batchForwarded = false;

  constructor(
    private inner: VectorSession,
    private gucs: SessionGucs,
    private db: (ctx: SessionContext) => Promise<DatabaseIndexes>,
    private cachedDb: () => DatabaseIndexes | null,
    private visibility: SessionVisibility,
    private planText: PlanText,
  ) {}

  onParse(ctx: SessionContext, p: ParseArgs): FrontendAction | Promise<FrontendAction> {
    this.prepared.delete(p.name);
    this.planAtBind.delete(p.name);
    this.batchForwarded = true;
    // Not a nearest-neighbour query: VectorSession's hook, synchronously if it can.
    if (!this.knnPattern(p)) {
      if (nestedKnn(p)) this.planAtBind.add(p.name);
      return this.inner.onParse(ctx, p);
    }
    return this.onParseAsync(ctx, p);
  }

  private knnPattern(p: { text: string; parsed: ParseResult }): boolean {
    if (!p.parsed.ok || p.parsed.statements.length !== 1 || p.parsed.statements[0].kind !== 'SelectStmt') return false;
    const st = p.parsed.statements[0];
    try {
      return !!recognizeKnn(p.text, st.stmt, st.location, st.length);
    } catch {
      return true; // planParse reports it and falls back
    }
  }

  private async onParseAsync(ctx: SessionContext, p: ParseArgs): Promise<FrontendAction> {
    let planned: { text: string; types: number[]; clientParams: number } | null = null;
    try {
      planned = await this.planParse(ctx, p);
    } catch (err) {
      ctx.log.warn({ err }, 'winnow planner failed at Parse; the statement runs in Postgres');
      this.prepared.delete(p.name);
    }
    if (!planned) return this.inner.onParse(ctx, p);
    const parsed = parseStatement(planned.text);
    const frame = serialize.parse({ name: p.name, text: planned.text, types: planned.types });
    const r = await this.inner.onParse(ctx, { name: p.name, text: planned.text, paramTypes: planned.types, parsed, frame });
    this.inner.hideTrailingParams(p.name, planned.clientParams);
    return r ?? { forward: [frame] };
  }

  private async planParse(ctx: SessionContext, p: ParseArgs): Promise<{ text: string; types: number[]; clientParams: number } | null> {
    if (p.parsed.ok && p.parsed.statements.length === 1 && p.parsed.statements[0].kind === 'SelectStmt') {
      const st = p.parsed.statements[0];
      const pat = recognizeKnn(p.text, st.stmt, st.location, st.length);
      if (pat) {
        const db = await this.db(ctx);
        const li = db.findByName(pat.schema, pat.table, pat.column, pat.metric);
        // A malformed literal: Postgres reports it when the statement runs.
        const literal = 'literal' in pat.query ? parseVectorText(Buffer.from(pat.query.literal, 'utf8')) : null;
        if (li && ('param' in pat.query || literal)) {
          const nParams = Math.max(maxParam(st.stmt), p.paramTypes.length);
          const text = rewriteKnnParams(pat, li.meta.keyColumn, nParams);
          const types = p.paramTypes.slice();
          while (types.length < nParams) types.push(0);
          types.push(1016, 1022); // bigint[], float8[]
          const queryParam = 'param' in pat.query ? pat.query.param : 0;
          this.prepared.set(p.name, { pat, li, nParams, output: indexOnlyColumns(st.stmt, pat, li.meta.keyColumn), literal, queryParam });
          return { text, types, clientParams: nParams };
        }
      }
    }
    return null;
  }

  onBind(ctx: SessionContext, f: Buffer): FrontendAction | Promise<FrontendAction> {
    const name = bindStatementName(f);
    const stmt = ctx.preparedStatements.get(name);
    if (stmt) this.visibility.note(stmt.parsed);
    if (this.planAtBind.size && this.planAtBind.has(name) && ctx.transactionStatus !== 'E') return this.forwarded(this.bindPlannedText(ctx, f));
    // Statements the planner did not prepare: no decode here, VectorSession answers synchronously.
    if (this.prepared.size === 0 || !this.prepared.has(name)) return this.forwarded(this.inner.onBind(ctx, f));
    const b = decodeBind(f);
    const prep = this.prepared.get(b.statement)!;
    const q = this.bindQuery(prep, b);
    // In a transaction block the index may answer only after a check on the session's connection
    // (transaction.ts), which must be idle: nothing of this batch forwarded yet.
    const inTransaction = ctx.transactionStatus === 'T';
    const usable = q && (ctx.transactionStatus === 'I' || (inTransaction && !this.batchForwarded)) && prep.li.ready && q.vec.length === prep.li.meta.dim && this.isLive(prep.li);
    if (!usable) return this.forwardBind(ctx, b, prep, null);
    // Nothing to wait for and facts cached: answered synchronously (a Promise would hold the rest of
    // the client's batch and split its writes).
    const facts = inTransaction ? null : this.visibility.cachedForIndex(prep.li);
    if (facts && !prep.pat.where && !facts.rls) return this.searchAndBind(ctx, b, prep, q, facts, searchIndex(prep.li, q.vec, q.k, settingsFrom(this.gucs, q.k)));
    // A WHERE clause on INCLUDE columns (`in`) needs nothing from Postgres either: also synchronous
    // (as a Promise it costs a pause/resume of the client socket and a write of its own).
    if (facts && !facts.rls) {
      const fq = this.filterQuery(ctx, b, prep, facts);
      const outcome = fq && inIndexSearch(prep.li, q.vec, q.k, settingsFrom(this.gucs, q.k), fq, filterStrategyOf(this.gucs.filterStrategy) ?? 'auto');
      if (outcome) return this.searchAndBind(ctx, b, prep, q, facts, outcome);
    }
    return this.plannedBind(ctx, b, prep, q, facts).catch((err) => {
      // Index sync unavailable (e.g. Postgres restarting): NULL ids = Postgres's exact answer.
      ctx.log.warn({ err }, 'winnow: index not usable for this Bind; exact execution');
      plannerStats.exactFallbacks++;
      return this.forwardBind(ctx, b, prep, null);
    });
  }

  /**
   * A Bind that needs Postgres first: the read-your-writes wait, or a WHERE clause / row-level
   * security (filter strategies, filter.ts, with the Bind's parameters written into the clause).
   */
  private async plannedBind(ctx: SessionContext, b: BindMessage, prep: Prepared, q: { vec: Float32Array; k: number }, cached: TableFacts | null): Promise<FrontendAction> {
    if (ctx.transactionStatus === 'T' && !(await indexMayAnswerInTransaction(ctx))) return this.forwardBind(ctx, b, prep, null);
    const facts = cached ?? (await this.visibility.forIndex(await this.db(ctx), prep.li, ctx.params.user));
    const settings = settingsFrom(this.gucs, q.k);
    if (!prep.pat.where && !facts.rls) return this.searchAndBind(ctx, b, prep, q, facts, searchIndex(prep.li, q.vec, q.k, settings));
    const fq = this.filterQuery(ctx, b, prep, facts);
    if (!fq) return this.forwardBind(ctx, b, prep, null);
    // Pre/post filters run their queries on the session's connection while nothing of this batch is
    // in Postgres; after that, on Winnow's own connection when the predicate allows (side-query.ts).
    const side = this.batchForwarded ? sideFilter(ctx, await this.db(ctx), prep.li, fq, this.visibility.roleChanged) : null;
    const outcome = await filteredSearch(side?.ctx ?? ctx, prep.li, q.vec, q.k, settings, side?.fq ?? fq, filterStrategyOf(this.gucs.filterStrategy) ?? 'auto');
    if (!outcome) {
      plannerStats.exactFallbacks++; // a filter query failed (Postgres reports its error on the statement) or could not run
      return this.forwardBind(ctx, b, prep, null);
    }
    return this.searchAndBind(ctx, b, prep, q, facts, outcome);
  }

  /**
   * A Bind of a statement whose nearest-neighbour parts are nested (or a distance threshold): the
   * statement with the Bind's parameters inlined is planned as a simple query would be, and the
   * client's portal is bound to the planned text (VectorSession.plannedBind). Not plannable: as sent.
   */
  private async bindPlannedText(ctx: SessionContext, f: Buffer): Promise<FrontendAction> {
    const b = decodeBind(f);
    const orig = ctx.preparedStatements.get(b.statement);
    try {
      if (orig?.parsed.ok && orig.parsed.statements.length === 1) {
        const text = inlineParams(orig.text, orig.parsed.statements[0].stmt, {
          values: b.params, formatOf: (i) => formatCode(b.paramFormats, i), types: this.inner.statementParamTypes(b.statement), untyped: (t) => this.inner.isVectorType(t),
          untypedBinary: (v, t) => (this.inner.vectorKindOf(t) === 'vector' ? vectorLiteral(pgvectorBinary(v)) : null),
        });
        const parsed = text === null ? null : parseStatement(text);
        if (text !== null && parsed?.ok && parsed.statements.length === 1) {
          const st = parsed.statements[0];
          const planned = await this.planText(ctx, text, st.stmt, st.location, st.length, this.batchForwarded);
          if (planned !== null) return this.inner.plannedBind(ctx, b, planned);
        }
      }
    } catch (err) {
      ctx.log.warn({ err }, 'winnow planner failed at Bind; the statement runs in Postgres');
    }
    return this.inner.onBind(ctx, f);
  }

  /** The statement's WHERE clause with the Bind's parameters written in (the query vector stays $n). */
  private filterQuery(ctx: SessionContext, b: BindMessage, prep: Prepared, facts: TableFacts): FilterQuery | null {
    const orig = ctx.preparedStatements.get(b.statement);
    if (!orig?.parsed.ok || orig.parsed.statements.length !== 1) return null;
    const fmt = (i: number) => formatCode(b.paramFormats, i);
    const text = inlineParams(orig.text, orig.parsed.statements[0].stmt, {
      values: b.params, formatOf: fmt, types: this.inner.statementParamTypes(b.statement), keep: new Set(prep.literal ? [] : [prep.queryParam]),
    });
    if (text === null) return null;
    // The same text for every Bind with the same filter values: the parse is cached.
    const parsed = parseStatement(text);
    if (!parsed.ok || parsed.statements.length !== 1) return null;
    const st = parsed.statements[0];
    const pat = recognizeKnn(text, st.stmt, st.location, st.length);
    if (!pat) return null;
    return { ref: pat.ref, fromList: pat.fromList, keyColumn: prep.li.meta.keyColumn, where: pat.filterWhere, whereNode: pat.filterWhereNode, rls: facts.rls, radius: pat.threshold };
  }

  /** The query vector and k a Bind gives (null: malformed or NULL — Postgres reports it). */
  private bindQuery(prep: Prepared, b: BindMessage): { vec: Float32Array; k: number } | null {
    const { pat } = prep;
    const fmt = (i: number) => formatCode(b.paramFormats, i);
    const qi = prep.queryParam - 1;
    const raw = b.params[qi];
    const vec = prep.literal ?? (raw === null || raw === undefined ? null : fmt(qi) === 1 ? pgvectorBinary(raw) : parseVectorText(raw));
    if (!vec) return null;
    let k: number | null = pat.limit + pat.offset;
    if (pat.limitParam) {
      const lv = b.params[pat.limitParam - 1];
      k = lv == null ? null : fmt(pat.limitParam - 1) === 1 ? Number(lv.length === 8 ? lv.readBigInt64BE(0) : lv.readInt32BE(0)) : Number(lv.toString('utf8'));
      k = k !== null && Number.isInteger(k) && k >= 0 ? k + pat.offset : null;
    }
    return k === null ? null : { vec, k };
  }

  private searchAndBind(ctx: SessionContext, b: BindMessage, prep: Prepared, q: { vec: Float32Array; k: number }, facts: TableFacts, res: { ids: BigInt64Array; distances: Float32Array }): FrontendAction | Promise<FrontendAction> {
    // From the index alone: the role may read the table, no policy, the statement described, the
    // unnamed portal, and nothing of this batch went to Postgres (an error there would void the rest).
    const fields = this.inner.describedFields(b.statement);
    const fmt = (i: number) => formatCode(b.paramFormats, i);
    if (facts.canSelect && !facts.rls && prep.output && fields && encodable(prep.output, fields) && b.portal === '' && !this.batchForwarded
      && (prep.literal !== null || sameQueryParams(prep.output, prep.queryParam, b.params, fmt))) {
      const offset = Math.min(prep.pat.offset, res.ids.length);
      this.portal = {
        fields: withFormats(fields, b.resultFormats),
        rows: indexOnlyRows(prep.output, fields, b.resultFormats, res.ids, res.distances, offset, res.ids.length),
        sent: 0,
      };
      plannerStats.indexOnly++;
      return { respond: [BindComplete()] };
    }
    return this.forwardBind(ctx, b, prep, res);
  }

  /** The rewritten statement's Bind with the ids/distances parameters (NULL = Postgres's exact answer). */
  private forwardBind(ctx: SessionContext, b: BindMessage, prep: Prepared, res: { ids: BigInt64Array; distances: Float32Array } | null): FrontendAction | Promise<FrontendAction> {
    const { nParams } = prep;
    const fmt = (i: number) => formatCode(b.paramFormats, i);
    const ids = res ? `{${Array.from(res.ids, String).join(',')}}` : null;
    const dists = res ? `{${Array.from(res.distances, (x) => (Number.isFinite(x) ? String(x) : 'Infinity')).join(',')}}` : null;
    const params = b.params.slice();
    while (params.length < nParams) params.push(null);
    params.push(ids === null ? null : Buffer.from(ids), dists === null ? null : Buffer.from(dists));
    const formats = Array.from({ length: nParams }, (_, i) => fmt(i));
    formats.push(0, 0);
    const frame = Bind({ ...b, paramFormats: formats, params });
    if (b.portal === '') this.portal = null;
    return this.forwarded(this.inner.onBind(ctx, frame), frame);
  }

  /** Marks the batch as having gone to Postgres; `frame` is what to send when the hook returns nothing. */
  private forwarded(a: FrontendAction | Promise<FrontendAction>, frame?: Buffer): FrontendAction | Promise<FrontendAction> {
    this.batchForwarded = true;
    if (frame === undefined) return a;
    return a instanceof Promise ? a.then((r) => r ?? { forward: [frame] }) : (a ?? { forward: [frame] });
  }

  onDescribe(ctx: SessionContext, f: Buffer): FrontendAction | Promise<FrontendAction> {
    const d = decodeTarget(f);
    if (d.target === 'P' && d.name === '' && this.portal) return { respond: [RowDescription(this.portal.fields)] };
    // Describing a statement cannot fail in a way that voids the batch's local answers.
    if (d.target === 'S') return this.inner.onDescribe(ctx, f);
    return this.forwarded(this.inner.onDescribe(ctx, f));
  }

  onExecute(_ctx: SessionContext, f: Buffer): FrontendAction {
    const e = decodeExecute(f);
    const p = this.portal;
    if (e.portal !== '' || !p) {
      this.batchForwarded = true;
      return undefined;
    }
    const end = e.maxRows > 0 ? Math.min(p.rows.length, p.sent + e.maxRows) : p.rows.length;
    const out = p.rows.slice(p.sent, end);
    const done = end === p.rows.length;
    p.sent = end;
    out.push(done ? CommandComplete(`SELECT ${end}`) : PortalSuspended());
    return { respond: out };
  }

  onClose(ctx: SessionContext, f: Buffer): FrontendAction {
    const c = decodeTarget(f);
    if (c.target === 'P' && c.name === '' && this.portal) {
      this.portal = null;
      return { respond: [CloseComplete()] };
    }
    if (c.target === 'S') {
      this.prepared.delete(c.name);
      this.planAtBind.delete(c.name);
    }
    this.batchForwarded = true;
    return undefined;
  }

  onSync(ctx: SessionContext, f: Buffer): FrontendAction | Promise<FrontendAction> {
    const local = this.portal !== null && !this.batchForwarded;
    this.portal = null;
    this.batchForwarded = false;
    // Only local answers since the last Sync: ReadyForQuery from here too (the transaction state did not change).
    if (local) return { respond: [] };
    return this.inner.onSync();
  }

  /** False once the index was dropped or rebuilt after this statement was prepared. */
  private isLive(li: LiveIndex): boolean {
    const indexes = this.cachedDb()?.indexes.values() ?? [li];
    for (const x of indexes) if (x === li) return true;
    return false;
  }
}

/** A SELECT with a distance threshold, or with a CTE / FROM subquery the planner may answer from an index. */
function nestedKnn(p: { text: string; parsed: ParseResult }): boolean {
  if (!p.parsed.ok || p.parsed.statements.length !== 1 || p.parsed.statements[0].kind !== 'SelectStmt') return false;
  const st = p.parsed.statements[0];
  try {
    if (hasDistanceThreshold(st.stmt)) return true;
    return innerSelects(p.text, st.stmt).some((i) => recognizeKnn(p.text, i.stmt, i.start, i.end - i.start) || hasDistanceThreshold(i.stmt));
  } catch {
    return false;
  }
}

function maxParam(n: unknown): number {
  let max = 0;
  const walk = (x: unknown) => {
    if (Array.isArray(x)) x.forEach(walk);
    else if (x && typeof x === 'object') {
      const pr = (x as Node).ParamRef;
      if (pr && typeof pr.number === 'number') max = Math.max(max, pr.number);
      for (const v of Object.values(x)) walk(v);
    }
  };
  walk(n);
  return max;
}

/** '[…]' text of a vector: each float4 as the shortest decimal of its double value, which reads back to the same float4. */
function vectorLiteral(v: Float32Array | null): string | null {
  return v ? '[' + Array.from(v, String).join(',') + ']' : null;
}

/** pgvector's binary vector: int16 dim, int16 unused, dim × float4 (big-endian). */
function pgvectorBinary(b: Buffer): Float32Array | null {
  if (b.length < 4) return null;
  const dim = b.readInt16BE(0);
  if (b.length !== 4 + 4 * dim) return null;
  const out = new Float32Array(dim);
  for (let i = 0; i < dim; i++) out[i] = b.readFloatBE(4 + 4 * i);
  return out;
}


