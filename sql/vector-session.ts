// pgvector's SQL over Winnow's float4-array vector types: the per-session StatementHandler plugged
// into the server (server/session.ts hooks).
//
//  - CREATE/DROP EXTENSION vector -> Winnow's migrations (sql/extension.ts), unless the backing
//    Postgres has real pgvector, in which case everything passes through untouched.
//  - Statement text (Query, Parse): pgvector literals rewritten to array literals (sql/vector-rewrite.ts);
//    a malformed literal yields pgvector's error.
//  - Bind: parameters whose type is vector/halfvec translated (text '[…]' and pgvector binary).
//    Parameter types come from Parse, or are learned with PREPARE on the session's own connection.
//  - Results: DataRow fields of vector/halfvec columns translated back (text and binary).
//  - COPY … FROM STDIN / TO STDOUT (text format) of tables with vector columns translated row by row.
import type { FrontendAction, SessionContext, StatementHandler, StatementHandlerFactory } from '../server/session.ts';
import {
  B, Bind, CommandComplete, formatCode, DataRow, ErrorResponse, ParameterDescription, decodeBind, type BindMessage, decodeCommandComplete, decodeDataRow, decodeErrorFields, decodeRowDescription,
  decodeTarget, type FieldDescription,
} from '../server/protocol/messages.ts';
import { serialize } from 'pg-protocol';
import { parseStatement, type ParseResult } from './parse.ts';
import { extensionCommand, PGVECTOR_AVAILABLE_SQL } from './extension.ts';
import {
  PgvectorError, arrayBinaryToVectorBinary, arrayTextToVectorText, vectorBinaryToArrayBinary, vectorTextToArrayText,
  type VectorKind,
} from './vector-format.ts';
import { raiseStatement, rewriteStatements, type AllColumnsCatalog, type Replacement, type VectorColumn } from './vector-rewrite.ts';

type Node = Record<string, any>;

/** The internal prepared statement a planned Bind runs (plannedBind). */
const PLANNED_STATEMENT = 'winnow_planned';

interface TableInfo {
  columns: string[];
  vectors: Map<string, VectorColumn>;
}

interface ColumnKinds {
  kinds: (VectorKind | 'array' | undefined)[];
  formats: number[];
  any: boolean;
}

type Pending =
  | { t: 'parse' }
  | { t: 'injParse' }
  | { t: 'injBind' }
  | { t: 'injClose' }
  | { t: 'bind'; stmt: string; formats: number[] }
  | { t: 'describeS'; name: string; injected?: boolean }
  | { t: 'describeP' }
  | { t: 'sync' }
  | { t: 'query' };

/** CONTEXT lines that only say an error came from one of Winnow's SQL-level implementations (pgvector's are C). */
const CONTEXT_NOISE = /inline_code_block|winnow\.|function "?(?:vector|halfvec|array_to_vector|array_to_halfvec|vector_typmod_in|halfvec_typmod_in|subvector|halfvec_mul|l2_distance|inner_product|cosine_distance|l1_distance|hamming_distance|jaccard_distance|vector_accum|halfvec_accum|vector_combine|vector_to_halfvec|halfvec_to_vector|(?:vector|halfvec)_l2_squared_distance)\b/;

function errorFrame(e: PgvectorError): Buffer {
  return ErrorResponse({ severity: 'ERROR', code: e.code, message: e.message, ...(e.detail ? { detail: e.detail } : {}) } as never);
}

/** Statement kinds whose rewrite needs no catalog query beyond cached tables (rewriteSync). */
const SYNC_KINDS = new Set(['SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt', 'TransactionStmt', 'VariableSetStmt', 'VariableShowStmt', 'CopyStmt', 'ExplainStmt']);

function hasParams(node: unknown): boolean {
  if (Array.isArray(node)) return node.some(hasParams);
  if (node === null || typeof node !== 'object') return false;
  if ('ParamRef' in (node as Node)) return true;
  return Object.values(node as Node).some(hasParams);
}

export class VectorSession implements StatementHandler {
  /** OIDs of Winnow's vector/halfvec types in this database; null = not loaded yet. */
  private types: Map<number, VectorKind> | null = null;
  private oids: { vector?: number; halfvec?: number } = {};
  /** vector[] / halfvec[] (text results translated element by element). */
  private arrayTypes = new Map<number, VectorKind>();
  private pgvectorAvailable: boolean | null = null;
  private tables = new Map<string, TableInfo | null>();
  private stmtParams = new Map<string, number[]>();
  /** Statements prepared with parameters of Winnow's own after the client's: how many are the client's. */
  private clientParams = new Map<string, number>();
  private stmtFields = new Map<string, FieldDescription[]>();
  private pending: Pending[] = [];
  private current: ColumnKinds | null = null;
  private tagReplace: string[] = [];
  private invalidateAtReady = false;
  private copyIn: { kinds: (VectorKind | undefined)[]; typmods: number[]; rest: string; binary?: BinaryCopyTranslator } | null = null;
  private copyOutKinds: (VectorKind | undefined)[] | null = null;
  private copyOutBinary: BinaryCopyTranslator | null = null;
  private pendingCopy: (VectorKind | undefined)[] | null = null;
  private pendingCopyBinary = false;
  private pendingCopyTypmods: number[] = [];
  /** pgvector's error for a COPY row Winnow rejected (replaces Postgres's 'COPY from stdin failed'). */
  private copyError: PgvectorError | null = null;

