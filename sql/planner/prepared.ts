// Extended protocol: nearest-neighbour statements prepared once and run many times.
//
// A recognised statement whose query vector is a parameter is prepared in a parameterised rewritten
// form (recognize.ts rewriteKnnParams); each Bind searches the index and appends the ids/distances
// parameters. Statements the planner did not prepare pass through VectorSession synchronously.
import { serialize } from 'pg-protocol';
import type { FrontendAction, SessionContext, StatementHandler } from '../../server/session.ts';
import { Bind, decodeBind } from '../../server/protocol/messages.ts';
import { parseStatement, type ParseResult } from '../parse.ts';
import { bindStatementName, type VectorSession } from '../vector-session.ts';
import type { DatabaseIndexes, LiveIndex } from '../../sync/index-manager.ts';
import { parseVectorLiteral, recognizeKnn, rewriteKnnParams, type KnnPattern } from './recognize.ts';
import { searchIndex, plannerStats } from './search.ts';
import { settingsFrom, type SessionGucs } from './settings.ts';
import type { SessionVisibility } from './visibility.ts';

type Node = Record<string, any>;
type ParseArgs = Parameters<NonNullable<StatementHandler['onParse']>>[1];

export class PreparedKnnStatements {
  private prepared = new Map<string, { pat: KnnPattern; li: LiveIndex; nParams: number }>();

  constructor(
    private inner: VectorSession,
    private gucs: SessionGucs,
    private db: (ctx: SessionContext) => Promise<DatabaseIndexes>,
    private cachedDb: () => DatabaseIndexes | null,
    private visibility: SessionVisibility,
  ) {}

  onParse(ctx: SessionContext, p: ParseArgs): FrontendAction | Promise<FrontendAction> {
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
          this.prepared.set(p.name, { pat, li, nParams });
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
    if (this.prepared.size === 0 || !this.prepared.has(name)) return this.inner.onBind(ctx, f);
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
        const { rls } = await this.visibility.forIndex(db, li, ctx.params.user);
        if (rls) throw new Error('row-level security on the table: exact execution under the role');
        const res = searchIndex(li, vec, k, settingsFrom(this.gucs, k));
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


