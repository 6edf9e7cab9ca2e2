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
import { VectorSession, bindStatementName } from '../vector-session.ts';
import { quoteIdent, quoteLiteral } from '../quote.ts';
import { createWinnowIndex, dropWinnowIndexes, isWinnowIndexStmt, reindexWinnowIndex, renameWinnowIndex, winnowIndexNamed, winnowIndexesIn } from '../index-ddl.ts';
import type { IndexManager, LiveIndex } from '../../sync/index-manager.ts';
import { bigIntToLsn, lsnToBigInt } from '../../sync/pgoutput.ts';
import { parseVectorLiteral, recognizeKnn, rewriteKnn, rewriteKnnParams, type KnnPattern } from './recognize.ts';
import { Bind, decodeBind } from '../../server/protocol/messages.ts';
import { DEFAULT_K_FACTOR, DEFAULT_NPROBE } from '../../native/index.ts';

type Node = Record<string, any>;

export interface PlanInfo {
  index: string;
  strategy: 'none' | 'pre';
  exact: boolean;
  nprobe: number;
  kFactor: number;
  k: number;
  allowed: number | null;
  returned: number;
  ms: { wait: number; filter: number; search: number };
}

export interface KnnSettings { nprobe: number; kFactor: number }

/** Settings from the session's GUCs (winnow.* win over pgvector's, which are mapped; see README). */
export function settingsFrom(v: { nprobe: string | null; kFactor: string | null; efSearch: string | null; probes: string | null }, k: number): KnnSettings {
  let nprobe = DEFAULT_NPROBE;
  let kFactor = DEFAULT_K_FACTOR;
  const num = (s: string | null) => (s && /^\d+$/.test(s.trim()) ? Number(s) : null);
  const ef = num(v.efSearch);
  if (ef) {
    // hnsw.ef_search (candidate list size, default 40): more candidates → more lists and refines.
    nprobe = Math.max(8, Math.round((DEFAULT_NPROBE * ef) / 40));
    kFactor = Math.max(2, Math.ceil(ef / Math.max(1, k)));
  }
  const probes = num(v.probes);
  if (probes) nprobe = probes;
  nprobe = num(v.nprobe) ?? nprobe;
  kFactor = num(v.kFactor) ?? kFactor;
  return { nprobe: Math.max(1, nprobe), kFactor: Math.max(1, kFactor) };
}

/** Filtered searches over at most this many floats (allowed ids × dim) are exact brute force (~3 ms at 512 dims, 8k ids). */
export const FILTER_EXACT_BELOW_FLOATS = 4_000_000;
export const FILTER_K_FACTOR_MULT = 3;

/** Process-wide counters (tests and SHOW winnow.index_status). */
export const plannerStats = { nativeSearches: 0, exactFallbacks: 0 };

export class PlannerSession implements StatementHandler {
  readonly inner = new VectorSession();
  lastPlan: PlanInfo | null = null;
  private prepared = new Map<string, { pat: KnnPattern; li: LiveIndex; nParams: number }>();
  /** winnow.* / pgvector settings SET in this session (read at Bind, where no internal query can run). */
  private gucs: { nprobe: string | null; kFactor: string | null; efSearch: string | null; probes: string | null } = { nprobe: null, kFactor: null, efSearch: null, probes: null };
  private dbCache: import('../../sync/index-manager.ts').DatabaseIndexes | null = null;

  constructor(private mgr: IndexManager) {}

  private async db(ctx: SessionContext) {
    this.dbCache ??= await this.mgr.forDatabase(ctx.params.user, ctx.params.database ?? ctx.params.user);
    return this.dbCache;
  }