  // ------------------------------------------------------------ catalog

  private typesCheckedAt = 0;

  private async loadTypes(ctx: SessionContext): Promise<void> {
    // No vector types yet: look again at most once a second (another session may create the extension).
    if (this.types && (this.types.size > 0 || Date.now() - this.typesCheckedAt < 1000)) return;
    this.typesCheckedAt = Date.now();
    const r = await ctx.query(
      `SELECT t.oid, t.typname, t.typarray FROM pg_catalog.pg_type t WHERE t.typname IN ('vector', 'halfvec') AND t.typelem = 'pg_catalog.float4'::pg_catalog.regtype`,
    );
    this.types = new Map();
    this.arrayTypes = new Map();
    this.oids = {};
    if (r.error) return;
    for (const [oid, name, arr] of r.rows) {
      this.types.set(Number(oid), name as VectorKind);
      this.arrayTypes.set(Number(arr), name as VectorKind);
      this.oids[name as VectorKind] = Number(oid);
    }
  }

  private async loadTables(ctx: SessionContext, names: Set<string>): Promise<void> {
    const missing = [...names].filter((n) => !this.tables.has(n));
    if (missing.length === 0 || !this.types?.size) return;
    const list = missing.map((n) => `'${n.replace(/'/g, "''")}'`).join(',');
    const r = await ctx.query(
      `SELECT c.relname, n.nspname, a.attname, a.atttypid, a.atttypmod FROM pg_catalog.pg_attribute a
         JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE (c.relname IN (${list}) OR n.nspname || '.' || c.relname IN (${list}))
          AND a.attnum > 0 AND NOT a.attisdropped AND pg_catalog.pg_table_is_visible(c.oid)
        ORDER BY c.oid, a.attnum`,
    );
    for (const n of missing) this.tables.set(n, null);
    if (r.error) return;
    for (const [rel, nsp, att, typ, typmod] of r.rows) {
      for (const key of [rel!, `${nsp}.${rel}`]) {
        if (!names.has(key)) continue;
        let t = this.tables.get(key);
        if (!t) {
          t = { columns: [], vectors: new Map() };
          this.tables.set(key, t);
        }
        t.columns.push(att!);
        const kind = this.types.get(Number(typ));
        if (kind) t.vectors.set(att!, { kind, typmod: Number(typmod) });
      }
    }
  }

  /** Parameter kinds of SQL-level prepared statements named in EXECUTE (this batch's PREPAREs first). */
  private prepared = new Map<string, (VectorKind | undefined)[]>();

  private async loadPrepared(ctx: SessionContext, stmts: Node[]): Promise<void> {
    this.prepared = new Map();
    const wanted = new Set<string>();
    for (const st of stmts) {
      if (st.PrepareStmt) {
        this.prepared.set(st.PrepareStmt.name, (st.PrepareStmt.argtypes ?? []).map((t: Node) => {
          const names: Node[] = t.TypeName?.names ?? [];
          const n = names[names.length - 1]?.String?.sval;
          return (n === 'vector' || n === 'halfvec') && !t.TypeName.arrayBounds?.length ? n : undefined;
        }));
      } else if (st.ExecuteStmt && !this.prepared.has(st.ExecuteStmt.name)) wanted.add(st.ExecuteStmt.name);
    }
    if (wanted.size === 0 || !this.types?.size) return;
    const list = [...wanted].map((n) => `'${n.replace(/'/g, "''")}'`).join(',');
    const r = await ctx.query(`SELECT name, parameter_types::oid[]::text FROM pg_catalog.pg_prepared_statements WHERE name IN (${list})`);
    if (r.error) return;
    for (const [name, types] of r.rows) {
      const oids = (types ?? '').replace(/[{}]/g, '').split(',').filter(Boolean).map(Number);
      this.prepared.set(name!, oids.map((o) => this.types!.get(o)));
    }
  }

  private catalog(): AllColumnsCatalog {
    return {
      vectorColumns: (t) => this.tables.get(t)?.vectors,
      allColumns: (t) => this.tables.get(t)?.columns,
    };
  }

  private invalidate(): void {
    this.tables.clear();
    this.paramCache?.clear();
  }

  // ------------------------------------------------------------ statements

