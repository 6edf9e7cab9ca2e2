// Index DDL served by Winnow: CREATE INDEX … USING winnow|hnsw|ivfflat, DROP INDEX of such indexes.
//
// CREATE INDEX runs in three steps on the client's own connection (so Postgres checks ownership and
// name clashes): a real, empty placeholder btree `CREATE INDEX name ON t (pk) WHERE false` (so \di,
// pg_indexes, DROP TABLE and the namespace behave), a row in winnow.indexes, then the native build by
// the IndexManager (its own connection, a REPEATABLE READ scan: other sessions keep reading and writing).
import type { SessionContext } from '../server/session.ts';
import { CommandComplete, ErrorResponse, NoticeResponse, type ErrorFields } from '../server/protocol/messages.ts';
import type { IndexManager, IndexMeta, LiveIndex } from '../sync/index-manager.ts';
import { learnLiveIndex } from './planner/learn.ts';
import { INCLUDE_TYPES, type IncludeColumn } from '../sync/include-store.ts';
import type { Metric } from '../native/index.ts';
import { quoteIdent, quoteLiteral } from './quote.ts';

type Node = Record<string, any>;

export const WINNOW_METHODS = new Set(['winnow', 'hnsw', 'ivfflat']);

const OPCLASS: Record<string, Metric> = {
  vector_l2_ops: 'l2', vector_ip_ops: 'ip', vector_cosine_ops: 'cos',
};

export function isWinnowIndexStmt(stmt: Node): boolean {
  return Boolean(stmt.IndexStmt && WINNOW_METHODS.has(String(stmt.IndexStmt.accessMethod).toLowerCase()));
}

const err = (code: string, message: string, extra: ErrorFields = {}): Buffer => ErrorResponse({ severity: 'ERROR', code, message, ...extra });

function intOption(d: Node): number | null {
  const a = d.arg;
  if (a?.Integer) return a.Integer.ival ?? 0;
  if (a?.String && /^\d+$/.test(a.String.sval)) return Number(a.String.sval);
  return null;
}

/** `learn = on|off|true|false|1|0` (Postgres's spellings of a boolean reloption); null when it is none of them. */
function boolOption(d: Node): boolean | null {
  const a = d.arg;
  if (a === undefined) return true; // WITH (learn)
  if (a.Integer) return a.Integer.ival === 1 ? true : (a.Integer.ival ?? 0) === 0 ? false : null;
  const t = String(a.String?.sval ?? a.Boolean?.boolval ?? '').toLowerCase();
  return ['on', 'true', 'yes', '1', 't'].includes(t) ? true : ['off', 'false', 'no', '0', 'f'].includes(t) ? false : null;
}

/** The NOTICEs of `WITH (learn = on)` after a build: learning runs once the index is trained. */
async function learnAfterBuild(li: LiveIndex): Promise<Buffer[]> {
  const name = li.meta.name;
  const notice = (message: string) => NoticeResponse({ severity: 'NOTICE', code: '00000', message });
  if (!li.index.isTrained) return [notice(`winnow: index "${name}" is exact (untrained) for now; it learns its search parameters once it has trained on growth`)];
  const out = [notice(`winnow: learning search parameters of index "${name}" (learn = on)`)];
  try {
    const rep = await learnLiveIndex(li, {}, () => {});
    out.push(notice(rep.installed
      ? `winnow: index "${name}" searches with learnt parameters (validation recall@10 ${rep.validationRecallBefore.toFixed(4)} -> ${rep.validationRecallAfter.toFixed(4)}, ${rep.secondsTotal.toFixed(1)} s)`
      : `winnow: learnt parameters of index "${name}" were not installed: no better on the validation split`));
  } catch (e) {
    out.push(notice(`winnow: learning skipped for index "${name}": ${(e as Error).message}`));
  }
  return out;
}