  private trackSet(stmt: Node): void {
    const v = stmt.VariableSetStmt;
    if (!v) return;
    const key = ({ 'winnow.nprobe': 'nprobe', 'winnow.k_factor': 'kFactor', 'hnsw.ef_search': 'efSearch', 'ivfflat.probes': 'probes' } as const)[String(v.name).toLowerCase() as 'winnow.nprobe'];
    if (!key) {
      if (v.kind === 'VAR_RESET_ALL') this.gucs = { nprobe: null, kFactor: null, efSearch: null, probes: null };
      return;
    }
    const a = v.args?.[0]?.A_Const;
    this.gucs[key] = v.kind === 'VAR_SET_VALUE' && a ? String(a.ival?.ival ?? a.sval?.sval ?? a.fval?.fval ?? 0) : null;
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
        this.trackSet(n);
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
      if (st.kind === 'VariableSetStmt') this.trackSet(st.stmt);
      if (st.kind === 'VariableShowStmt' && ['winnow.index_status', 'winnow.replication_lag'].includes(String((st.stmt as Node).VariableShowStmt.name).toLowerCase())) {
        return { respond: await this.showStatus(ctx, String((st.stmt as Node).VariableShowStmt.name).toLowerCase()) };
      }
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
    const relText = (pat.schema ? quoteIdent(pat.schema) + '.' : '') + quoteIdent(pat.table);
    const r = await ctx.query(`SELECT pg_current_wal_lsn()::text, to_regclass(${quoteLiteral(relText)})::oid::bigint,
      current_setting('winnow.nprobe', true), current_setting('winnow.k_factor', true),
      current_setting('hnsw.ef_search', true), current_setting('ivfflat.probes', true),
      (SELECT relrowsecurity FROM pg_catalog.pg_class WHERE oid = to_regclass(${quoteLiteral(relText)}))::text`);
    if (r.error || !r.rows.length) return null;
    const [lsn, relid, nprobe, kFactor, efSearch, probes, rls] = r.rows[0];
    if (!relid) return null;
    const li = db.find(Number(relid), pat.column, pat.metric);
    if (!li || vec.length !== li.meta.dim) return null;
    const k = pat.limit + pat.offset;
    const settings = settingsFrom({ nprobe, kFactor, efSearch, probes }, k);
    // Read-your-writes: everything committed before this query started is in the index.
    await db.waitFor(lsnToBigInt(lsn!));
    const t1 = performance.now();
    let filter: BigInt64Array | undefined;
    // Row-level security: the rows this role may see are a filter too (pre-filter under its role).
    if (pat.where || rls === 'true') {
      const f = await ctx.query(`SELECT ${quoteIdent(pat.ref)}.${quoteIdent(li.meta.keyColumn)}::bigint FROM ${pat.fromList}${pat.where ? ` WHERE ${pat.where}` : ''}`);
      if (f.error) return null; // Postgres reports it on the original statement
      filter = BigInt64Array.from(f.rows, (row) => BigInt(row[0]!));
      filter.sort();
    }
    const t2 = performance.now();
    const res = this.search(li, vec, k, settings, filter);
    const t3 = performance.now();
    this.lastPlan = {
      index: li.meta.name, strategy: filter ? 'pre' : 'none', exact: li.index.stats().nlist === 0, nprobe: settings.nprobe, kFactor: settings.kFactor,
      k, allowed: filter ? filter.length : null, returned: res.ids.length, ms: { wait: t1 - t0, filter: t2 - t1, search: t3 - t2 },
    };
    return rewriteKnn(pat, li.meta.keyColumn, res.ids, res.distances);
  }

  private search(li: LiveIndex, vec: Float32Array, k: number, s: KnnSettings, filter?: BigInt64Array): { ids: BigInt64Array; distances: Float32Array } {
    plannerStats.nativeSearches++;
    if (k === 0 || (filter && filter.length === 0)) return { ids: new BigInt64Array(0), distances: new Float32Array(0) };
    // Filtered: the IVF filter stage ranks fewer true neighbours per probed list, so refine more
    // candidates, and answer exactly (brute force over the allowed ids) up to FILTER_EXACT_BELOW ids.
    const r = filter
      ? li.index.search(vec, { k, nprobe: s.nprobe * 2, kFactor: s.kFactor * FILTER_K_FACTOR_MULT, filter, bruteForceBelow: Math.floor(FILTER_EXACT_BELOW_FLOATS / li.meta.dim) })
      : li.index.search(vec, { k, nprobe: s.nprobe, kFactor: s.kFactor });
    let n = r.ids.length;
    while (n > 0 && r.ids[n - 1] === -1n) n--;
    return { ids: r.ids.subarray(0, n), distances: r.distances.subarray(0, n) };
  }