  /** Rewrites a statement text; returns the new text, or an error to report. */
  private async rewrite(
    ctx: SessionContext,
    parsed: ParseResult,
  ): Promise<{ sql: string; changed: boolean; params?: Map<number, VectorKind> } | { error: PgvectorError; sql: string }> {
    if (!parsed.ok) return { sql: parsed.text, changed: false };
    const text = parsed.text;
    const statements = parsed.statements;
    // CREATE/DROP EXTENSION vector: replaced by Winnow's install/uninstall statement.
    const extra: Replacement[] = [];
    let installing = false;
    const ext = statements.map((s) => extensionCommand(s.stmt as Node));
    if (ext.some((e) => e)) {
      if (this.pgvectorAvailable === null) {
        const r = await ctx.query(PGVECTOR_AVAILABLE_SQL);
        this.pgvectorAvailable = !r.error && r.rows[0]?.[0] === 't';
      }
      if (!this.pgvectorAvailable) {
        const total = Buffer.byteLength(text, 'utf8');
        statements.forEach((s, i) => {
          const e = ext[i];
          if (!e) return;
          extra.push({ start: s.location, end: s.length ? s.location + s.length : total, text: e.sql });
          this.tagReplace.push(e.tag);
          if (e.tag === 'CREATE EXTENSION') installing = true;
        });
      }
      this.types = null;
    }
    if (statements.some((s) => !['SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt', 'TransactionStmt', 'VariableSetStmt', 'VariableShowStmt', 'CopyStmt', 'ExplainStmt', 'PrepareStmt', 'ExecuteStmt'].includes(s.kind))) {
      this.invalidate();
      this.invalidateAtReady = true;
    }
    await this.loadTypes(ctx);
    // Rewrite literals when the types exist, or will once this batch's CREATE EXTENSION has run.
    if (!this.types!.size && !installing) {
      if (!extra.length) return { sql: text, changed: false };
      const only = rewriteStatements(text, [], this.catalog(), extra);
      return { sql: only.ok ? only.sql : text, changed: true };
    }
    const rels = new Set<string>();
    collectRelnames(statements.map((s) => s.stmt), rels);
    await this.loadTables(ctx, rels);
    const catalog = withBatchDefinitions(this.catalog(), statements.map((s) => s.stmt as Node));
    await this.loadPrepared(ctx, statements.map((s) => s.stmt as Node));
    const prepared = this.prepared;
    catalog.preparedParams = (name) => prepared.get(name);
    const r = rewriteStatements(text, statements, catalog, extra);
    if (!r.ok) {
      // Statements before the failing one still run; the failing one raises pgvector's error in Postgres.
      const failing = statements[r.index];
      const prefix = Buffer.from(text, 'utf8').subarray(0, failing.location).toString('utf8');
      const before = rewriteStatements(prefix, statements.slice(0, r.index), catalog, extra.filter((x) => x.end <= failing.location));
      const head = before.ok ? before.sql : prefix;
      return { error: r.error, sql: head + (r.index > 0 && !/;\s*$/.test(head) ? ';' : '') + raiseStatement(r.error) };
    }
    return { sql: r.sql, changed: r.changed, params: r.params };
  }

  /**
   * The rewrite decided without any catalog query (types known, every named table cached, no
   * extension command, DDL or SQL-level PREPARE/EXECUTE), or null when rewrite() must run. Same result
   * as rewrite() for the statements it accepts; it lets hooks answer synchronously, so a plain
   * statement does not hold the client's batch behind a Promise.
   */
  private rewriteSync(parsed: ParseResult): { sql: string; changed: boolean; params?: Map<number, VectorKind> } | null {
    if (!parsed.ok) return { sql: parsed.text, changed: false };
    const types = this.types;
    if (!types || (types.size === 0 && Date.now() - this.typesCheckedAt >= 1000)) return null;
    const statements = parsed.statements;
    for (const s of statements) {
      if (!SYNC_KINDS.has(s.kind) || extensionCommand(s.stmt as Node)) return null;
    }
    if (types.size === 0) return { sql: parsed.text, changed: false };
    const rels = new Set<string>();
    collectRelnames(statements.map((s) => s.stmt), rels);
    for (const n of rels) if (!this.tables.has(n)) return null;
    this.prepared = new Map();
    const r = rewriteStatements(parsed.text, statements, this.catalog(), []);
    if (!r.ok) return null;
    return { sql: r.sql, changed: r.changed, params: r.params };
  }

  onQuery(ctx: SessionContext, q: { text: string; parsed: ParseResult; frame: Buffer }): FrontendAction | Promise<FrontendAction> {
    this.pending.push({ t: 'query' });
    const p = q.parsed;
    if (!p.ok || p.statements.length !== 1 || p.statements[0].kind !== 'CopyStmt') {
      const r = this.rewriteSync(p);
      if (r) {
        this.pendingCopy = null;
        this.pendingCopyBinary = false;
        this.pendingCopyTypmods = [];
        return r.changed ? { forward: [serialize.query(r.sql)] } : undefined;
      }
    }
    return this.onQueryAsync(ctx, q);
  }

  private async onQueryAsync(ctx: SessionContext, q: { text: string; parsed: ParseResult; frame: Buffer }): Promise<FrontendAction> {
    const r = await this.rewrite(ctx, q.parsed);
    await this.prepareCopy(ctx, q.parsed);
    if ('error' in r) return { forward: [serialize.query(r.sql)] };
    if (!r.changed) return undefined;
    return { forward: [serialize.query(r.sql)] };
  }

  onParse(ctx: SessionContext, p: { name: string; text: string; paramTypes: number[]; parsed: ParseResult; frame: Buffer }): FrontendAction | Promise<FrontendAction> {
    const r = this.rewriteSync(p.parsed);
    // Synchronous when no catalog query is needed: no types at all, or parameter types already known.
    if (r && this.types && (!this.types.size || !this.needsParamProbe(p) || this.paramCache.has(r.sql))) return this.finishParse(p, r, p.paramTypes.slice(), this.needsParamProbe(p) ? this.paramCache.get(r.sql) : undefined);
    return this.onParseAsync(ctx, p);
  }