/** Runs CREATE INDEX … USING winnow|hnsw|ivfflat; returns the frames answering the client. */
export async function createWinnowIndex(ctx: SessionContext, mgr: IndexManager, stmt: Node): Promise<Buffer[]> {
  const s = stmt.IndexStmt;
  const method = String(s.accessMethod).toLowerCase();
  if (ctx.transactionStatus !== 'I') {
    return [err('25001', `CREATE INDEX USING ${method} cannot run inside a transaction block`)];
  }
  if (!s.indexParams || s.indexParams.length !== 1 || !s.indexParams[0].IndexElem?.name) {
    return [err('0A000', `${method} index must be on exactly one vector column`)];
  }
  const includeNames: string[] = [];
  // pgvector's hnsw/ivfflat have no INCLUDE: same error as Postgres gives them (amcaninclude = false).
  if (s.indexIncludingParams?.length && method !== 'winnow') return [err('0A000', `access method "${method}" does not support included columns`)];
  for (const p of s.indexIncludingParams ?? []) {
    const n = p.IndexElem?.name;
    if (!n) return [err('0A000', 'expressions are not supported in included columns')];
    if (includeNames.includes(n)) return [err('42701', `column "${n}" specified more than once`)];
    includeNames.push(n);
  }
  if (s.whereClause) return [err('0A000', 'partial Winnow indexes (WHERE) are not supported yet')];
  if (s.unique) return [err('0A000', `access method "${method}" does not support unique indexes`)];
  const elem = s.indexParams[0].IndexElem;
  const column: string = elem.name;
  const opclass = elem.opclass ? elem.opclass.map((x: Node) => x.String.sval).pop() : 'vector_l2_ops';
  const metric = OPCLASS[opclass];
  if (!metric) return [err('42704', `operator class "${opclass}" does not exist for access method "${method}"`)];
  const options: IndexMeta['options'] = {};
  const given: Record<string, number> = {};
  for (const o of s.options ?? []) {
    const d = o.DefElem;
    const name = String(d.defname).toLowerCase();
    if (method === 'winnow' && name === 'learn') {
      const b = boolOption(d);
      if (b === null) return [err('22023', `invalid value for boolean option "learn": ${String(d.arg?.String?.sval ?? d.arg?.Integer?.ival ?? '')}`)];
      options.learn = b;
      continue;
    }
    const v = intOption(d);
    const allowed = method === 'hnsw' ? ['m', 'ef_construction'] : method === 'ivfflat' ? ['lists'] : ['nlist', 'reduced_dim'];
    if (!allowed.includes(name)) return [err('22023', `unrecognized parameter "${d.defname}"`)];
    if (v === null || v <= 0) return [err('22023', `invalid value for parameter "${d.defname}"`)];
    given[name] = v;
  }
  if (method === 'winnow') {
    if (given.nlist) options.nlist = given.nlist;
    if (given.reduced_dim) {
      if (given.reduced_dim % 4 !== 0 || given.reduced_dim > 512) return [err('22023', 'reduced_dim must be a multiple of 4 and at most 512')];
      options.reducedDim = given.reduced_dim;
    }
  } else if (method === 'ivfflat' && given.lists) options.nlist = given.lists;
  // hnsw's m / ef_construction have no counterpart: the IVF index is sized from the data (README).

  const rel = s.relation;
  const relText = (rel.schemaname ? quoteIdent(rel.schemaname) + '.' : '') + quoteIdent(rel.relname);
  const info = await ctx.query(`SELECT c.oid::bigint AS oid, n.nspname, c.relname, c.relkind::text,
      (SELECT string_agg(a.attname || ':' || a.atttypid::regtype::text, ',') FROM pg_index i JOIN pg_attribute a
         ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = c.oid AND i.indisprimary) AS pk,
      (SELECT t.typname || ':' || t.typelem::regtype::text || ':' || a.atttypmod FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
         WHERE a.attrelid = c.oid AND a.attname = ${quoteLiteral(column)} AND a.attnum > 0 AND NOT a.attisdropped) AS col,
      (SELECT json_agg(json_build_object('name', x.n, 'type', t.typname) ORDER BY x.o)::text
         FROM unnest(${quoteLiteral('{' + includeNames.map((n) => '"' + n.replace(/["\\]/g, (ch) => '\\' + ch) + '"').join(',') + '}')}::text[]) WITH ORDINALITY x(n, o)
         LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = x.n AND a.attnum > 0 AND NOT a.attisdropped
         LEFT JOIN pg_type t ON t.oid = a.atttypid) AS inc
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(${quoteLiteral(relText)})`);
  if (info.error) return [ErrorResponse(info.error)];
  if (info.rows.length === 0) return [err('42P01', `relation "${rel.schemaname ? rel.schemaname + '.' : ''}${rel.relname}" does not exist`)];
  const [oid, schema, table, relkind, pk, col, incText] = info.rows[0] as string[];
  if (relkind !== 'r') return [err('42809', `"${table}" is not a table`)];
  if (!col) return [err('42703', `column "${column}" does not exist`)];
  const [typname, elem2, typmodText] = col.split(':');
  if (typname !== 'vector' || elem2 !== 'real') return [err('42704', `data type ${typname} has no default operator class for access method "${method}"`, { hint: 'Winnow indexes support vector columns.' })];
  const dim = Number(typmodText);
  if (!(dim > 0)) return [err('22000', 'column does not have dimensions')];
  const keys = pk ? pk.split(',') : [];
  if (keys.length !== 1 || !/:(bigint|integer|smallint)$/.test(keys[0])) {
    return [err('0A000', `Winnow index on "${table}" requires a single-column integer primary key`, {
      detail: keys.length ? `The primary key is (${keys.map((k) => k.split(':')[0]).join(', ')}).` : 'The table has no primary key.',
      hint: 'Add a bigint or integer PRIMARY KEY column: it is the row id the index returns.',
    })];
  }
  const keyColumn = keys[0].split(':')[0];
  const include: IncludeColumn[] = incText ? JSON.parse(incText) : [];
  for (const c of include) {
    if (!c.type) return [err('42703', `column "${c.name}" does not exist`)];
    if (!INCLUDE_TYPES.has(c.type)) {
      return [err('0A000', `INCLUDE column "${c.name}" has type ${c.type}, which Winnow indexes cannot include`, {
        hint: 'Supported: text, varchar, char, name, smallint, integer, bigint, real, double precision, numeric, boolean.',
      })];
    }
  }
  const name: string = s.idxname ?? `${table}_${column}_idx`.slice(0, 63);

  const incList = include.length ? ` INCLUDE (${include.map((c) => quoteIdent(c.name)).join(', ')})` : '';
  const placeholder = await ctx.query(`CREATE INDEX ${s.if_not_exists ? 'IF NOT EXISTS ' : ''}${quoteIdent(name)} ON ${quoteIdent(schema)}.${quoteIdent(table)} (${quoteIdent(keyColumn)})${incList} WHERE false`);
  if (placeholder.error) return [ErrorResponse(placeholder.error)];
  const meta: IndexMeta = { name, schema, table, relid: Number(oid), column, keyColumn, metric, accessMethod: method, options, dim, include };
  const db = await mgr.forDatabase(ctx.params.user, ctx.params.database ?? ctx.params.user);
  // An index of that name on a table that no longer exists (DROP TABLE not yet seen by the poller) is forgotten first.
  if (db.indexes.get(db.key(schema, name))?.meta.relid !== undefined && db.indexes.get(db.key(schema, name))!.meta.relid !== Number(oid)) await db.forgetDroppedTables();
  if (db.indexes.has(db.key(schema, name))) {
    // IF NOT EXISTS on an existing Winnow index: Postgres already sent its NOTICE.
    return [CommandComplete('CREATE INDEX')];
  }
  const ins = await ctx.query(`INSERT INTO winnow.indexes (name, schema_name, table_name, relid, column_name, key_column, metric, access_method, options, dim${include.length ? ', include_columns' : ''})
    VALUES (${quoteLiteral(name)}, ${quoteLiteral(schema)}, ${quoteLiteral(table)}, ${oid}, ${quoteLiteral(column)}, ${quoteLiteral(keyColumn)}, '${metric}', '${method}', ${quoteLiteral(JSON.stringify(options))}, ${dim}${include.length ? `, ${quoteLiteral(JSON.stringify(include))}` : ''})`);
  if (ins.error) {
    await ctx.query(`DROP INDEX IF EXISTS ${quoteIdent(schema)}.${quoteIdent(name)}`);
    return [ErrorResponse(ins.error)];
  }
  const notices: Buffer[] = [];
  let built: LiveIndex;
  try {
    let lastPct = -1;
    built = await db.build(meta, (p) => {
      const pct = p.total ? Math.floor((100 * p.done) / p.total / 25) * 25 : 100;
      if (p.phase === 'scanning table' && pct !== lastPct) {
        lastPct = pct;
        notices.push(NoticeResponse({ severity: 'NOTICE', code: '00000', message: `winnow: building index "${name}": ${p.done} of ${p.total} rows` }));
      } else if (p.phase === 'training') {
        notices.push(NoticeResponse({ severity: 'NOTICE', code: '00000', message: `winnow: training index "${name}" on ${p.done} rows` }));
      }
    });
  } catch (e) {
    await ctx.query(`DELETE FROM winnow.indexes WHERE schema_name = ${quoteLiteral(schema)} AND name = ${quoteLiteral(name)}`);
    await ctx.query(`DROP INDEX IF EXISTS ${quoteIdent(schema)}.${quoteIdent(name)}`);
    return [err('XX000', `building Winnow index "${name}" failed: ${(e as Error).message}`)];
  }
  if (options.learn) notices.push(...(await learnAfterBuild(built)));
  return [...notices, CommandComplete('CREATE INDEX')];
}