  /** SHOW winnow.index_status (one row per index) / SHOW winnow.replication_lag (bytes of WAL not yet applied). */
  private async showStatus(ctx: SessionContext, what: string): Promise<Buffer[]> {
    const db = await this.db(ctx);
    const now = await db.currentLsn();
    const lag = now > db.processedLsn ? now - db.processedLsn : 0n;
    // Then read-your-writes, so the row counts include everything committed before SHOW.
    await db.waitFor(now).catch(() => {});
    const text = (name: string) => ({ name, typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 as const });
    if (what === 'winnow.replication_lag') {
      return [RowDescription([text('replication_lag')]), DataRow([`${lag} bytes, ${db.lastPollAt ? Date.now() - db.lastPollAt : -1} ms since last poll`]), CommandComplete('SHOW')];
    }
    const cols = ['index_name', 'table_name', 'column_name', 'metric', 'access_method', 'ready', 'rows', 'trained', 'origin', 'applied_lsn', 'lag_bytes', 'snapshot_lsn', 'unsaved_changes', 'snapshot_errors', 'build_phase'];
    const rows = [...db.indexes.values()].map((li) => {
      const st = li.index.stats();
      return DataRow([
        li.meta.name, `${li.meta.schema}.${li.meta.table}`, li.meta.column, li.meta.metric, li.meta.accessMethod, String(li.ready), String(li.index.size),
        String(li.index.isTrained), li.origin, bigIntToLsn(db.processedLsn), String(lag), li.savedLsn ? bigIntToLsn(li.savedLsn) : null,
        String(li.unsaved), String(db.saveErrors), `${li.progress.phase} ${li.progress.done}/${li.progress.total}` + (st.nlist ? ` nlist=${st.nlist}` : ''),
      ]);
    });
    return [RowDescription(cols.map(text)), ...rows, CommandComplete('SHOW')];
  }

  private async explain(ctx: SessionContext, text: string, stmt: Node, analyze: boolean): Promise<string[] | null> {
    const loc = minLoc(stmt);
    // The SELECT starts at the SELECT keyword before its first located node.
    const latin = Buffer.from(text, 'utf8').toString('latin1');
    const sel = latin.slice(0, loc + 1).toLowerCase().lastIndexOf('select');
    if (sel < 0) return null;
    const planned = await this.plan(ctx, text, stmt, sel, 0).catch(() => null);
    if (!planned || !this.lastPlan) return null;
    const p = this.lastPlan;
    const lines = [
      `Winnow KNN Scan using ${p.index} (k=${p.k})`,
      `  Strategy: ${p.strategy === 'pre' ? 'pre-filter (Postgres returns matching ids, index search restricted to them)' : 'unfiltered'}`,
      `  Search: ${p.exact ? 'exact (index not trained: table below the training threshold)' : `IVF nprobe=${p.nprobe} k'=${p.k * p.kFactor}`}`,
    ];
    if (p.allowed !== null) lines.push(`  Allowed ids: ${p.allowed}`);
    if (analyze) {
      lines.push(`  Returned ids: ${p.returned}`);
      lines.push(`  Time: read-your-writes wait ${p.ms.wait.toFixed(3)} ms, filter ${p.ms.filter.toFixed(3)} ms, search ${p.ms.search.toFixed(3)} ms`);
    }
    const pg = await ctx.query(`EXPLAIN ${analyze ? '(ANALYZE) ' : ''}${planned}`);
    if (!pg.error) {
      lines.push('  ->  Postgres (rows by id):');
      for (const row of pg.rows) lines.push('        ' + row[0]);
    }
    return lines;
  }