  private needsParamProbe(p: { paramTypes: number[]; parsed: ParseResult }): boolean {
    return !!this.types?.size && p.parsed.ok && hasParams(p.parsed.statements.map((s) => s.stmt)) && p.paramTypes.every((t) => t === 0 || !this.types!.has(t));
  }

  private async onParseAsync(ctx: SessionContext, p: { name: string; text: string; paramTypes: number[]; parsed: ParseResult; frame: Buffer }): Promise<FrontendAction> {
    const r = await this.rewrite(ctx, p.parsed);
    if ('error' in r) return { forward: this.injectError(r.error) };
    // Learn the parameter types Postgres infers, so Bind values of vector type can be translated.
    const types = p.paramTypes.slice();
    const learned = this.needsParamProbe(p) ? await this.learnParamTypes(ctx, r.sql) : undefined;
    return this.finishParse(p, r, types, learned);
  }

  private finishParse(
    p: { name: string; text: string; paramTypes: number[]; parsed: ParseResult; frame: Buffer },
    r: { sql: string; changed: boolean; params?: Map<number, VectorKind> },
    given: number[],
    learned: number[] | null | undefined,
  ): FrontendAction {
    let types = given;
    if (learned !== undefined) {
      if (learned) types = learned.map((t, i) => (types[i] ? types[i] : t));
      else if (r.params?.size) {
        // No probe possible (unsynced batch): use the types the statement itself shows ($1::vector, col <-> $1, …).
        for (const [n, kind] of r.params) if (!types[n - 1] && this.oids[kind]) types[n - 1] = this.oids[kind]!;
        for (let i = 0; i < types.length; i++) types[i] ??= 0;
      }
    }
    this.stmtParams.set(p.name, types);
    this.stmtFields.delete(p.name);
    this.clientParams.delete(p.name);
    this.pending.push({ t: 'parse' });
    if (!this.types?.size) return r.changed ? { forward: [serialize.parse({ name: p.name, text: r.sql, types: p.paramTypes })] } : undefined;
    // Also describe the statement (answers dropped on the way back) so result columns are known even
    // when the client binds and executes without a Describe.
    this.pending.push({ t: 'describeS', name: p.name, injected: true });
    return { forward: [r.changed ? serialize.parse({ name: p.name, text: r.sql, types: p.paramTypes }) : p.frame, serialize.describe({ type: 'S', name: p.name })] };
  }

  /** Parameter types learned per statement text (cleared with the catalog cache on DDL). */
  private paramCache = new Map<string, number[]>();

  private async learnParamTypes(ctx: SessionContext, sql: string): Promise<number[] | null> {
    const cached = this.paramCache.get(sql);
    if (cached) return cached;
    const out = await this.probeParamTypes(ctx, sql);
    if (out) {
      if (this.paramCache.size > 1000) this.paramCache.clear();
      this.paramCache.set(sql, out);
    }
    return out;
  }

  /** Client extended-protocol messages forwarded since its last Sync (an open batch). */
  private batchOpen(): boolean {
    const last = this.pending[this.pending.length - 1];
    return last !== undefined && last.t !== 'sync' && last.t !== 'query';
  }

  private async probeParamTypes(ctx: SessionContext, sql: string): Promise<number[] | null> {
    // The probe runs on the session's connection after everything already sent has completed; inside
    // an unsynced batch that would wait for a Sync the client has not sent yet, so do not probe then.
    if (this.batchOpen()) return null;
    const status = ctx.transactionStatus;
    if (status === 'E') return null;
    const inTx = status === 'T';
    if (inTx) await ctx.query('SAVEPOINT winnow_param_probe');
    const prep = await ctx.query(`PREPARE winnow_param_probe AS ${sql}`);
    let out: number[] | null = null;
    if (!prep.error) {
      const r = await ctx.query(`SELECT parameter_types::oid[]::text FROM pg_catalog.pg_prepared_statements WHERE name = 'winnow_param_probe'`);
      await ctx.query('DEALLOCATE winnow_param_probe');
      const v = r.rows[0]?.[0];
      if (v) out = v.replace(/[{}]/g, '').split(',').filter(Boolean).map(Number);
    }
    if (inTx) await ctx.query(prep.error ? 'ROLLBACK TO SAVEPOINT winnow_param_probe' : 'RELEASE SAVEPOINT winnow_param_probe');
    return out;
  }

  /**
   * Extended protocol: make Postgres raise `e` in place of the client's message, so the error, the
   * skip-to-Sync and the transaction state are Postgres's own. The injected statement's ParseComplete
   * and BindComplete are dropped on the way back.
   */
  private injectError(e: PgvectorError): Buffer[] {
    this.pending.push({ t: 'injParse' }, { t: 'injBind' });
    return [serialize.parse({ name: '', text: raiseStatement(e), types: [] }), serialize.bind({ portal: '', statement: '' }), serialize.execute({ portal: '', rows: 0 })];
  }

  /**
   * The client's Bind of one of its statements, replaced by a statement the planner wrote for it with
   * every parameter inlined: an internal statement (closed and parsed again each time; its
   * CloseComplete and ParseComplete are dropped) is bound to the client's portal. The client's own
   * statement stays as it prepared it; its described result columns translate the rows.
   */
  async plannedBind(ctx: SessionContext, b: BindMessage, text: string): Promise<FrontendAction> {
    const r = await this.rewrite(ctx, parseStatement(text));
    if ('error' in r) return { forward: this.injectError(r.error) };
    this.pending.push({ t: 'injClose' }, { t: 'injParse' }, { t: 'bind', stmt: b.statement, formats: b.resultFormats });
    return {
      forward: [
        serialize.close({ type: 'S', name: PLANNED_STATEMENT }),
        serialize.parse({ name: PLANNED_STATEMENT, text: r.sql, types: [] }),
        Bind({ ...b, statement: PLANNED_STATEMENT, params: [], paramFormats: [] }),
      ],
    };
  }

