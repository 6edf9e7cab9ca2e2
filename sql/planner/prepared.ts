// Extended protocol: nearest-neighbour statements prepared once and run many times.
//
// A recognised statement whose query vector is a parameter is prepared in a parameterised rewritten
// form (recognize.ts rewriteKnnParams); each Bind searches the index and appends the ids/distances
// parameters. Statements the planner did not prepare pass through VectorSession synchronously.
import { serialize } from 'pg-protocol';
import type { FrontendAction, SessionContext, StatementHandler } from '../../server/session.ts';
import { Bind, BindComplete, formatCode, CloseComplete, CommandComplete, PortalSuspended, RowDescription, decodeBind, decodeExecute, decodeTarget, type BindMessage, type FieldDescription } from '../../server/protocol/messages.ts';
import { encodable, indexOnlyColumns, indexOnlyRows, sameQueryParams, withFormats, type OutputColumn } from './index-only.ts';
import { parseStatement, type ParseResult } from '../parse.ts';
import { bindStatementName, type VectorSession } from '../vector-session.ts';
import type { DatabaseIndexes, LiveIndex } from '../../sync/index-manager.ts';
import { parseVectorText } from '../../native/index.ts';
import { recognizeKnn, rewriteKnnParams, type KnnPattern } from './recognize.ts';
import { searchIndex, plannerStats } from './search.ts';
import { filteredSearch, inIndexSearch, type FilterQuery } from './filter.ts';
import { inlineParams } from './bind-params.ts';
import { filterStrategyOf, settingsFrom, type SessionGucs } from './settings.ts';
import type { SessionVisibility, TableFacts } from './visibility.ts';

type Node = Record<string, any>;
type ParseArgs = Parameters<NonNullable<StatementHandler['onParse']>>[1];
type Prepared = { pat: KnnPattern; li: LiveIndex; nParams: number; output: OutputColumn[] | null };

export class PreparedKnnStatements {
  private prepared = new Map<string, Prepared>();
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
  ) {}

  onParse(ctx: SessionContext, p: ParseArgs): FrontendAction | Promise<FrontendAction> {
    this.prepared.delete(p.name);
    this.batchForwarded = true;
    // Not a nearest-neighbour query with a parameter vector: VectorSession's hook, synchronously if it can.
    if (!this.knnParamPattern(p)) return this.inner.onParse(ctx, p);
    return this.onParseAsync(ctx, p);
  }

  private knnParamPattern(p: { text: string; parsed: ParseResult }): boolean {
    if (!p.parsed.ok || p.parsed.statements.length !== 1 || p.parsed.statements[0].kind !== 'SelectStmt') return false;
    const st = p.parsed.statements[0];
    try {
      const pat = recognizeKnn(p.text, st.stmt, st.location, st.length);
      return !!pat && 'param' in pat.query;
    } catch {
      return true; // planParse reports it and falls back
    }
  }

  private async onParseAsync(ctx: SessionContext, p: ParseArgs): Promise<FrontendAction> {
    let planned: { text: string; types: number[] } | null = null;
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
    return r ?? { forward: [frame] };
  }

  private async planParse(ctx: SessionContext, p: ParseArgs): Promise<{ text: string; types: number[] } | null> {
    if (p.parsed.ok && p.parsed.statements.length === 1 && p.parsed.statements[0].kind === 'SelectStmt') {
      const st = p.parsed.statements[0];
      const pat = recognizeKnn(p.text, st.stmt, st.location, st.length);
      if (pat && 'param' in pat.query) {
        const db = await this.db(ctx);
        const li = db.findByName(pat.schema, pat.table, pat.column, pat.metric);
        if (li) {
          const nParams = Math.max(maxParam(st.stmt), p.paramTypes.length);
          const text = rewriteKnnParams(pat, li.meta.keyColumn, nParams);
          const types = p.paramTypes.slice();
          while (types.length < nParams) types.push(0);
          types.push(1016, 1022); // bigint[], float8[]
          this.prepared.set(p.name, { pat, li, nParams, output: indexOnlyColumns(st.stmt, pat, li.meta.keyColumn) });
          return { text, types };
        }
      }
    }
    return null;
  }

  onBind(ctx: SessionContext, f: Buffer): FrontendAction | Promise<FrontendAction> {
    const name = bindStatementName(f);
    const stmt = ctx.preparedStatements.get(name);
    if (stmt) this.visibility.note(stmt.parsed);
    // Statements the planner did not prepare: no decode here, VectorSession answers synchronously.
    if (this.prepared.size === 0 || !this.prepared.has(name)) return this.forwarded(this.inner.onBind(ctx, f));
    const b = decodeBind(f);
    const prep = this.prepared.get(b.statement)!;
    const q = this.bindQuery(prep, b);
    const usable = q && ctx.transactionStatus === 'I' && prep.li.ready && q.vec.length === prep.li.meta.dim && this.isLive(prep.li);
    if (!usable) return this.forwardBind(ctx, b, prep, null);
    // Nothing to wait for and facts cached: answered synchronously (a Promise would hold the rest of
    // the client's batch and split its writes).
    const facts = this.visibility.cachedForIndex(prep.li);
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
    const facts = cached ?? (await this.visibility.forIndex(await this.db(ctx), prep.li, ctx.params.user));
    const settings = settingsFrom(this.gucs, q.k);
    if (!prep.pat.where && !facts.rls) return this.searchAndBind(ctx, b, prep, q, facts, searchIndex(prep.li, q.vec, q.k, settings));
    const fq = this.filterQuery(ctx, b, prep, facts);
    if (!fq) return this.forwardBind(ctx, b, prep, null);
    // Pre/post filters run their queries on the session's connection: only possible while nothing of this batch is in Postgres.
    const outcome = await filteredSearch(ctx, prep.li, q.vec, q.k, settings, fq, filterStrategyOf(this.gucs.filterStrategy) ?? 'auto');
    if (!outcome) return this.forwardBind(ctx, b, prep, null);
    return this.searchAndBind(ctx, b, prep, q, facts, outcome);
  }

  /** The statement's WHERE clause with the Bind's parameters written in (the query vector stays $n). */
  private filterQuery(ctx: SessionContext, b: BindMessage, prep: Prepared, facts: TableFacts): FilterQuery | null {
    const orig = ctx.preparedStatements.get(b.statement);
    if (!orig?.parsed.ok || orig.parsed.statements.length !== 1) return null;
    const fmt = (i: number) => formatCode(b.paramFormats, i);
    const text = inlineParams(orig.text, orig.parsed.statements[0].stmt, {
      values: b.params, formatOf: fmt, types: this.inner.statementParamTypes(b.statement), keep: new Set([(prep.pat.query as { param: number }).param]),
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
    const qi = (pat.query as { param: number }).param - 1;
    const raw = b.params[qi];
    const vec = raw === null || raw === undefined ? null : fmt(qi) === 1 ? pgvectorBinary(raw) : parseVectorText(raw);
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
      && sameQueryParams(prep.output, (prep.pat.query as { param: number }).param, b.params, fmt)) {
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
    if (c.target === 'S') this.prepared.delete(c.name);
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

/** pgvector's binary vector: int16 dim, int16 unused, dim × float4 (big-endian). */
function pgvectorBinary(b: Buffer): Float32Array | null {
  if (b.length < 4) return null;
  const dim = b.readInt16BE(0);
  if (b.length !== 4 + 4 * dim) return null;
  const out = new Float32Array(dim);
  for (let i = 0; i < dim; i++) out[i] = b.readFloatBE(4 + 4 * i);
  return out;
}