  /**
   * Extended protocol: a recognised statement whose query vector is a parameter is prepared in a
   * parameterised rewritten form (rewriteKnnParams); each Bind searches the index and appends the
   * ids/distances parameters (plan once, run many).
   */
  onParse(ctx: SessionContext, p: Parameters<NonNullable<StatementHandler['onParse']>>[1]): FrontendAction | Promise<FrontendAction> {
    this.prepared.delete(p.name);
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

  private async onParseAsync(ctx: SessionContext, p: Parameters<NonNullable<StatementHandler['onParse']>>[1]): Promise<FrontendAction> {
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

  private async planParse(ctx: SessionContext, p: Parameters<NonNullable<StatementHandler['onParse']>>[1]): Promise<{ text: string; types: number[] } | null> {
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
          this.prepared.set(p.name, { pat, li, nParams });
          return { text, types };
        }
      }
    }
    return null;
  }

  onBind(ctx: SessionContext, f: Buffer): FrontendAction | Promise<FrontendAction> {
    // Statements the planner did not prepare: no decode here, VectorSession answers synchronously.
    if (this.prepared.size === 0 || !this.prepared.has(bindStatementName(f))) return this.inner.onBind(ctx, f);
    return this.onPlannedBind(ctx, f);
  }

  private async onPlannedBind(ctx: SessionContext, f: Buffer): Promise<FrontendAction> {
    const b = decodeBind(f);
    const prep = this.prepared.get(b.statement);
    if (!prep) return this.inner.onBind(ctx, f);
    const { pat, li, nParams } = prep;
    const fmt = (i: number) => (b.paramFormats.length === 1 ? b.paramFormats[0] : (b.paramFormats[i] ?? 0));
    let ids: string | null = null;
    let dists: string | null = null;
    const qi = (pat.query as { param: number }).param - 1;
    const raw = b.params[qi];
    const vec = raw === null || raw === undefined ? null : fmt(qi) === 1 ? pgvectorBinary(raw) : parseVectorLiteral(raw.toString('utf8'));
    let k: number | null = pat.limit + pat.offset;
    if (pat.limitParam) {
      const lv = b.params[pat.limitParam - 1];
      k = lv == null ? null : fmt(pat.limitParam - 1) === 1 ? Number(lv.length === 8 ? lv.readBigInt64BE(0) : lv.readInt32BE(0)) : Number(lv.toString('utf8'));
      k = k !== null && Number.isInteger(k) && k >= 0 ? k + pat.offset : null;
    }
    if (vec && k !== null && !pat.where && ctx.transactionStatus === 'I' && li.ready && vec.length === li.meta.dim && this.isLive(li)) {
      try {
        const db = await this.db(ctx);
        const { lsn, rls } = await db.currentLsnAndRls(li.meta.relid);
        await db.waitFor(lsn);
        if (rls) throw new Error('row-level security on the table: exact execution under the role');
        const res = this.search(li, vec, k, settingsFrom(this.gucs, k));
        ids = `{${Array.from(res.ids, String).join(',')}}`;
        dists = `{${Array.from(res.distances, (x) => (Number.isFinite(x) ? String(x) : 'Infinity')).join(',')}}`;
      } catch (err) {
        // Index sync unavailable (e.g. Postgres restarting): NULL ids = Postgres's exact answer.
        ctx.log.warn({ err }, 'winnow: index not usable for this Bind; exact execution');
        plannerStats.exactFallbacks++;
      }
    }
    const params = b.params.slice();
    while (params.length < nParams) params.push(null);
    params.push(ids === null ? null : Buffer.from(ids), dists === null ? null : Buffer.from(dists));
    const formats = Array.from({ length: nParams }, (_, i) => fmt(i));
    formats.push(0, 0);
    const frame = Bind({ ...b, paramFormats: formats, params });
    const r = await this.inner.onBind(ctx, frame);
    return r ?? { forward: [frame] };
  }

  private isLive(li: LiveIndex): boolean {
    for (const x of this.mgrIndexes(li)) if (x === li) return true;
    return false;
  }

  private mgrIndexes(li: LiveIndex): Iterable<LiveIndex> {
    return this.dbCache?.indexes.values() ?? [li];
  }
  onDescribe(ctx: SessionContext, f: Buffer) { return this.inner.onDescribe(ctx, f); }
  onSync() { return this.inner.onSync(); }
  onCopy(ctx: SessionContext, f: Buffer) { return this.inner.onCopy(ctx, f); }
  onBackendMessage(ctx: SessionContext, f: Buffer) { return this.inner.onBackendMessage(ctx, f); }
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


function minLoc(n: unknown): number {
  let min = Infinity;
  const walk = (x: unknown) => {
    if (Array.isArray(x)) x.forEach(walk);
    else if (x && typeof x === 'object') for (const [k, v] of Object.entries(x)) (k === 'location' && typeof v === 'number' && v >= 0 ? (min = Math.min(min, v)) : walk(v));
  };
  walk(n);
  return min;
}

export function plannerSessionFactory(mgr: IndexManager): StatementHandlerFactory {
  return () => new PlannerSession(mgr);
}