/** Names in DROP INDEX that are Winnow indexes, resolved to their schema (null when none are). */
export async function winnowIndexesIn(ctx: SessionContext, mgr: IndexManager, stmt: Node): Promise<{ schema: string; name: string }[]> {
  const d = stmt.DropStmt;
  if (!d || d.removeType !== 'OBJECT_INDEX') return [];
  const db = await mgr.forDatabase(ctx.params.user, ctx.params.database ?? ctx.params.user);
  if (db.indexes.size === 0) return [];
  const out: { schema: string; name: string }[] = [];
  for (const o of d.objects ?? []) {
    const parts: string[] = (o.List?.items ?? []).map((x: Node) => x.String?.sval);
    const text = parts.map(quoteIdent).join('.');
    const r = await ctx.query(`SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(${quoteLiteral(text)})`);
    if (r.rows.length && db.indexes.has(db.key(r.rows[0][0]!, r.rows[0][1]!))) out.push({ schema: r.rows[0][0]!, name: r.rows[0][1]! });
  }
  return out;
}

/** DROP INDEX naming at least one Winnow index: Postgres drops the placeholders, then Winnow its indexes. */
export async function dropWinnowIndexes(ctx: SessionContext, mgr: IndexManager, text: string, targets: { schema: string; name: string }[]): Promise<Buffer[]> {
  if (ctx.transactionStatus !== 'I') return [err('25001', 'DROP INDEX of a Winnow index cannot run inside a transaction block')];
  const r = await ctx.query(text);
  if (r.error) return [ErrorResponse(r.error)];
  const db = await mgr.forDatabase(ctx.params.user, ctx.params.database ?? ctx.params.user);
  for (const t of targets) {
    await ctx.query(`DELETE FROM winnow.indexes WHERE schema_name = ${quoteLiteral(t.schema)} AND name = ${quoteLiteral(t.name)}`);
    await db.drop(t.schema, t.name);
  }
  return [CommandComplete('DROP INDEX')];
}

