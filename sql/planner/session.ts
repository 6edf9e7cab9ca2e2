// PlannerSession: Winnow's vector-query planner in front of VectorSession (issue 5).
//
// It handles index DDL (sql/index-ddl.ts) and answers recognised nearest-neighbour queries through a
// native index (recognize.ts): read-your-writes wait, optional pre-filter ids from Postgres, native
// search, then one rewritten Postgres statement that returns the rows. Everything else — and every
// hook — goes to the wrapped VectorSession unchanged, so pgvector translation keeps working on the
// rewritten text and its results.
import { serialize } from 'pg-protocol';
import type { FrontendAction, SessionContext, StatementHandler, StatementHandlerFactory } from '../../server/session.ts';
import { CommandComplete, DataRow, RowDescription } from '../../server/protocol/messages.ts';
import { parseStatement, type ParseResult } from '../parse.ts';
import { VectorSession } from '../vector-session.ts';
import { quoteLiteral } from '../migrations.ts';
import { createWinnowIndex, dropWinnowIndexes, isWinnowIndexStmt, winnowIndexesIn } from '../index-ddl.ts';
import type { IndexManager, LiveIndex } from '../../sync/index-manager.ts';
import { lsnToBigInt } from '../../sync/pgoutput.ts';
import { parseVectorLiteral, quoteIdent, recognizeKnn, rewriteKnn, type KnnPattern } from './recognize.ts';
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

export class PlannerSession implements StatementHandler {
  readonly inner = new VectorSession();
  lastPlan: PlanInfo | null = null;

  constructor(private mgr: IndexManager) {}

  private db(ctx: SessionContext) {
    return this.mgr.forDatabase(ctx.params.user, ctx.params.database ?? ctx.params.user);
  }

  async onQuery(ctx: SessionContext, q: { text: string; parsed: ParseResult; frame: Buffer }): Promise<FrontendAction> {
    const p = q.parsed;
    if (p.ok && p.statements.length === 1) {
      const st = p.statements[0];
      if (isWinnowIndexStmt(st.stmt)) return { respond: await createWinnowIndex(ctx, this.mgr, st.stmt) };
      if (st.kind === 'DropStmt' && (st.stmt as Node).DropStmt.removeType === 'OBJECT_INDEX') {
        const targets = await winnowIndexesIn(ctx, this.mgr, st.stmt);
        if (targets.length) return { respond: await dropWinnowIndexes(ctx, this.mgr, q.text, targets) };
      }
      if (st.kind === 'SelectStmt') {
        const planned = await this.plan(ctx, q.text, st.stmt, st.location, st.length);
        if (planned) {
          const parsed = parseStatement(planned);
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
    return this.inner.onQuery(ctx, q);
  }

  /** Returns the rewritten statement, or null to run the original in Postgres (exactly). */
  async plan(ctx: SessionContext, text: string, stmt: Node, location: number, length: number): Promise<string | null> {
    const pat = recognizeKnn(text, stmt, location, length);
    if (!pat) return null;
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
      current_setting('hnsw.ef_search', true), current_setting('ivfflat.probes', true)`);
    if (r.error || !r.rows.length) return null;
    const [lsn, relid, nprobe, kFactor, efSearch, probes] = r.rows[0];
    if (!relid) return null;
    const li = db.find(Number(relid), pat.column, pat.metric);
    if (!li || vec.length !== li.meta.dim) return null;
    const k = pat.limit + pat.offset;
    const settings = settingsFrom({ nprobe, kFactor, efSearch, probes }, k);
    // Read-your-writes: everything committed before this query started is in the index.
    await db.waitFor(lsnToBigInt(lsn!));
    const t1 = performance.now();
    let filter: BigInt64Array | undefined;
    if (pat.where) {
      const f = await ctx.query(`SELECT ${quoteIdent(pat.ref)}.${quoteIdent(li.meta.keyColumn)}::bigint FROM ${pat.fromList} WHERE ${pat.where}`);
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
    if (k === 0 || (filter && filter.length === 0)) return { ids: new BigInt64Array(0), distances: new Float32Array(0) };
    const r = li.index.search(vec, { k, nprobe: s.nprobe, kFactor: s.kFactor, filter });
    let n = r.ids.length;
    while (n > 0 && r.ids[n - 1] === -1n) n--;
    return { ids: r.ids.subarray(0, n), distances: r.distances.subarray(0, n) };
  }

  private async explain(ctx: SessionContext, text: string, stmt: Node, analyze: boolean): Promise<string[] | null> {
    const loc = minLoc(stmt);
    // The SELECT starts at the SELECT keyword before its first located node.
    const latin = Buffer.from(text, 'utf8').toString('latin1');
    const sel = latin.slice(0, loc + 1).toLowerCase().lastIndexOf('select');
    if (sel < 0) return null;
    const planned = await this.plan(ctx, text, stmt, sel, 0);
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

  onParse(ctx: SessionContext, p: Parameters<NonNullable<StatementHandler['onParse']>>[1]) { return this.inner.onParse(ctx, p); }
  onBind(ctx: SessionContext, f: Buffer) { return this.inner.onBind(ctx, f); }
  onDescribe(ctx: SessionContext, f: Buffer) { return this.inner.onDescribe(ctx, f); }
  onSync() { return this.inner.onSync(); }
  onCopy(ctx: SessionContext, f: Buffer) { return this.inner.onCopy(ctx, f); }
  onBackendMessage(ctx: SessionContext, f: Buffer) { return this.inner.onBackendMessage(ctx, f); }
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
