// SELECT winnow.learn('index_name' [, '{"option": value, …}']): learns the index's search-side
// filter parameters (HAKES, native/src/learn/) while searches and inserts continue, streams
// progress as NOTICEs, marks the index for the next snapshot (the learnt params are saved with
// it) and answers one row: the training report as json. Also the after-build hook behind the
// proposed `WITH (learn = on)` index option (learnLiveIndex).
import { CommandComplete, DataRow, ErrorResponse, NoticeResponse, RowDescription } from '../../server/protocol/messages.ts';
import type { SessionContext } from '../../server/session.ts';
import type { IndexManager, LiveIndex } from '../../sync/index-manager.ts';
import { LEARN_DEFAULTS, type LearnOptions, type LearnReport } from '../../native/index.ts';

type Node = Record<string, any>;

export interface LearnCall {
  /** Index name as written (may be schema-qualified; resolved with the session's search_path). */
  index: string;
  /** Optional JSON text with LearnOptions overrides. */
  options: string | null;
}

function stringArg(n: Node | undefined): string | null {
  if (!n) return null;
  if (n.TypeCast) return stringArg(n.TypeCast.arg);
  const s = n.A_Const?.sval?.sval;
  return typeof s === 'string' ? s : null;
}

/**
 * Recognises exactly `SELECT winnow.learn('name')` or `SELECT winnow.learn('name', 'json')` (a
 * lone call, no FROM/WHERE); returns the call, or null for any other statement.
 */
export function isLearnCall(stmt: Node): LearnCall | null {
  const s = stmt?.SelectStmt;
  if (!s || s.fromClause || s.whereClause || s.valuesLists || s.withClause || s.op !== 'SETOP_NONE') return null;
  if (s.targetList?.length !== 1) return null;
  const f = s.targetList[0].ResTarget?.val?.FuncCall;
  const names: string[] | undefined = f?.funcname?.map((x: Node) => x.String?.sval);
  if (!names || names.length !== 2 || names[0] !== 'winnow' || names[1] !== 'learn') return null;
  const args: Node[] = f.args ?? [];
  if (args.length < 1 || args.length > 2 || f.agg_star || f.over) return null;
  const index = stringArg(args[0]);
  if (index === null) return null;
  const options = args.length === 2 ? stringArg(args[1]) : null;
  if (args.length === 2 && options === null) return null;
  return { index, options };
}

class LearnError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

const OPTION_KEYS = new Set(Object.keys(LEARN_DEFAULTS));

/** Parses the JSON options argument; unknown keys and non-objects are errors (22023). */
export function parseLearnOptions(text: string | null): LearnOptions {
  if (text === null) return {};
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    throw new LearnError('22023', 'winnow.learn options must be a JSON object');
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new LearnError('22023', 'winnow.learn options must be a JSON object');
  for (const k of Object.keys(o)) if (!OPTION_KEYS.has(k)) throw new LearnError('22023', `unrecognized winnow.learn option "${k}"`);
  return o as LearnOptions;
}

const running = new WeakSet<LiveIndex>();

/**
 * Learns and installs search params for one live index, marking it for the next snapshot.
 * `note` receives human-readable progress lines (throttled). Used by runLearn and by the
 * after-build hook (`WITH (learn = on)`).
 */
export async function learnLiveIndex(li: LiveIndex, opts: LearnOptions, note: (line: string) => void): Promise<LearnReport> {
  if (!li.ready) throw new LearnError('55000', `index "${li.meta.name}" is still being built`);
  if (!li.index.isTrained) throw new LearnError('55000', `index "${li.meta.name}" is not trained yet (small indexes are exact brute force; nothing to learn)`);
  if (running.has(li)) throw new LearnError('55006', `index "${li.meta.name}" is already learning`);
  running.add(li);
  const index = li.index; // a background rebuild may swap li.index; learn the one we started on
  try {
    let last = '';
    const rep = await index.learn(opts, (phase, done, total, value) => {
      const head = phase.split(' ')[0];
      // One line per phase, plus quarters of the long ones (neighbour search, each training run).
      const key = head === 'reduce' ? phase : `${phase}:${total ? Math.floor((4 * done) / total) : 4}`;
      if (key === last) return;
      last = key;
      const v = value === undefined ? '' : head === 'recenter' || phase === 'validate recall' ? ` recall@10 ${value.toFixed(4)}` : ` loss ${value.toFixed(5)}`;
      note(`${phase}: ${done} of ${total}${v}`);
    });
    if (rep.installed && li.index === index) li.unsaved++; // saved with the next snapshot
    return rep;
  } finally {
    running.delete(li);
  }
}

async function resolve(ctx: SessionContext, mgr: IndexManager, name: string): Promise<LiveIndex> {
  const lit = `'${name.replace(/'/g, "''")}'`;
  const r = await ctx.query(
    `SELECT n.nspname, c.relname, t.relname, pg_catalog.pg_has_role(t.relowner, 'USAGE')
       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid LEFT JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
      WHERE c.oid = pg_catalog.to_regclass(${lit})`,
  );
  if (r.error) throw new LearnError(r.error.code ?? 'XX000', r.error.message ?? 'lookup failed');
  if (!r.rows.length) throw new LearnError('42704', `index "${name}" does not exist`);
  const [schema, relname, table, owner] = r.rows[0];
  const db = await mgr.forDatabase(ctx.params.user, ctx.params.database ?? ctx.params.user);
  const li = db.indexes.get(db.key(schema!, relname!));
  if (!li) throw new LearnError('42809', `"${relname}" is not a Winnow index`);
  // Learning changes how every session's queries are answered: like REINDEX, owners only.
  if (owner !== 't') throw new LearnError('42501', `must be owner of table ${table}`);
  return li;
}

/** Runs SELECT winnow.learn(…): NOTICE progress while it runs, then RowDescription/DataRow/CommandComplete. */
export async function runLearn(ctx: SessionContext, mgr: IndexManager, call: LearnCall | string): Promise<Buffer[]> {
  const c: LearnCall = typeof call === 'string' ? { index: call, options: null } : call;
  try {
    const opts = parseLearnOptions(c.options);
    const li = await resolve(ctx, mgr, c.index);
    const name = li.meta.name;
    const notice = (message: string) => ctx.respond([NoticeResponse({ severity: 'NOTICE', code: '00000', message })]);
    notice(`winnow: learning search parameters of index "${name}" (${li.index.size} rows)`);
    const rep = await learnLiveIndex(li, opts, (line) => notice(`winnow: learning "${name}": ${line}`));
    notice(
      rep.installed
        ? `winnow: index "${name}" now searches with learnt parameters (validation recall@10 ${rep.validationRecallBefore.toFixed(4)} -> ${rep.validationRecallAfter.toFixed(4)}, ${rep.secondsTotal.toFixed(1)} s)`
        : `winnow: learnt parameters of index "${name}" were not installed: they did not improve on the validation split (recall@10 ${rep.validationRecallBefore.toFixed(4)} vs ${rep.validationRecallAfter.toFixed(4)})`,
    );
    return [
      RowDescription([{ name: 'learn', typeOid: 114 /* json */, typeSize: -1, typeModifier: -1, format: 0 }]),
      DataRow([JSON.stringify(rep)]),
      CommandComplete('SELECT 1'),
    ];
  } catch (e) {
    if (e instanceof LearnError) return [ErrorResponse({ severity: 'ERROR', code: e.code, message: e.message })];
    return [ErrorResponse({ severity: 'ERROR', code: 'XX000', message: `winnow.learn failed: ${(e as Error).message}` })];
  }
}