  /**
   * The statement just parsed (through onParse) takes parameters of Winnow's own after the client's
   * first `n`: the client's Describe shows only those, as Postgres would for the client's text.
   */
  hideTrailingParams(name: string, n: number): void {
    this.clientParams.set(name, n);
  }

  /** Whether a parameter type OID is one of this database's vector types (their text is pgvector's '[…]'). */
  isVectorType(oid: number): boolean {
    return !!this.types?.has(oid);
  }

  /** 'vector' or 'halfvec' for those types' OIDs in this database, else undefined. */
  vectorKindOf(oid: number): VectorKind | undefined {
    return this.types?.get(oid);
  }

  onBind(_ctx: SessionContext, frame: Buffer): FrontendAction {
    if (!this.types?.size) {
      // No vector types: nothing to translate in the parameters, and no statement has described
      // fields (no Describe is injected), so BindComplete leaves no result columns to translate.
      this.pending.push({ t: 'bind', stmt: bindStatementName(frame), formats: NO_FORMATS });
      return undefined;
    }
    const b = decodeBind(frame);
    this.pending.push({ t: 'bind', stmt: b.statement, formats: b.resultFormats });
    const types = this.stmtParams.get(b.statement);
    if (!types || !types.some((t) => this.types!.has(t))) return undefined;
    let changed = false;
    let params: (Buffer | null)[];
    try {
      params = b.params.map((v, i) => {
        const kind = this.types!.get(types[i] ?? 0);
        if (!kind || v === null) return v;
        const fmt = formatCode(b.paramFormats, i);
        changed = true;
        return fmt === 1 ? vectorBinaryToArrayBinary(v, kind) : Buffer.from(vectorTextToArrayText(v.toString('utf8'), kind));
      });
    } catch (err) {
      if (!(err instanceof PgvectorError)) throw err;
      this.pending.pop();
      return { forward: this.injectError(err) };
    }
    if (!changed) return undefined;
    return { forward: [Bind({ ...b, params })] };
  }

  onDescribe(_ctx: SessionContext, frame: Buffer): FrontendAction {
    const d = decodeTarget(frame);
    this.pending.push(d.target === 'S' ? { t: 'describeS', name: d.name } : { t: 'describeP' });
    return undefined;
  }

  onSync(): FrontendAction {
    this.pending.push({ t: 'sync' });
    return undefined;
  }

  // ------------------------------------------------------------ COPY

  private async prepareCopy(ctx: SessionContext, parsed: ParseResult): Promise<void> {
    this.pendingCopy = null;
    this.pendingCopyBinary = false;
    this.pendingCopyTypmods = [];
    if (!parsed.ok || parsed.statements.length !== 1) return;
    const c = parsed.statements[0].stmt.CopyStmt as Node | undefined;
    if (!c || !this.types?.size) return;
    const opts: Node[] = c.options ?? [];
    const format = opts.find((o) => o.DefElem?.defname === 'format')?.DefElem?.arg?.String?.sval ?? 'text';
    if (format !== 'text' && format !== 'binary') return;
    this.pendingCopyBinary = format === 'binary';
    if (c.query && !c.is_from) {
      // COPY (query) TO STDOUT: learn the result column types from a LIMIT 0 run of the query.
      const inner = parenthesised(parsed.text, parsed.statements[0].location);
      if (!inner) return;
      const r = await ctx.query(`SELECT * FROM (${inner}) winnow_copy_probe LIMIT 0`);
      if (r.error) return;
      this.pendingCopy = r.fields.map((f) => this.types!.get(f.typeOid));
      if (!this.pendingCopy.some(Boolean)) this.pendingCopy = null;
      return;
    }
    if (!c.relation) return;
    const rel = c.relation.schemaname ? `${c.relation.schemaname}.${c.relation.relname}` : c.relation.relname;
    await this.loadTables(ctx, new Set([rel]));
    const t = this.tables.get(rel);
    if (!t || t.vectors.size === 0) return;
    const cols: string[] = c.attlist?.length ? c.attlist.map((a: Node) => a.String?.sval) : t.columns;
    this.pendingCopy = cols.map((n) => t.vectors.get(n)?.kind);
    // COPY runs only the type's input function (array_in ignores the typmod), so vector(n) is checked here.
    this.pendingCopyTypmods = cols.map((n) => t.vectors.get(n)?.typmod ?? -1);
    if (!this.pendingCopy.some(Boolean)) this.pendingCopy = null;
  }