/** The Winnow index an ALTER INDEX … RENAME / REINDEX INDEX names, if any. */
export async function winnowIndexNamed(ctx: SessionContext, mgr: IndexManager, rel: Node | undefined): Promise<{ schema: string; name: string } | null> {
  if (!rel?.relname) return null;
  const db = await mgr.forDatabase(ctx.params.user, ctx.params.database ?? ctx.params.user);
  if (db.indexes.size === 0) return null;
  const text = (rel.schemaname ? quoteIdent(rel.schemaname) + '.' : '') + quoteIdent(rel.relname);
  const r = await ctx.query(`SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(${quoteLiteral(text)})`);
  if (!r.rows.length || !db.indexes.has(db.key(r.rows[0][0]!, r.rows[0][1]!))) return null;
  return { schema: r.rows[0][0]!, name: r.rows[0][1]! };
}

/** ALTER INDEX … RENAME TO of a Winnow index: Postgres renames the placeholder, Winnow its index. */
export async function renameWinnowIndex(ctx: SessionContext, mgr: IndexManager, text: string, t: { schema: string; name: string }, newName: string): Promise<Buffer[]> {
  if (ctx.transactionStatus !== 'I') return [err('25001', 'ALTER INDEX of a Winnow index cannot run inside a transaction block')];
  const r = await ctx.query(text);
  if (r.error) return [ErrorResponse(r.error)];
  await ctx.query(`UPDATE winnow.indexes SET name = ${quoteLiteral(newName)} WHERE schema_name = ${quoteLiteral(t.schema)} AND name = ${quoteLiteral(t.name)}`);
  const db = await mgr.forDatabase(ctx.params.user, ctx.params.database ?? ctx.params.user);
  await db.rename(t.schema, t.name, newName);
  return [CommandComplete('ALTER INDEX')];
}

/** REINDEX INDEX of a Winnow index: Postgres rebuilds the placeholder, Winnow rebuilds from the table. */
export async function reindexWinnowIndex(ctx: SessionContext, mgr: IndexManager, text: string, t: { schema: string; name: string }): Promise<Buffer[]> {
  if (ctx.transactionStatus !== 'I') return [err('25001', 'REINDEX of a Winnow index cannot run inside a transaction block')];
  const r = await ctx.query(text);
  if (r.error) return [ErrorResponse(r.error)];
  const db = await mgr.forDatabase(ctx.params.user, ctx.params.database ?? ctx.params.user);
  await db.rebuild(t.schema, t.name);
  const li = db.indexes.get(db.key(t.schema, t.name));
  return [...(li?.meta.options.learn ? await learnAfterBuild(li) : []), CommandComplete('REINDEX')];
}