  onCopy(_ctx: SessionContext, frame: Buffer): FrontendAction {
    const st = this.copyIn;
    if (!st) return undefined;
    const type = frame[0];
    if (st.binary) {
      if (type === 0x64) {
        try {
          const out = st.binary.push(frame.subarray(5));
          return { forward: out.length ? [serialize.copyData(out)] : [] };
        } catch (err) {
          if (!(err instanceof PgvectorError)) throw err;
          this.copyIn = null;
          this.copyError = err;
          return { forward: [serialize.copyFail(err.message)] };
        }
      }
      this.copyIn = null;
      return undefined;
    }
    if (type === 0x64 /* d */) {
      const data = st.rest + frame.toString('utf8', 5);
      const lastNl = data.lastIndexOf('\n');
      if (lastNl < 0) {
        st.rest = data;
        return { forward: [] };
      }
      st.rest = data.slice(lastNl + 1);
      const lines = data.slice(0, lastNl).split('\n');
      try {
        const out = lines.map((l) => translateCopyLine(l, st.kinds, 'in', st.typmods)).join('\n') + '\n';
        return { forward: [copyDataText(out)] };
      } catch (err) {
        if (err instanceof PgvectorError) {
          this.copyIn = null;
          this.copyError = err;
          return { forward: [serialize.copyFail(`${err.message}`)] };
        }
        throw err;
      }
    }
    if (type === 0x63 /* c */) {
      const rest = st.rest;
      this.copyIn = null;
      if (rest.length) {
        try {
          return { forward: [copyDataText(translateCopyLine(rest, st.kinds, 'in', st.typmods)), frame] };
        } catch (err) {
          if (!(err instanceof PgvectorError)) throw err;
          this.copyError = err;
          return { forward: [serialize.copyFail(err.message)] };
        }
      }
      return undefined;
    }
    this.copyIn = null;
    return undefined;
  }

  // ------------------------------------------------------------ results

  /** Parameter types of a prepared statement as Postgres resolved them (0 = not known). */
  statementParamTypes(name: string): number[] {
    return this.stmtParams.get(name) ?? [];
  }

  /** Postgres's description of a prepared statement's result columns, once its Parse succeeded. */
  describedFields(name: string): FieldDescription[] | undefined {
    return this.stmtFields.get(name);
  }

  onBackendMessage(_ctx: SessionContext, frame: Buffer): Buffer | Buffer[] | null | undefined {
    if (frame[0] === B.ParseComplete) {
      const head = this.pending[0];
      if (head?.t === 'parse' || head?.t === 'injParse') this.pending.shift();
      return head?.t === 'injParse' ? null : undefined;
    }
    if (frame[0] === B.BindComplete && this.pending[0]?.t === 'injBind') {
      this.pending.shift();
      return null;
    }
    if (frame[0] === B.CloseComplete && this.pending[0]?.t === 'injClose') {
      this.pending.shift();
      return null;
    }
    switch (frame[0]) {
      case B.RowDescription: {
        const head = this.pending[0];
        if (head?.t !== 'describeS' && !this.types?.size) {
          // No vector types: no column to translate (kindsOf would find none), nothing to remember.
          if (head?.t === 'describeP') this.pending.shift();
          this.current = null;
          return undefined;
        }
        const fields = decodeRowDescription(frame);
        if (head?.t === 'describeS') {
          this.stmtFields.set(head.name, fields);
          this.pending.shift();
          if (head.injected) return null;
          this.current = this.kindsOf(fields, fields.map(() => 0));
        } else {
          if (head?.t === 'describeP') this.pending.shift();
          this.current = this.kindsOf(fields, fields.map((f) => f.format ?? 0));
        }
        return undefined;
      }
      case B.ParameterDescription: {
        const head = this.pending[0];
        if (head?.t === 'describeS') {
          const n = frame.readInt16BE(5);
          const types: number[] = [];
          for (let i = 0; i < n; i++) types.push(frame.readUInt32BE(7 + 4 * i));
          const known = this.stmtParams.get(head.name);
          if (!known || known.every((t) => t === 0)) this.stmtParams.set(head.name, types);
          if (head.injected) return null;
          const shown = this.clientParams.get(head.name);
          if (shown !== undefined && shown < n) return ParameterDescription(types.slice(0, shown));
        }
        return undefined;
      }
      case B.NoData: {
        const head = this.pending[0];
        if (head?.t === 'describeS' || head?.t === 'describeP') this.pending.shift();
        if (head?.t === 'describeS' && head.injected) {
          this.stmtFields.set(head.name, []);
          return null;
        }
        this.current = null;
        return undefined;
      }
      case B.BindComplete: {
        const head = this.pending.shift();
        if (head?.t === 'bind') {
          const fields = this.stmtFields.get(head.stmt);
          this.current = fields ? this.kindsOf(fields, fields.map((_, i) => formatCode(head.formats, i))) : null;
        }
        return undefined;
      }
      case B.DataRow: {
        const cur = this.current;
        if (!cur?.any) return undefined;
        const values = decodeDataRow(frame);
        const out = values.map((v, i) => {
          const kind = cur.kinds[i];
          if (!kind || v === null) return v;
          if (kind === 'array') return cur.formats[i] === 1 ? v : vectorArrayText(v.toString('utf8'));
          return cur.formats[i] === 1 ? arrayBinaryToVectorBinary(v, kind) : arrayTextToVectorText(v.toString('utf8'));
        });
        return DataRow(out);
      }
      case B.CommandComplete: {
        const tag = decodeCommandComplete(frame);
        if (tag === 'DO' && this.tagReplace.length) {
          const t = this.tagReplace.shift()!;
          this.types = null;
          this.invalidate();
          return CommandComplete(t);
        }
        return undefined;
      }
      case B.ErrorResponse: {
        this.tagReplace.length = 0;
        const f = decodeErrorFields(frame) as Record<string, string>;
        if (this.copyError && f.code === '57014') {
          const e = this.copyError;
          this.copyError = null;
          return ErrorResponse({ severity: 'ERROR', code: e.code, message: e.message, ...(e.detail ? { detail: e.detail } : {}), ...(f.where ? { where: f.where } : {}) } as never);
        }
        if (f.where && CONTEXT_NOISE.test(f.where)) {
          // Keep context lines that are the user's (e.g. COPY line numbers); drop Winnow's own.
          const kept = f.where.split('\n').filter((l) => !CONTEXT_NOISE.test(l) && !/^(?:SQL statement|PL\/pgSQL function)/.test(l));
          const { where: _w, ...rest } = f;
          return ErrorResponse((kept.length ? { ...rest, where: kept.join('\n') } : rest) as never);
        }
        return undefined;
      }
      case B.ReadyForQuery: {
        // Everything owed before this ReadyForQuery has been answered (or skipped after an error).
        const i = this.pending.findIndex((p) => p.t === 'sync' || p.t === 'query');
        this.pending.splice(0, i < 0 ? this.pending.length : i + 1);
        this.current = null;
        this.copyIn = null;
        this.copyOutKinds = null;
        this.copyOutBinary = null;
        this.copyError = null;
        if (this.invalidateAtReady) {
          this.invalidateAtReady = false;
          this.invalidate();
        }
        return undefined;
      }
      case B.CopyInResponse: {
        if (this.pendingCopy) {
          const typmods = this.pendingCopyTypmods;
          this.copyIn = { kinds: this.pendingCopy, typmods, rest: '', ...(this.pendingCopyBinary ? { binary: new BinaryCopyTranslator(this.pendingCopy, 'in', typmods) } : {}) };
        }
        this.pendingCopy = null;
        return undefined;
      }
      case B.CopyOutResponse: {
        this.copyOutKinds = this.pendingCopy;
        this.copyOutBinary = this.pendingCopy && this.pendingCopyBinary ? new BinaryCopyTranslator(this.pendingCopy, 'out') : null;
        this.pendingCopy = null;
        return undefined;
      }
      case B.CopyData: {
        if (!this.copyOutKinds) return undefined;
        if (this.copyOutBinary) {
          const out = this.copyOutBinary.push(frame.subarray(5));
          return out.length ? serialize.copyData(out) : null;
        }
        const text = frame.toString('utf8', 5);
        const nl = text.endsWith('\n');
        const body = nl ? text.slice(0, -1) : text;
        return copyDataText(translateCopyLine(body, this.copyOutKinds, 'out') + (nl ? '\n' : ''));
      }
      default:
        return undefined;
    }
  }

  private kindsOf(fields: FieldDescription[], formats: number[]): ColumnKinds {
    const kinds = fields.map((f) => this.types?.get(f.typeOid) ?? (this.arrayTypes.has(f.typeOid) ? ('array' as const) : undefined));
    return { kinds, formats, any: kinds.some(Boolean) };
  }
}

const NO_FORMATS: number[] = [];

/** The statement name of a Bind frame (portal and statement are its first two C strings). */
export function bindStatementName(frame: Buffer): string {
  const p = frame.indexOf(0, 5) + 1;
  const e = frame.indexOf(0, p);
  return frame.toString('utf8', p, e);
}

/** Text of a vector[] ('{"{1,2}","{3,4}"}') -> pgvector's ('{"[1,2]","[3,4]"}'). */
export function vectorArrayText(text: string): string {
  return text.replace(/"\{([^"}]*)\}"/g, '"[$1]"');
}

/**
 * The catalog as it will be after this batch's CREATE TABLE / ALTER TABLE … ADD COLUMN statements
 * (a multi-statement Query is rewritten before any of it runs).
 */
function withBatchDefinitions(base: AllColumnsCatalog, stmts: Node[]): AllColumnsCatalog {
  const defs = new Map<string, { columns: string[]; vectors: Map<string, VectorColumn> }>();
  const colOf = (cd: Node, t: { columns: string[]; vectors: Map<string, VectorColumn> }) => {
    t.columns.push(cd.colname);
    const names: Node[] = cd.typeName?.names ?? [];
    const type = names[names.length - 1]?.String?.sval;
    if ((type === 'vector' || type === 'halfvec') && !cd.typeName.arrayBounds?.length) {
      const m = cd.typeName.typmods?.[0]?.A_Const?.ival;
      const typmod = m !== undefined && (m.ival ?? 0) >= 1 && (m.ival ?? 0) <= 16000 ? m.ival : -1;
      t.vectors.set(cd.colname, { kind: type, typmod });
    }
  };
  for (const st of stmts) {
    if (st.CreateStmt?.relation?.relname) {
      const t = { columns: [] as string[], vectors: new Map<string, VectorColumn>() };
      for (const e of st.CreateStmt.tableElts ?? []) if (e.ColumnDef) colOf(e.ColumnDef, t);
      defs.set(st.CreateStmt.relation.relname, t);
    } else if (st.AlterTableStmt?.relation?.relname) {
      const name = st.AlterTableStmt.relation.relname;
      for (const c of st.AlterTableStmt.cmds ?? []) {
        const cd = c.AlterTableCmd?.subtype === 'AT_AddColumn' ? c.AlterTableCmd.def?.ColumnDef : undefined;
        if (!cd) continue;
        let t = defs.get(name);
        if (!t) {
          const cur = base.vectorColumns(name);
          t = { columns: [...(base.allColumns?.(name) ?? [])], vectors: new Map(cur ?? []) };
          defs.set(name, t);
        }
        colOf(cd, t);
      }
    }
  }
  if (defs.size === 0) return base;
  return {
    vectorColumns: (t) => defs.get(t)?.vectors ?? base.vectorColumns(t),
    allColumns: (t) => defs.get(t)?.columns ?? base.allColumns?.(t),
  };
}

/** The text inside the first top-level parentheses at or after `from` (quote-aware), if any. */
function parenthesised(text: string, from: number): string | undefined {
  const buf = Buffer.from(text, 'utf8');
  let i = buf.indexOf(0x28, from);
  if (i < 0) return undefined;
  const start = i + 1;
  let depth = 0;
  for (; i < buf.length; i++) {
    const ch = buf[i];
    if (ch === 0x27 || ch === 0x22) {
      const q = ch;
      for (i++; i < buf.length && !(buf[i] === q && buf[i + 1] !== q); i++) if (buf[i] === q) i++;
    } else if (ch === 0x28) depth++;
    else if (ch === 0x29 && --depth === 0) return buf.subarray(start, i).toString('utf8');
  }
  return undefined;
}

function collectRelnames(node: unknown, out: Set<string>): void {
  if (Array.isArray(node)) {
    for (const x of node) collectRelnames(x, out);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const n = node as Node;
  if (typeof n.relname === 'string') {
    out.add(n.relname);
    if (n.schemaname) out.add(`${n.schemaname}.${n.relname}`);
  }
  for (const v of Object.values(n)) if (v && typeof v === 'object') collectRelnames(v, out);
}

/** One line of COPY text format: translate the vector columns' fields. */
export function translateCopyLine(line: string, kinds: (VectorKind | undefined)[], dir: 'in' | 'out', typmods: number[] = []): string {
  if (line === '\\.' || line === '') return line;
  const fields = line.split('\t');
  for (let i = 0; i < fields.length; i++) {
    const kind = kinds[i];
    if (!kind || fields[i] === '\\N') continue;
    fields[i] = dir === 'in' ? vectorTextToArrayText(fields[i], kind, typmods[i] ?? -1) : arrayTextToVectorText(fields[i]);
  }
  return fields.join('\t');
}

/**
 * Streaming translator for COPY BINARY: passes the header and trailer through and converts the
 * vector/halfvec fields of each complete tuple (pgvector binary <-> float4-array binary).
 */
export class BinaryCopyTranslator {
  private buf: Buffer = Buffer.alloc(0);
  private headerDone = false;
  constructor(
    private readonly kinds: (VectorKind | undefined)[],
    private readonly dir: 'in' | 'out',
    private readonly typmods: number[] = [],
  ) {}

  push(chunk: Buffer): Buffer {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : Buffer.from(chunk);
    const out: Buffer[] = [];
    let p = 0;
    const b = this.buf;
    if (!this.headerDone) {
      if (b.length < 19) return Buffer.alloc(0);
      const ext = b.readInt32BE(15);
      if (b.length < 19 + ext) return Buffer.alloc(0);
      out.push(b.subarray(0, 19 + ext));
      p = 19 + ext;
      this.headerDone = true;
    }
    for (;;) {
      if (b.length - p < 2) break;
      const n = b.readInt16BE(p);
      if (n === -1) {
        out.push(b.subarray(p, p + 2));
        p += 2;
        continue;
      }
      // Is the whole tuple here?
      let q = p + 2;
      let complete = true;
      for (let i = 0; i < n; i++) {
        if (b.length - q < 4) {
          complete = false;
          break;
        }
        const len = b.readInt32BE(q);
        q += 4 + Math.max(len, 0);
        if (q > b.length) {
          complete = false;
          break;
        }
      }
      if (!complete) break;
      const parts: Buffer[] = [b.subarray(p, p + 2)];
      let r = p + 2;
      for (let i = 0; i < n; i++) {
        const len = b.readInt32BE(r);
        const kind = this.kinds[i];
        if (len < 0 || !kind) {
          parts.push(b.subarray(r, r + 4 + Math.max(len, 0)));
        } else {
          const v = b.subarray(r + 4, r + 4 + len);
          const t = this.dir === 'in' ? vectorBinaryToArrayBinary(v, kind, this.typmods[i] ?? -1) : arrayBinaryToVectorBinary(v, kind);
          const l = Buffer.alloc(4);
          l.writeInt32BE(t.length);
          parts.push(l, t);
        }
        r += 4 + Math.max(len, 0);
      }
      out.push(...parts);
      p = q;
    }
    this.buf = b.subarray(p);
    return Buffer.concat(out);
  }
}






/** The factory to pass to startWinnow({ handlerFactory }). */
export const vectorSessionFactory: StatementHandlerFactory = () => new VectorSession();

const copyDataText = (text: string): Buffer => serialize.copyData(Buffer.from(text, 'utf8'));
