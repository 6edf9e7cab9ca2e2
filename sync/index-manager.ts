// Owns the native indexes of one Winnow process and keeps them equal to their tables.
//
// Per database: one connection of Winnow's own (the first user who touched an index there; it needs
// REPLICATION or superuser), a logical replication slot `winnow_<db>` with the pgoutput plugin and a
// publication `winnow_indexed` listing every table that has a Winnow index. The slot is polled over
// SQL with pg_logical_slot_peek_binary_changes(slot, upto, …): Postgres decodes committed
// transactions only, in commit order, so rolled-back changes never arrive and out-of-order commits
// arrive in the order they became visible. Each change is a row-state assignment (upsert id→vector,
// or delete id), so replaying a suffix of the history that starts before an index's build snapshot
// converges to the table's state: builds never miss a change and duplicates are harmless.
// "peek" leaves confirmed_flush_lsn where it is; the slot is advanced explicitly
// (pg_replication_slot_advance) only up to what every ready index has applied, never past an index
// still building. See sync/README.md.
import { mkdir, open, readFile, rename, writeFile, rm } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import type { Logger } from 'pino';
import { VectorIndex, type Metric } from '../native/index.ts';
import { decodeFloat4Array, decodeKey, decodePgOutput, lsnToBigInt, bigIntToLsn, type TupleValue } from './pgoutput.ts';
import { quoteIdent, quoteLiteral } from '../sql/quote.ts';
import type { InternalResult } from '../server/backend.ts';
import { applyMigrations } from '../sql/migrations.ts';
import { IncludeStore, decodeIncludeBinary, parseIncludeText, type IncludeColumn, type IncludeValue } from './include-store.ts';

export const PUBLICATION = 'winnow_indexed';
/** Below this many rows an index is not trained: searches are exact brute force (measured, see README). */
export const TRAIN_THRESHOLD = 10_000;
/** A trained index is rebuilt (retrained) in the background once it holds more than this × the rows it was trained on. */
export const RETRAIN_GROWTH = 4;
/** Training sample: at most this many rows (and at most 5e7 floats), drawn uniformly from the table. */
export const TRAIN_SAMPLE_MAX = 100_000;
/** After a failed background (re)build, wait this long before trying again. */
const RETRAIN_BACKOFF_MS = 60_000;

export interface IndexMeta {
  name: string;
  schema: string;
  table: string;
  relid: number;
  column: string;
  keyColumn: string;
  metric: Metric;
  accessMethod: string;
  /** learn: run winnow.learn() after each build of the index (`WITH (learn = on)`). */
  options: { nlist?: number; reducedDim?: number; learn?: boolean };
  dim: number;
  /** INCLUDE columns, mirrored in LiveIndex.includes (absent or empty: none). */
  include?: IncludeColumn[];
}

export interface BuildProgress {
  phase: 'scanning table' | 'training' | 'done';
  done: number;
  total: number;
}

/** What a build is, in winnow.index_progress (pg_stat_progress_create_index's `command`). */
export type BuildCommand = 'CREATE INDEX' | 'REINDEX' | 'REBUILD' | 'TRAIN' | 'RETRAIN';

/**
 * Per id, the last state of a row in a batch of changes: vec = new vector, null = not in the index,
 * undefined = vector unchanged (an UPDATE that left a TOASTed vector alone); inc = INCLUDE values
 * (undefined = unchanged).
 */
type Entry = { vec: Float32Array | null | undefined; inc: (IncludeValue | undefined)[] | null };
type Pending = { upserts: Map<bigint, Entry>; truncated: boolean };
const DELETED: Entry = { vec: null, inc: null };

function mergeInc(prev: Entry['inc'], cur: Entry['inc']): Entry['inc'] {
  return !cur ? prev : !prev ? cur : cur.map((v, i) => (v === undefined ? prev[i] : v));
}

/** `next` happened after `prev` for the same id: the combined state. */
function mergeEntry(prev: Entry | undefined, next: Entry): Entry {
  if (next.vec !== undefined) return { vec: next.vec, inc: next.vec === null ? null : mergeInc(prev?.inc ?? null, next.inc) };
  // Vector unchanged: keep the pending one (or, after a pending delete, what the index has).
  return { vec: prev ? (prev.vec === null ? undefined : prev.vec) : undefined, inc: mergeInc(prev?.inc ?? null, next.inc) };
}

export class LiveIndex {
  index: VectorIndex;
  ready = false;
  /** Highest commit LSN applied (transactions at or below it are skipped when re-delivered). */
  lastCommit = 0n;
  progress: BuildProgress = { phase: 'scanning table', done: 0, total: 0 };
  /** Changes applied since the last snapshot; LSN the last snapshot includes (0 = none). */
  unsaved = 0;
  savedLsn = 0n;
  savedAt = 0;
  /** How the index came to be at start: 'built', 'snapshot', or why a snapshot was not used. */
  origin = 'built';
  /** Key, vector and INCLUDE column positions in the table's pgoutput Relation message. */
  cols: { key: number; vec: number; inc: number[] } | null = null;
  /** Column numbers of key, vector and INCLUDE columns (IndexManager.followColumns), once learned. */
  attnums: number[] | null = null;
  /** Values of the INCLUDE columns for every row in the index (null: the index has no INCLUDE columns). */
  includes: IncludeStore | null;
  /** Rows the index held when it was trained (0: untrained). */
  trainedRows = 0;
  /** The last learning run after training (`learn = on`), for status and tests. */
  lastLearn: { installed: boolean; at: number } | null = null;
  /** Background rebuild (train on growth / retrain) in progress: swapped in once it has caught up. */
  shadow: LiveIndex | null = null;
  /** When the last background rebuild failed (ms epoch; retried after RETRAIN_BACKOFF_MS). */
  shadowFailedAt = 0;
  /**
   * First training in place (the untrained index holds every row; train() encodes them): while it
   * runs the native index cannot take writes, so changes collect here and are applied when it ends.
   */
  backlog: Pending | null = null;
  /**
   * processedLsn when the first change went into the backlog (null: none yet): read-your-writes
   * waits beyond it until the backlog is applied. Without changes to the table, training blocks nothing.
   */
  trainCapLsn: bigint | null = null;
  /** The in-place training finished (true) or failed (an Error); the next poll applies the backlog. */
  trainResult: true | Error | null = null;
  constructor(public meta: IndexMeta, withIncludes = true) {
    this.index = newIndex(meta);
    this.includes = withIncludes && meta.include?.length ? new IncludeStore(meta.include) : null;
  }
}

function newIndex(meta: IndexMeta, nlist?: number): VectorIndex {
  return new VectorIndex({ dim: meta.dim, metric: meta.metric, nlist: meta.options.nlist ?? nlist, reducedDim: meta.options.reducedDim });
}

/** IVF lists for a table of `rows` trained on `sample` rows: the native default (0.75·√n, ≤ sample/39), with n the table size. */
export function nlistFor(rows: number, sample: number): number {
  return Math.max(1, Math.min(Math.floor(sample / 39), Math.round(0.75 * Math.sqrt(rows))));
}

export interface ManagerOptions {
  /** pg connection settings for Winnow's own connection to `database` as `user`. */
  connection: (user: string, database: string) => pg.ClientConfig;
  log: Logger;
  /** Background poll period when nobody waits (ms). */
  pollIntervalMs?: number;
  /** Where index snapshots live (<dir>/<database>/<schema>.<index>/); none = rebuild at every start. */
  dataDir?: string;
  /** Minimum time between snapshots of a changed index (ms). Default 30 s. */
  snapshotIntervalMs?: number;
  /** Most rows a training sample holds (TRAIN_SAMPLE_MAX; tests make it small to train big tables from small samples). */
  trainSampleMax?: number;
}

/** A poll applies what it has decoded at least every this many messages (bounds memory for huge transactions). */
const FLUSH_EVERY = 50_000;

/** A changed index is saved early after this many applied changes (bounds WAL redecoded per poll). */
export const SNAPSHOT_AFTER_CHANGES = 5000;

/** Bumped when the snapshot layout or meaning changes: other versions are rebuilt. */
export const SNAPSHOT_FORMAT = 1;

/** DatabaseIndexes.status() / IndexManager.status(): the sync's replication lag and health. */
export interface SyncStatus {
  database: string;
  slot: string;
  indexes: number;
  /** pg_current_wal_lsn() when status() ran (while a poll runs: the position it decodes up to). */
  walLsn: string;
  /** Every transaction committed before this LSN is in every ready index. */
  appliedLsn: string;
  /** walLsn − appliedLsn: WAL not yet applied (includes WAL of tables without indexes). */
  lagBytes: number;
  msSinceLastPoll: number | null;
  backgroundRebuilds: number;
  lastError: string | null;
  snapshotErrors: number;
}

export class IndexManager {
  private dbs = new Map<string, Promise<DatabaseIndexes>>();
  constructor(private opts: ManagerOptions) {}

  /** status() of every database whose indexes are loaded (databases that fail to answer are left out). */
  async status(): Promise<SyncStatus[]> {
    const out: SyncStatus[] = [];
    for (const p of [...this.dbs.values()]) {
      const st = await p.then((d) => d.status()).catch(() => null);
      if (st) out.push(st);
    }
    return out;
  }

  /** The database's index set, loading (and building) its indexes on first use. */
  forDatabase(user: string, database: string): Promise<DatabaseIndexes> {
    let p = this.dbs.get(database);
    if (!p) {
      p = (async () => {
        const d = new DatabaseIndexes(database, () => this.opts.connection(user, database), this.opts.log, this.opts.pollIntervalMs ?? 200,
          this.opts.dataDir ? path.join(this.opts.dataDir, safeName(database)) : null, this.opts.snapshotIntervalMs ?? 30_000, this.opts.trainSampleMax ?? TRAIN_SAMPLE_MAX);
        await d.open();
        return d;
      })();
      p.catch(() => this.dbs.delete(database));
      this.dbs.set(database, p);
    }
    return p;
  }

  async close(): Promise<void> {
    const all = [...this.dbs.values()];
    this.dbs.clear();
    await Promise.all(all.map((p) => p.then((d) => d.close(), () => {})));
  }
}

/**
 * pgvector does not index zero vectors under cosine (they have no direction; its distance is NaN), and the
 * native index rejects them: such rows are left out of the index, as in pgvector.
 */
export function isIndexable(metric: Metric, v: Float32Array, offset = 0, dim = v.length): boolean {
  if (metric !== 'cos') return true;
  for (let i = offset; i < offset + dim; i++) if (v[i] !== 0) return true;
  return false;
}

/** Temp file, fsync, rename (like VectorIndex.save): the old file stays whole if anything fails. */
async function writeFileDurable(file: string, data: Buffer): Promise<void> {
  const tmp = file + '.tmp';
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
}

function safeName(s: string): string {
  return encodeURIComponent(s).replace(/\./g, '%2E');
}

export function slotName(database: string): string {
  return ('winnow_' + database.toLowerCase().replace(/[^a-z0-9_]/g, '_')).slice(0, 63);
}

export class DatabaseIndexes {
  readonly indexes = new Map<string, LiveIndex>();
  readonly slot: string;
  private client!: pg.Client;
  private relations = new Map<number, { schema: string; name: string; columns: string[] }>();
  /** Every transaction committed before this LSN has been applied to every ready index. */
  processedLsn = 0n;
  private waiters: { lsn: bigint; resolve: () => void; reject: (e: Error) => void }[] = [];
  private polling: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private lastError: Error | null = null;
  /** Changes applied since start (metric). */
  applied = 0;
  lastPollAt = 0;

  constructor(readonly database: string, private config: () => pg.ClientConfig, private log: Logger, private intervalMs: number,
    private snapshotRoot: string | null, private snapshotIntervalMs: number, private trainSampleMax = TRAIN_SAMPLE_MAX) {
    this.slot = slotName(database);
  }

  /** Rows of a training sample: at most trainSampleMax, and at most 50 M floats. */
  private sampleMax(meta: IndexMeta): number {
    return Math.min(this.trainSampleMax, Math.floor(5e7 / meta.dim));
  }

  snapshotDir(meta: IndexMeta): string | null {
    return this.snapshotRoot ? path.join(this.snapshotRoot, `${safeName(meta.schema)}.${safeName(meta.name)}`) : null;
  }

  /** Loads a snapshot if it is usable: same definition and format, and the slot has not moved past it. */
  private async loadSnapshot(meta: IndexMeta, confirmed: bigint | null): Promise<LiveIndex | string> {
    const dir = this.snapshotDir(meta);
    if (!dir) return 'no data directory';
    let state: { format: number; meta: IndexMeta; lsn: string; trainedRows?: number };
    try {
      state = JSON.parse(await readFile(path.join(dir, 'state.json'), 'utf8'));
    } catch {
      return 'no snapshot';
    }
    if (state.format !== SNAPSHOT_FORMAT) return `snapshot format ${state.format}, expected ${SNAPSHOT_FORMAT}`;
    const m = state.meta;
    if (m.relid !== meta.relid || m.dim !== meta.dim || m.metric !== meta.metric || m.column !== meta.column || m.keyColumn !== meta.keyColumn
      || JSON.stringify(m.include ?? []) !== JSON.stringify(meta.include ?? [])) return 'snapshot of another index definition';
    const lsn = BigInt(state.lsn);
    if (confirmed === null) return 'replication slot missing';
    if (confirmed > lsn) return 'replication slot is past the snapshot';
    let index: VectorIndex;
    try {
      index = await VectorIndex.load(dir);
    } catch (err) {
      return `snapshot unreadable: ${(err as Error).message}`;
    }
    if (index.stats().dim !== meta.dim) return 'snapshot dimension mismatch';
    let includes: IncludeStore | null = null;
    if (meta.include?.length) {
      try {
        includes = IncludeStore.deserialize(await readFile(path.join(dir, 'includes.bin')), meta.include);
      } catch (err) {
        return `INCLUDE columns unreadable: ${(err as Error).message}`;
      }
      if (includes.size !== index.size) return 'INCLUDE columns and index disagree';
    }
    const li = new LiveIndex(meta);
    li.index = index;
    li.includes = includes;
    li.trainedRows = index.isTrained ? (state.trainedRows ?? index.size) : 0;
    li.lastCommit = lsn - 1n;
    li.savedLsn = lsn;
    li.savedAt = Date.now();
    li.ready = true;
    li.origin = 'snapshot';
    return li;
  }

  /** Saves one index: index file first (atomic), then state.json with the LSN it includes. */
  private async save(li: LiveIndex): Promise<void> {
    const dir = this.snapshotDir(li.meta);
    if (!dir) return;
    const lsn = this.processedLsn;
    const changed = li.unsaved;
    await mkdir(dir, { recursive: true });
    if (changed > 0 || li.savedLsn === 0n) {
      await li.index.save(dir);
      if (li.includes) await writeFileDurable(path.join(dir, 'includes.bin'), li.includes.serialize());
    }
    const tmp = path.join(dir, 'state.json.tmp');
    await writeFile(tmp, JSON.stringify({ format: SNAPSHOT_FORMAT, meta: li.meta, lsn: lsn.toString(), rows: li.index.size, trainedRows: li.trainedRows, savedAt: new Date().toISOString() }));
    await rename(tmp, path.join(dir, 'state.json'));
    li.unsaved -= changed;
    li.savedLsn = lsn;
    li.savedAt = Date.now();
  }

  /** Saves indexes whose snapshot is due (force: all, e.g. at shutdown). Failures keep the previous snapshot. */
  async saveDue(force = false): Promise<void> {
    if (!this.snapshotRoot) return;
    for (const li of this.indexes.values()) {
      if (!li.ready || li.backlog) continue; // training in place: saved once its backlog is applied
      // Due: the interval passed with changes; many changes (each poll redecodes WAL since the
      // oldest snapshot, so keep that short); or only the LSN moved (cheap: state.json only).
      const age = Date.now() - li.savedAt;
      const due = force || li.savedLsn === 0n
        // (Early: after SNAPSHOT_AFTER_CHANGES changes, or a quarter of the index's size when larger — a
        // save writes the whole index, so a bulk load in many transactions must not save at every poll.)
        || (li.unsaved > 0 && (age >= this.snapshotIntervalMs || li.unsaved >= Math.max(SNAPSHOT_AFTER_CHANGES, li.index.size / 4)))
        || (li.unsaved === 0 && li.savedLsn < this.processedLsn && age >= Math.min(1000, this.snapshotIntervalMs));
      if (!due) continue;
      try {
        await this.save(li);
      } catch (err) {
        this.saveErrors++;
        this.lastSaveError = (err as Error).message;
        this.log.warn({ err, index: li.meta.name }, 'winnow: saving index snapshot failed; the previous snapshot stays valid');
      }
    }
  }

  saveErrors = 0;
  lastSaveError: string | null = null;

  async open(): Promise<void> {
    this.client = await this.connect();
    const { rows } = await this.client.query(`SELECT to_regclass('winnow.indexes') IS NOT NULL AS ok`);
    if (rows[0].ok) {
      // Winnow's objects are installed in this database: bring them up to date (migrations after the
      // one that created winnow.indexes: INCLUDE columns, build progress), as CREATE EXTENSION would.
      try {
        const applied = await applyMigrations((sql) => this.client.query(sql));
        if (applied.length) this.log.info({ database: this.database, applied }, 'winnow: applied pending migrations');
      } catch (err) {
        // E.g. a role without the right to alter Winnow's objects: indexes still work, INCLUDE columns
        // and build progress need the migration (CREATE EXTENSION vector by a superuser applies it).
        this.log.warn({ err, database: this.database }, 'winnow: pending migrations could not be applied');
      }
      this.progressTable = (await this.client.query(`SELECT to_regclass('winnow.index_build_progress') IS NOT NULL AS t`)).rows[0].t;
      const metas = await this.client.query(`SELECT i.*, EXISTS (SELECT FROM pg_class c WHERE c.oid = i.relid) AS table_exists FROM winnow.indexes i ORDER BY created_at`);
      const slot = await this.client.query(`SELECT confirmed_flush_lsn::text AS c FROM pg_replication_slots WHERE slot_name = $1`, [this.slot]);
      const confirmed = slot.rows.length && slot.rows[0].c ? lsnToBigInt(slot.rows[0].c) : null;
      for (const r of metas.rows) {
        const meta: IndexMeta = {
          name: r.name, schema: r.schema_name, table: r.table_name, relid: Number(r.relid), column: r.column_name,
          keyColumn: r.key_column, metric: r.metric, accessMethod: r.access_method, options: r.options ?? {}, dim: r.dim,
          include: r.include_columns ?? [],
        };
        if (!r.table_exists) {
          // DROP TABLE while Winnow was not running: forget the index (row, snapshot files).
          await this.forget(meta);
          continue;
        }
        const snap = await this.loadSnapshot(meta, confirmed);
        if (typeof snap !== 'string') {
          this.indexes.set(this.key(meta.schema, meta.name), snap);
          this.log.info({ index: meta.name, rows: snap.index.size, lsn: bigIntToLsn(snap.savedLsn) }, 'winnow: index loaded from snapshot');
          continue;
        }
        this.log.info({ index: meta.name, reason: snap }, 'winnow: rebuilding index from its table');
        const li = await this.build(meta, (p) => this.log.info({ index: meta.name, ...p }, 'winnow: rebuild progress'), 'REBUILD');
        li.origin = `rebuilt (${snap})`;
      }
      if (this.indexes.size) {
        await this.ensureSlot();
        await this.waitFor(await this.currentLsn());
      } else {
        await this.dropSlot();
      }
    }
    this.schedule();
  }

  private async connect(applicationName = 'winnow-sync'): Promise<pg.Client> {
    const c = new pg.Client({ ...this.config(), application_name: applicationName });
    c.on('error', (err) => this.log.warn({ err }, 'winnow sync connection error'));
    await c.connect();
    return c;
  }

  key(schema: string, name: string): string {
    return `${schema}.${name}`;
  }

  /** The ready index on relid.column for this metric, if any. */
  find(relid: number, column: string, metric: Metric): LiveIndex | undefined {
    for (const li of this.indexes.values()) {
      if (li.ready && li.meta.relid === relid && li.meta.column === column && li.meta.metric === metric) return li;
    }
    return undefined;
  }

  /**
   * By name, for the extended protocol where no internal query can run at Parse/Bind: an
   * unqualified table name matches an indexed table of that name in any schema ('public' first).
   */
  findByName(schema: string | undefined, table: string, column: string, metric: Metric): LiveIndex | undefined {
    let best: LiveIndex | undefined;
    for (const li of this.indexes.values()) {
      const m = li.meta;
      if (!li.ready || m.table !== table || m.column !== column || m.metric !== metric) continue;
      if (schema ? m.schema === schema : !best || m.schema === 'public') best = li;
    }
    return best;
  }

  /** pg_current_wal_lsn() read on Winnow's own connection (≥ every commit already acknowledged). */
  async currentLsn(): Promise<bigint> {
    const { rows } = await this.query('SELECT pg_current_wal_lsn()::text AS l');
    return lsnToBigInt(rows[0].l);
  }

  /**
   * A session's read-only planner query (a pre/post filter, a selectivity estimate) while its own
   * connection is inside the client's extended-protocol batch: here, as `role`, with the session's
   * reported `settings` (TimeZone, DateStyle, …), all SET LOCAL in the statement's one implicit
   * transaction so nothing outlives it. Results as text, like Session.query().
   */
  async queryAs(role: string, settings: ReadonlyMap<string, string>, text: string): Promise<InternalResult> {
    const sets = [...settings].map(([k, v]) => `SET LOCAL ${quoteIdent(k)} TO ${quoteLiteral(v)}`);
    sets.push(`SET LOCAL ROLE ${quoteIdent(role)}`);
    // On a connection of their own: a long pre-filter must not hold up the polls (replication lag)
    // on the sync connection. Opened at the first side query; queries queue on it.
    const side = this.sideClient ??= this.connect('winnow-side-queries');
    try {
      const client = await side;
      const r = await client.query({ text: `${sets.join('; ')}; ${text}`, rowMode: 'array', types: { getTypeParser: () => (v: string) => v } } as pg.QueryArrayConfig);
      const last = (Array.isArray(r) ? r[r.length - 1] : r) as pg.QueryArrayResult<(string | null)[]>;
      return { fields: [], rows: last.rows, commandTags: [] };
    } catch (err) {
      const e = err as { code?: string; message: string; severity?: string };
      if (!e.code && this.sideClient === side) {
        // Not an SQL error: the connection failed (or never opened). The next side query opens another.
        this.sideClient = null;
        void side.then((c) => c.end()).catch(() => {});
      }
      return { fields: [], rows: [], commandTags: [], error: { severity: e.severity ?? 'ERROR', code: e.code ?? '08006', message: e.message } };
    }
  }

  /** A query on the sync connection; a broken connection is replaced and the query retried once. */
  private async query(text: string, values?: unknown[]): Promise<pg.QueryResult> {
    try {
      return await this.client.query(text, values);
    } catch (err) {
      if ((err as { code?: string }).code) throw err; // an SQL error, not a connection failure
      await this.reconnect();
      return this.client.query(text, values);
    }
  }

  /**
   * currentLsn(), whether the table has row-level security enabled and whether `role` may SELECT from
   * it (table-level privilege; false when not given), in one round trip.
   */
  async currentLsnAndRls(relid: number, role?: string): Promise<{ lsn: bigint; rls: boolean; canSelect: boolean }> {
    const { rows } = await this.query(`SELECT pg_current_wal_lsn()::text AS l, (SELECT relrowsecurity FROM pg_class WHERE oid = $1) AS r,
      CASE WHEN $2::text IS NULL THEN false ELSE (SELECT has_table_privilege(r.oid, $1::oid, 'SELECT') FROM pg_roles r WHERE r.rolname = $2::text) END AS s`, [relid, role ?? null]);
    return { lsn: lsnToBigInt(rows[0].l), rls: rows[0].r === true, canSelect: rows[0].s === true };
  }

  hasTable(relid: number): boolean {
    for (const li of this.indexes.values()) if (li.meta.relid === relid) return true;
    return false;
  }

  /**
   * Builds (or rebuilds) an index from its table. The slot and publication exist before the scan's
   * snapshot is taken, and the index is registered (holding back the slot) before it, so every
   * transaction committing after the snapshot is re-delivered by the next poll.
   */
  async build(meta: IndexMeta, onProgress?: (p: BuildProgress) => void, command: BuildCommand = 'CREATE INDEX'): Promise<LiveIndex> {
    await this.ensurePublication(meta);
    await this.ensureSlot();
    const li = new LiveIndex(meta);
    const k = this.key(meta.schema, meta.name);
    const previous = this.indexes.get(k);
    if (previous) previous.shadow = null;
    this.indexes.set(k, li);
    try {
      await this.scan(li, command, onProgress);
    } catch (err) {
      if (this.indexes.get(k) === li) this.indexes.delete(k);
      throw err;
    }
    li.ready = true;
    // Catch up with everything committed since the snapshot before the index serves queries.
    const { rows } = await this.client.query('SELECT pg_current_wal_lsn()::text AS l');
    await this.waitFor(lsnToBigInt(rows[0].l));
    return li;
  }

  /**
   * Reads the table in one REPEATABLE READ snapshot on a connection of its own (other sessions keep
   * reading and writing) into li.index and li.includes, and trains the index when it holds at least
   * TRAIN_THRESHOLD rows: on a uniform sample of at most TRAIN_SAMPLE_MAX rows, with nlist chosen from
   * the table's size. Progress goes to winnow.index_progress (at most once a second) and onProgress.
   */
  private async scan(li: LiveIndex, command: BuildCommand, onProgress?: (p: BuildProgress) => void): Promise<void> {
    const meta = li.meta;
    const c = await this.connect();
    let pid = 0;
    const report = (force: boolean) => {
      onProgress?.(li.progress);
      this.writeProgress(meta, { pid, command, progress: li.progress, blocks }, force);
    };
    let blocks = 0;
    try {
      const who = (await c.query(`SELECT pg_backend_pid() AS p, to_regclass('winnow.index_build_progress') IS NOT NULL AS t`)).rows[0];
      pid = who.p;
      this.progressTable = who.t; // CREATE EXTENSION may have run since open()
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const tbl = `${quoteIdent(meta.schema)}.${quoteIdent(meta.table)}`;
      const keyCol = quoteIdent(meta.keyColumn);
      const vecCol = quoteIdent(meta.column);
      const head = (await c.query(`SELECT count(*)::bigint AS n, (pg_relation_size('${tbl.replace(/'/g, "''")}') / current_setting('block_size')::int)::bigint AS b
        FROM ${tbl} WHERE ${vecCol} IS NOT NULL`)).rows[0];
      const total = Number(head.n);
      blocks = Number(head.b);
      li.progress = { phase: 'scanning table', done: 0, total };
      report(true);
      const sampleMax = this.sampleMax(meta);
      const sampleP = total <= sampleMax ? 1 : sampleMax / total;
      // nlist from the table's size (only when it will be trained: an untrained index reports nlist 0).
      li.index = newIndex(meta, total >= TRAIN_THRESHOLD ? nlistFor(total, Math.min(total, sampleMax)) : undefined);
      li.includes?.clear();
      const inc = meta.include ?? [];
      const incSel = inc.map((x) => `, ${quoteIdent(x.name)}`).join('');
      let last: bigint | null = null;
      const batch = 5000;
      const sample: Float32Array[] = [];
      let sampleRows = 0;
      let indexed = 0;
      for (;;) {
        const r: pg.QueryResult = await c.query({
          text: `SELECT ${keyCol}::bigint::text AS k, encode(array_send(${vecCol}::real[]), 'hex') AS v${incSel} FROM ${tbl} WHERE ${vecCol} IS NOT NULL${last === null ? '' : ` AND ${keyCol} > $1`} ORDER BY ${keyCol} LIMIT ${batch}`,
          values: last === null ? [] : [last.toString()],
          rowMode: 'array',
          types: { getTypeParser: () => (v: string) => v },
        } as pg.QueryConfig);
        const n: number = r.rows.length;
        if (n === 0) break;
        if (this.closed) throw new Error('winnow index sync is closed');
        const ids = new BigInt64Array(n);
        const vecs = new Float32Array(n * meta.dim);
        let kept = 0;
        const incVals = new Array<IncludeValue>(inc.length);
        for (let i = 0; i < n; i++) {
          const row = r.rows[i] as unknown as (string | null)[];
          const id = BigInt(row[0]!);
          last = id;
          const { dim } = decodeFloat4Array(Buffer.from(row[1]!, 'hex'), vecs, kept * meta.dim);
          if (dim !== meta.dim) throw new Error(`row ${id} has ${dim} dimensions, index expects ${meta.dim}`);
          if (!isIndexable(meta.metric, vecs, kept * meta.dim, meta.dim)) continue;
          if (li.includes) {
            for (let j = 0; j < inc.length; j++) incVals[j] = parseIncludeText(inc[j].type, row[2 + j]);
            li.includes.set(id, incVals);
          }
          if (sampleP >= 1 || Math.random() < sampleP) {
            sample.push(vecs.slice(kept * meta.dim, (kept + 1) * meta.dim));
            sampleRows++;
          }
          ids[kept++] = id;
        }
        if (kept > 0) await li.index.add(ids.subarray(0, kept), vecs.subarray(0, kept * meta.dim));
        indexed += kept;
        li.progress = { phase: 'scanning table', done: li.progress.done + n, total };
        report(false);
        if (n < batch) break;
      }
      await c.query('COMMIT');
      if (indexed >= TRAIN_THRESHOLD && sampleRows >= nlistFor(total, Math.min(total, sampleMax))) {
        li.progress = { phase: 'training', done: li.progress.done, total };
        report(true);
        const all = new Float32Array(sampleRows * meta.dim);
        sample.forEach((v, i) => all.set(v, i * meta.dim));
        sample.length = 0;
        await li.index.train(all);
        li.trainedRows = li.index.size;
      }
      li.progress = { phase: 'done', done: li.progress.done, total };
      onProgress?.(li.progress);
    } finally {
      await c.end().catch(() => {});
      this.writeProgress(meta, null, true);
    }
  }

  /** Whether winnow.index_build_progress exists here (checked at open, after migrations). */
  private progressTable = false;
  private progressChain: Promise<unknown> = Promise.resolve();
  private progressAt = new Map<string, number>();

  /**
   * Upserts (row) or deletes (null) the build's row in winnow.index_build_progress on the sync
   * connection, at most once a second unless forced (phase changes, start, end). Failures are ignored:
   * progress is informational.
   */
  private writeProgress(meta: IndexMeta, row: { pid: number; command: BuildCommand; progress: BuildProgress; blocks: number } | null, force: boolean): void {
    if (!this.progressTable) return;
    const k = this.key(meta.schema, meta.name);
    const now = Date.now();
    if (!force && now - (this.progressAt.get(k) ?? 0) < 1000) return;
    if (row) this.progressAt.set(k, now);
    else this.progressAt.delete(k);
    const text = row
      ? `INSERT INTO winnow.index_build_progress AS p (schema_name, index_name, relid, pid, command, phase, blocks_total, tuples_total, tuples_done)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (schema_name, index_name) DO UPDATE SET relid = EXCLUDED.relid, pid = EXCLUDED.pid, command = EXCLUDED.command,
           phase = EXCLUDED.phase, blocks_total = EXCLUDED.blocks_total, tuples_total = EXCLUDED.tuples_total, tuples_done = EXCLUDED.tuples_done,
           started_at = CASE WHEN p.pid = EXCLUDED.pid THEN p.started_at ELSE now() END, updated_at = now()`
      : `DELETE FROM winnow.index_build_progress WHERE schema_name = $1 AND index_name = $2`;
    const values = row
      ? [meta.schema, meta.name, meta.relid, row.pid, row.command, row.progress.phase, row.blocks, row.progress.total, row.progress.done]
      : [meta.schema, meta.name];
    this.progressChain = this.progressChain.then(() => this.client.query(text, values)).catch((err) => {
      this.log.debug({ err }, 'winnow: writing build progress failed');
    });
  }

  /**
   * Runs fn between polls: no change is applied, no snapshot saved and the slot not advanced meanwhile
   * (DDL here; tests that start a second manager on a copy of the data directory, which replays the
   * same slot).
   */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    while (this.polling) await this.polling.catch(() => {});
    const p = fn();
    this.polling = p.then(() => {}, () => {});
    try {
      return await p;
    } finally {
      this.polling = null;
    }
  }

  /** Renames an index (map key, metadata, snapshot directory) between polls. */
  async rename(schema: string, name: string, newName: string): Promise<void> {
    const li = this.indexes.get(this.key(schema, name));
    if (!li) return;
    while (this.polling) await this.polling.catch(() => {});
    const oldDir = this.snapshotDir(li.meta);
    li.meta = { ...li.meta, name: newName };
    this.indexes.delete(this.key(schema, name));
    this.indexes.set(this.key(schema, newName), li);
    const newDir = this.snapshotDir(li.meta);
    if (oldDir && newDir) {
      await rm(newDir, { recursive: true, force: true });
      await rename(oldDir, newDir).catch(() => { li.savedLsn = 0n; });
      li.savedLsn = 0n; // state.json names the index: rewrite it at the next poll
    }
  }

  /** REINDEX: a fresh build from the table replaces the index (queries run in Postgres meanwhile). */
  async rebuild(schema: string, name: string): Promise<void> {
    const li = this.indexes.get(this.key(schema, name));
    if (!li) return;
    await this.build(li.meta, undefined, 'REINDEX');
  }

  /**
   * An index whose table is gone (DROP TABLE sends no pgoutput message; the poll notices that the
   * relid left pg_class): its winnow.indexes row, in-memory index and snapshot files go. Runs inside
   * a poll or at open, never concurrently with one.
   */
  private async forget(meta: IndexMeta, why = 'table dropped'): Promise<void> {
    const k = this.key(meta.schema, meta.name);
    await this.client.query(`DELETE FROM winnow.indexes WHERE schema_name = $1 AND name = $2 AND relid = $3`, [meta.schema, meta.name, meta.relid]);
    const dir = this.snapshotDir(meta);
    if (dir) await rm(dir, { recursive: true, force: true });
    const li = this.indexes.get(k);
    if (li) li.shadow = null;
    this.indexes.delete(k);
    this.log.info({ index: meta.name, table: `${meta.schema}.${meta.table}` }, `winnow: ${why}; index removed`);
  }

  /**
   * Columns of indexed tables changed in Postgres (ALTER TABLE … DROP/RENAME COLUMN, through Winnow
   * or not). `cols`: [relid, attnum, name] of every live column of the indexed tables, read by the
   * poll. An index follows its columns by number, as Postgres's indexes do:
   *   - a column dropped: the index goes, like a Postgres index on that column (its placeholder too,
   *     when Postgres did not drop it already: the vector column is not in the placeholder);
   *   - a column renamed: the catalog row takes the new names and the index is rebuilt under them
   *     (until then Postgres answers; its in-memory caches are keyed by the old names).
   * Column numbers are learned at the first poll after the index is loaded or built; a name missing
   * then counts as dropped.
   */
  private async followColumns(cols: [number, number, string][]): Promise<void> {
    const byRel = new Map<number, Map<number, string>>();
    for (const [r, n, name] of cols) {
      let m = byRel.get(Number(r));
      if (!m) byRel.set(Number(r), (m = new Map()));
      m.set(n, name);
    }
    for (const li of [...this.indexes.values()]) {
      const atts = byRel.get(li.meta.relid);
      if (!atts || li.shadow) continue; // table gone (forgotten above); a rebuild running: next poll
      const names = [li.meta.keyColumn, li.meta.column, ...(li.meta.include ?? []).map((c) => c.name)];
      if (!li.attnums) {
        const byName = new Map([...atts].map(([n, name]) => [name, n]));
        const nums = names.map((name) => byName.get(name));
        if (nums.every((n) => n !== undefined)) li.attnums = nums as number[];
        else await this.dropForColumn(li.meta);
        continue;
      }
      const now = li.attnums.map((n) => atts.get(n));
      if (now.some((x) => x === undefined)) await this.dropForColumn(li.meta);
      else if (now.some((x, i) => x !== names[i])) await this.renameColumns(li, now as string[]);
    }
  }

  private async dropForColumn(meta: IndexMeta): Promise<void> {
    await this.forget(meta, 'a column of the index was dropped');
    // The sync connection's role may not own the table: then \di keeps showing the placeholder.
    await this.client.query(`DROP INDEX IF EXISTS ${quoteIdent(meta.schema)}.${quoteIdent(meta.name)}`).catch((err) => {
      this.log.warn({ err, index: meta.name }, 'winnow: placeholder index of a dropped column left in place');
    });
  }

  private async renameColumns(li: LiveIndex, names: string[]): Promise<void> {
    const meta: IndexMeta = { ...li.meta, keyColumn: names[0], column: names[1], include: li.meta.include?.map((c, j) => ({ ...c, name: names[2 + j] })) };
    await this.client.query(`UPDATE winnow.indexes SET key_column = $3, column_name = $4, include_columns = $5::jsonb WHERE schema_name = $1 AND name = $2`, [
      meta.schema, meta.name, meta.keyColumn, meta.column, JSON.stringify(meta.include ?? []),
    ]);
    li.ready = false; // the old names must not plan queries any more
    this.log.info({ index: meta.name, column: meta.column }, 'winnow: indexed column renamed; index rebuilt under the new name');
    // Not awaited: a build waits for polls, and this runs inside one.
    setImmediate(() => {
      this.build(meta, undefined, 'REINDEX').catch((err) => this.log.warn({ err, index: meta.name }, 'winnow: rebuild after a column rename failed'));
    });
  }

  /** Before CREATE INDEX reuses a name: forgets indexes whose table is gone (a DROP TABLE the poller has not seen yet). */
  async forgetDroppedTables(): Promise<void> {
    await this.exclusive(async () => {
      const relids = [...new Set([...this.indexes.values()].map((li) => li.meta.relid))];
      if (!relids.length) return;
      const { rows } = await this.client.query(`SELECT r::bigint AS r FROM unnest($1::oid[]) r WHERE NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = r)`, [relids]);
      const gone = new Set(rows.map((x) => Number(x.r)));
      for (const li of [...this.indexes.values()]) if (gone.has(li.meta.relid)) await this.forget(li.meta);
      if (gone.size && this.indexes.size === 0) await this.dropSlotNow();
    });
  }

  async drop(schema: string, name: string): Promise<boolean> {
    const k = this.key(schema, name);
    const li = this.indexes.get(k);
    if (!li) return false;
    this.indexes.delete(k);
    li.shadow = null;
    // Let a running poll (which may be saving this index) finish before removing its files.
    while (this.polling) await this.polling.catch(() => {});
    const dir = this.snapshotDir(li.meta);
    if (dir) await rm(dir, { recursive: true, force: true });
    if (!this.hasTable(li.meta.relid)) {
      await this.client.query(`DO $$ BEGIN IF EXISTS (SELECT FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid WHERE p.pubname = '${PUBLICATION}' AND pr.prrelid = ${li.meta.relid}) THEN ALTER PUBLICATION ${PUBLICATION} DROP TABLE ${quoteIdent(li.meta.schema)}.${quoteIdent(li.meta.table)}; END IF; END $$`).catch(() => {});
    }
    if (this.indexes.size === 0) await this.dropSlot();
    return true;
  }

  private async dropSlot(): Promise<void> {
    const wait = this.polling;
    if (wait) await wait.catch(() => {});
    await this.dropSlotNow();
  }

  /** Drops the slot and the publication (no index left): nothing holds WAL for Winnow any more. */
  private async dropSlotNow(): Promise<void> {
    await this.client.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, [this.slot]);
    await this.client.query(`DROP PUBLICATION IF EXISTS ${PUBLICATION}`);
    this.relations.clear();
    this.advancedLsn = 0n;
  }

  private async ensurePublication(meta: IndexMeta): Promise<void> {
    const tbl = `${quoteIdent(meta.schema)}.${quoteIdent(meta.table)}`;
    const { rows } = await this.client.query(
      `SELECT EXISTS (SELECT FROM pg_publication WHERE pubname = $1) AS pub,
              EXISTS (SELECT FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid WHERE p.pubname = $1 AND pr.prrelid = $2) AS member`,
      [PUBLICATION, meta.relid],
    );
    if (!rows[0].pub) await this.client.query(`CREATE PUBLICATION ${PUBLICATION} FOR TABLE ${tbl}`);
    else if (!rows[0].member) await this.client.query(`ALTER PUBLICATION ${PUBLICATION} ADD TABLE ${tbl}`);
  }

  private async ensureSlot(): Promise<void> {
    const { rows } = await this.client.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [this.slot]);
    if (rows.length === 0) {
      await this.client.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [this.slot]);
      this.relations.clear();
    }
  }

  /** Resolves once every transaction committed before `lsn` is applied (read-your-writes). */
  waitFor(lsn: bigint): Promise<void> {
    if (this.processedLsn >= lsn) return Promise.resolve();
    if (this.closed) return Promise.reject(new Error('winnow index sync is closed'));
    return new Promise((resolve, reject) => {
      this.waiters.push({ lsn, resolve, reject });
      this.kick();
    });
  }

  /**
   * Next background poll: after the poll interval, or 3× as long as the last decode took when that is
   * longer. Every poll redecodes WAL from the slot position, including a large transaction still in
   * progress (a bulk COPY), so back-to-back polls would keep a Postgres backend decoding the same WAL
   * over and over; this keeps that under ~25% of one core. Waiters (read-your-writes) poll at once.
   */
  private schedule(): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.kick();
    }, Math.max(this.intervalMs, Math.min(10_000, 3 * this.lastPeekMs)));
    this.timer.unref();
  }

  private kick(): void {
    if (this.polling || this.closed) return;
    this.polling = (async () => {
      try {
        do {
          await this.pollOnce();
        } while (this.waiters.some((w) => w.lsn > this.processedLsn) && !this.closed && this.trainingCap() === null);
        this.lastError = null;
      } catch (err) {
        this.lastError = err as Error;
        this.log.warn({ err }, 'winnow index sync poll failed');
        const ws = this.waiters;
        this.waiters = [];
        for (const w of ws) w.reject(new Error(`winnow index sync failed: ${(err as Error).message}`));
        await this.reconnect();
      } finally {
        this.polling = null;
        this.schedule();
      }
    })();
  }

  private async reconnect(): Promise<void> {
    if (this.closed) return;
    try {
      await this.client.end().catch(() => {});
      this.client = await this.connect();
      this.relations.clear();
    } catch (err) {
      this.log.warn({ err }, 'winnow sync reconnect failed');
    }
  }

  /** One decode round: everything committed before the current WAL position. */
  async pollOnce(): Promise<void> {
    if (this.indexes.size === 0) {
      const { rows } = await this.client.query('SELECT pg_current_wal_lsn()::text AS l');
      this.setProcessed(lsnToBigInt(rows[0].l));
      return;
    }
    this.finishTraining();
    // Shadows (background rebuilds) that finished their scan before this poll began: they get every
    // transaction since the slot position (held back since they started) and are swapped in after it.
    const catching = [...this.indexes.values()].filter((li) => li.shadow?.ready).map((li) => [li, li.shadow!] as const);
    // The WAL position to decode up to, and which indexed tables no longer exist (DROP TABLE), in one round trip.
    const relids = [...new Set([...this.indexes.values()].map((li) => li.meta.relid))];
    const { rows: u } = await this.client.query(
      `SELECT pg_current_wal_lsn()::text AS l, array_to_string(ARRAY(SELECT r FROM unnest($1::oid[]) r WHERE NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = r)), ',') AS gone,
        (SELECT json_agg(json_build_array(attrelid::bigint, attnum, attname)) FROM pg_catalog.pg_attribute WHERE attrelid = ANY($1::oid[]) AND attnum > 0 AND NOT attisdropped) AS cols`,
      [relids],
    );
    const upto = u[0].l as string;
    this.pollUpto = lsnToBigInt(upto);
    if (u[0].gone) {
      const gone = new Set(String(u[0].gone).split(',').map(Number));
      for (const li of [...this.indexes.values()]) if (gone.has(li.meta.relid)) await this.forget(li.meta);
    }
    await this.followColumns((u[0].cols ?? []) as [number, number, string][]);
    // Tables dropped or indexed columns gone: with no index left, the slot goes too.
    if (this.indexes.size === 0) {
      await this.dropSlotNow();
      this.setProcessed(lsnToBigInt(upto));
      return;
    }
    // Rows are applied as they arrive (not accumulated): a bulk load's transaction is never held whole.
    const peekStart = performance.now();
    const applier = this.applier(catching.map(([, sh]) => sh));
    let messages = 0;
    let applyMs = 0;
    await new Promise<void>((resolve, reject) => {
      const q = new pg.Query({
        text: `SELECT data FROM pg_logical_slot_peek_binary_changes($1, $2::pg_lsn, NULL, 'proto_version', '1', 'publication_names', '${PUBLICATION}', 'binary', 'true')`,
        values: [this.slot, upto],
        rowMode: 'array',
        types: { getTypeParser: () => (v: string) => Buffer.from(v.slice(2), 'hex') },
      } as pg.QueryConfig);
      let failed: Error | null = null;
      q.on('row', (row: Buffer[]) => {
        if (failed) return;
        const t = performance.now();
        try {
          applier.push(row[0]);
        } catch (err) {
          failed = err as Error; // reported when the query ends (the connection stays in sync)
        }
        messages++;
        applyMs += performance.now() - t;
      });
      q.on('error', reject);
      q.on('end', () => (failed ? reject(failed) : resolve()));
      this.client.query(q);
    });
    const t = performance.now();
    applier.finish();
    applyMs += performance.now() - t;
    this.lastPeekMs = performance.now() - peekStart - applyMs;
    const uptoN = lsnToBigInt(upto);
    for (const [li, sh] of catching) {
      if (li.shadow !== sh || this.indexes.get(this.key(li.meta.schema, li.meta.name)) !== li) continue;
      // Same transactions applied to both: the swap is atomic for searches (one JS turn).
      li.index = sh.index;
      li.trainedRows = sh.trainedRows;
      li.shadow = null;
      li.unsaved++;
      if (!li.index.isTrained) li.shadowFailedAt = Date.now(); // too few rows after all: back off
      this.log.info({ index: li.meta.name, rows: li.index.size, trained: li.index.isTrained, nlist: li.index.stats().nlist }, 'winnow: background rebuild swapped in');
      this.learnAfterTraining(li);
    }
    this.setProcessed(uptoN);
    this.lastPollAt = Date.now();
    this.lastPollChanges = messages;
    const saveStart = performance.now();
    await this.saveDue();
    const saveMs = performance.now() - saveStart;
    if (this.lastPeekMs + applyMs + saveMs > 1000) {
      this.log.info({ database: this.database, messages: messages, peekMs: Math.round(this.lastPeekMs), applyMs: Math.round(applyMs), saveMs: Math.round(saveMs) }, 'winnow: slow poll');
    }
    // Advance the slot to what every index has applied (with snapshots: what every snapshot
    // includes, so a restart can replay from there); a building index or a background rebuild holds it back.
    const all = [...this.indexes.values()];
    if (all.length && all.every((li) => li.ready && !li.shadow)) {
      const target = this.snapshotRoot ? all.reduce((m, li) => (li.savedLsn < m ? li.savedLsn : m), uptoN) : uptoN;
      if (target > this.advancedLsn && (messages > 0 || this.snapshotRoot)) {
        await this.client.query(`SELECT pg_replication_slot_advance($1, $2::pg_lsn)`, [this.slot, bigIntToLsn(target)]);
        this.advancedLsn = target;
      }
    }
    // After the advance: a background rebuild started now holds the slot where it is, which is at or
    // before its scan's snapshot (every advance target is an LSN read before the scan begins).
    this.startTraining();
  }

  /** Messages returned by the last poll (metric). */
  lastPollChanges = 0;
  /** How long the last pg_logical_slot_peek_binary_changes took (ms). */
  lastPeekMs = 0;
  /** The WAL position the current (or last) poll decodes up to. */
  private pollUpto = 0n;

  /**
   * Train on growth. An untrained index that reached TRAIN_THRESHOLD rows through applied changes is
   * trained in place: it already holds every row, so a uniform sample is drawn from the table
   * (TABLESAMPLE BERNOULLI, its own connection) and train() learns the parameters and encodes what
   * the index holds, off the JS thread. Searches keep running (exact) meanwhile; changes that arrive
   * collect in a backlog that is applied right after, and read-your-writes queries for them wait.
   * A trained index that grew past RETRAIN_GROWTH × the rows its parameters were chosen for is rebuilt
   * from the table in the background (train() works once per index): scan + sample + train on a
   * separate connection, like CREATE INDEX, while the serving index keeps taking changes and
   * answering; once the rebuild has caught up it replaces the serving index in one step.
   */
  private startTraining(): void {
    for (const li of this.indexes.values()) {
      if (!li.ready || li.shadow || li.backlog || this.closed) continue;
      if (Date.now() - li.shadowFailedAt < RETRAIN_BACKOFF_MS) continue;
      const n = li.index.size;
      if (!li.index.isTrained) {
        if (n >= TRAIN_THRESHOLD) this.trainInPlace(li);
        continue;
      }
      if (n <= RETRAIN_GROWTH * Math.max(li.trainedRows, TRAIN_THRESHOLD)) continue;
      const sh = new LiveIndex(li.meta, false);
      li.shadow = sh;
      const k = this.key(li.meta.schema, li.meta.name);
      this.log.info({ index: li.meta.name, rows: n, trainedRows: li.trainedRows }, 'winnow: index outgrew its training; retraining in the background');
      this.scan(sh, 'RETRAIN').then(() => {
        if (li.shadow !== sh || this.indexes.get(k) !== li) return;
        sh.ready = true; // the next poll replays everything since the slot position into it, then swaps
        this.kick();
      }, (err) => {
        if (li.shadow === sh) li.shadow = null;
        li.shadowFailedAt = Date.now();
        this.log.warn({ err, index: li.meta.name }, 'winnow: background rebuild failed; the serving index is unchanged');
      });
    }
  }

  private trainInPlace(li: LiveIndex): void {
    const meta = li.meta;
    li.backlog = { upserts: new Map(), truncated: false };
    li.trainCapLsn = null;
    li.trainResult = null;
    const n = li.index.size;
    this.log.info({ index: meta.name, rows: n }, 'winnow: index reached the training threshold; training in the background');
    const index = li.index;
    (async () => {
      const sampleMax = this.sampleMax(meta);
      // The sampling connection stays open until training ends: winnow.index_progress shows a build
      // only while its backend is alive.
      const c = await this.connect();
      let pid = 0;
      const progress = (phase: BuildProgress['phase'], done: number) => this.writeProgress(meta, { pid, command: 'TRAIN', progress: { phase, done, total: n }, blocks: 0 }, true);
      let rows = 0;
      try {
        pid = (await c.query('SELECT pg_backend_pid() AS p')).rows[0].p;
        progress('scanning table', 0);
        const tbl = `${quoteIdent(meta.schema)}.${quoteIdent(meta.table)}`;
        const vecCol = quoteIdent(meta.column);
        const pct = Math.min(100, (100 * sampleMax * 1.1) / Math.max(1, n));
        const r: pg.QueryResult = await c.query({
          text: `SELECT encode(array_send(${vecCol}::real[]), 'hex') FROM ${tbl} TABLESAMPLE BERNOULLI (${pct}) WHERE ${vecCol} IS NOT NULL LIMIT ${sampleMax}`,
          rowMode: 'array',
          types: { getTypeParser: () => (v: string) => v },
        } as pg.QueryConfig);
        const sample = new Float32Array(r.rows.length * meta.dim);
        for (const row of r.rows as unknown as string[][]) {
          const { dim } = decodeFloat4Array(Buffer.from(row[0], 'hex'), sample, rows * meta.dim);
          if (dim === meta.dim && isIndexable(meta.metric, sample, rows * meta.dim, meta.dim)) rows++;
        }
        progress('training', rows);
        // nlist from the table's size, as a fresh build would choose it, not from the sample's.
        await index.train(sample.subarray(0, rows * meta.dim), undefined, undefined, meta.options.nlist ? undefined : nlistFor(n, rows));
      } finally {
        this.writeProgress(meta, null, true);
        await c.end().catch(() => {});
      }
      // The parameters were chosen for the rows the index held (the retrain rule rebuilds it past 4× that).
      li.trainedRows = n;
    })().then(() => { li.trainResult = true; }, (err) => { li.trainResult = err as Error; }).finally(() => this.kick());
  }

  /**
   * `WITH (learn = on)`: an index that has just been trained on growth or rebuilt (its learnt
   * parameters went with the old training) learns again, in the background, while it serves.
   */
  private learnAfterTraining(li: LiveIndex): void {
    if (!li.meta.options.learn || !li.index.isTrained) return;
    const index = li.index;
    index.learn({}).then(
      (r) => {
        if (r.installed && li.index === index) li.unsaved++; // saved with the next snapshot
        li.lastLearn = { installed: r.installed, at: Date.now() };
        this.log.info({ index: li.meta.name, installed: r.installed }, 'winnow: search parameters learnt after training');
      },
      (err) => this.log.warn({ err, index: li.meta.name }, 'winnow: learning search parameters after training failed'),
    );
  }

  /** At the start of a poll: an in-place training that ended gets its backlog applied. */
  private finishTraining(): void {
    for (const li of this.indexes.values()) {
      if (!li.backlog || li.trainResult === null) continue;
      const backlog = li.backlog;
      li.backlog = null;
      if (li.trainResult instanceof Error) {
        li.shadowFailedAt = Date.now();
        this.log.warn({ err: li.trainResult, index: li.meta.name }, 'winnow: training failed; the index stays exact (untrained)');
      } else {
        this.log.info({ index: li.meta.name, rows: li.index.size, nlist: li.index.stats().nlist, backlog: backlog.upserts.size }, 'winnow: index trained in place');
        this.learnAfterTraining(li);
      }
      li.trainResult = null;
      li.unsaved++;
      this.applied += this.applyPending(li, backlog);
    }
  }

  /** While an index trains in place, processedLsn stays where it was (its changes wait in the backlog). */
  private trainingCap(): bigint | null {
    let cap: bigint | null = null;
    for (const li of this.indexes.values()) if (li.backlog && li.trainCapLsn !== null && (cap === null || li.trainCapLsn < cap)) cap = li.trainCapLsn;
    return cap;
  }

  private advancedLsn = 0n;
  /** Winnow's connection for sessions' side queries (queryAs), opened at the first. */
  private sideClient: Promise<pg.Client> | null = null;

  private setProcessed(lsn: bigint): void {
    const cap = this.trainingCap();
    if (cap !== null && lsn > cap) lsn = cap > this.processedLsn ? cap : this.processedLsn;
    if (lsn > this.processedLsn) this.processedLsn = lsn;
    const still: typeof this.waiters = [];
    for (const w of this.waiters) (w.lsn <= this.processedLsn ? w.resolve() : still.push(w));
    this.waiters = still;
  }

  /**
   * A decoder/applier for one poll's messages, fed one message at a time as rows arrive. Row states
   * collapse per id and are applied in batches of FLUSH_EVERY messages (and at the end), so a huge
   * transaction (a bulk COPY) never sits in memory whole; applying a prefix of the stream in order is
   * the same as applying it at once (row-state assignments).
   */
  private applier(shadows: LiveIndex[] = []): { push(m: Buffer): void; finish(): void } {
    let pending = new Map<LiveIndex, Pending>();
    const get = (li: LiveIndex) => {
      let p = pending.get(li);
      if (!p) pending.set(li, (p = { upserts: new Map(), truncated: false }));
      return p;
    };
    let txLsn = 0n;
    let targets: LiveIndex[] = [];
    const all = () => [...this.indexes.values(), ...shadows];
    // An index whose key or vector column is not in the table's Relation message (dropped or renamed
    // in a transaction this poll decodes) takes no changes: the next poll's column check drops or
    // rebuilds it (followColumns).
    const targetsFor = (relid: number) => targets.filter((li) => li.meta.relid === relid && li.ready && li.lastCommit < txLsn && this.hasColumns(li, relid));
    let skipping = false;
    let sinceFlush = 0;
    const flush = () => {
      for (const [li, p] of pending) {
        if (li.backlog) {
          // Training in place: keep the changes for when it ends.
          if (li.trainCapLsn === null) li.trainCapLsn = this.processedLsn;
          if (p.truncated) li.backlog = p;
          else for (const [id, e] of p.upserts) li.backlog.upserts.set(id, mergeEntry(li.backlog.upserts.get(id), e));
          continue;
        }
        const n = this.applyPending(li, p);
        if (!shadows.includes(li)) this.applied += n;
      }
      pending = new Map();
      sinceFlush = 0;
    };
    const push = (m: Buffer) => {
      // A transaction every index has applied already (redelivered by peek) is skipped undecoded.
      if (skipping && m[0] !== 0x52 /* 'R' relation: always kept */) {
        if (m[0] === 0x43 /* 'C' commit */) skipping = false;
        return;
      }
      const msg = decodePgOutput(m);
      switch (msg.tag) {
        case 'begin':
          txLsn = msg.finalLsn;
          targets = all();
          if (!targets.some((li) => li.ready && li.lastCommit < txLsn)) skipping = true;
          break;
        case 'relation': {
          this.relations.set(msg.relid, { schema: msg.schema, name: msg.name, columns: msg.columns.map((c) => c.name) });
          for (const li of all()) {
            if (li.meta.relid !== msg.relid) continue;
            li.cols = null;
            this.colsFor(li, msg.relid);
          }
          break;
        }
        case 'insert':
        case 'update': {
          for (const li of targetsFor(msg.relid)) {
            const cols = this.colsFor(li, msg.relid);
            const p = get(li);
            if (msg.tag === 'update' && msg.oldKey && msg.oldKey[cols.key] instanceof Buffer) {
              const oldId = decodeKey(msg.oldKey[cols.key] as Buffer);
              p.upserts.set(oldId, DELETED);
            }
            const id = decodeKey(msg.tuple[cols.key] as Buffer);
            const v: TupleValue = msg.tuple[cols.vec];
            const inc = li.includes
              ? cols.inc.map((ci, j): IncludeValue | undefined => {
                const t = ci < 0 ? null : msg.tuple[ci];
                return t === 'unchanged' ? undefined : t == null ? null : decodeIncludeBinary(li.meta.include![j].type, t);
              })
              : null;
            // A TOASTed vector not modified ('unchanged') keeps the indexed one (or the one pending in this batch).
            p.upserts.set(id, mergeEntry(p.upserts.get(id), { vec: v === 'unchanged' ? undefined : v === null ? null : decodeFloat4Array(v).values, inc }));
          }
          break;
        }
        case 'delete':
          for (const li of targetsFor(msg.relid)) {
            const cols = this.colsFor(li, msg.relid);
            get(li).upserts.set(decodeKey(msg.oldKey[cols.key] as Buffer), DELETED);
          }
          break;
        case 'truncate':
          for (const relid of msg.relids) {
            for (const li of targetsFor(relid)) {
              const p = get(li);
              p.upserts.clear();
              p.truncated = true;
            }
          }
          break;
        case 'commit':
          for (const li of targets) if (li.ready && li.lastCommit < txLsn && li.meta.relid !== 0) li.lastCommit = txLsn;
          break;
      }
      if (++sinceFlush >= FLUSH_EVERY) flush();
    };
    return { push, finish: flush };
  }

  /** Applies one batch of row states to an index (and its INCLUDE columns); returns the changes applied. */
  private applyPending(li: LiveIndex, p: Pending): number {
    if (p.truncated) {
      li.index = newIndex(li.meta);
      li.trainedRows = 0;
      li.includes?.clear();
    }
    const del: bigint[] = [];
    const addIds: bigint[] = [];
    const addVecs: Float32Array[] = [];
    const addInc: Entry['inc'][] = [];
    let incOnly = 0;
    for (const [id, e] of p.upserts) {
      if (e.vec === undefined) {
        // Vector unchanged: only INCLUDE columns may have changed (rows not in the index stay out).
        if (li.includes && e.inc && li.includes.has(id)) {
          li.includes.set(id, e.inc);
          incOnly++;
        }
      } else if (e.vec === null || e.vec.length !== li.meta.dim || !isIndexable(li.meta.metric, e.vec)) del.push(id);
      else {
        addIds.push(id);
        addVecs.push(e.vec);
        addInc.push(e.inc);
      }
    }
    if (del.length) {
      li.index.remove(BigInt64Array.from(del));
      if (li.includes) for (const id of del) li.includes.delete(id);
    }
    if (addIds.length) {
      const flat = new Float32Array(addIds.length * li.meta.dim);
      addVecs.forEach((v, i) => flat.set(v, i * li.meta.dim));
      li.index.addSync(BigInt64Array.from(addIds), flat);
      if (li.includes) for (let i = 0; i < addIds.length; i++) li.includes.set(addIds[i], addInc[i] ?? []);
    }
    const n = del.length + addIds.length + incOnly;
    li.unsaved += n + (p.truncated ? 1 : 0);
    return n;
  }

  private hasColumns(li: LiveIndex, relid: number): boolean {
    if (!this.relations.has(relid)) return true; // colsFor reports the missing Relation message
    const c = this.colsFor(li, relid);
    return c.key >= 0 && c.vec >= 0;
  }

  private colsFor(li: LiveIndex, relid: number): { key: number; vec: number; inc: number[] } {
    if (!li.cols) {
      const rel = this.relations.get(relid);
      if (!rel) throw new Error(`pgoutput: no Relation message for ${relid}`);
      li.cols = { key: rel.columns.indexOf(li.meta.keyColumn), vec: rel.columns.indexOf(li.meta.column), inc: (li.meta.include ?? []).map((c) => rel.columns.indexOf(c.name)) };
    }
    return li.cols;
  }

  private async pollOnceSafe(): Promise<void> {
    try {
      await this.pollOnce();
    } catch (err) {
      this.log.warn({ err }, 'winnow: last poll before shutdown failed');
    }
  }

  /**
   * Replication lag and health without a session: WAL written by Postgres (pg_current_wal_lsn() now,
   * on the sync connection) minus WAL applied to every index, time since the last poll, and errors.
   */
  async status(): Promise<SyncStatus> {
    // While a poll runs (a long one during a bulk load), the connection is busy: report the WAL
    // position that poll is decoding up to instead of waiting for it.
    const wal = this.polling && this.pollUpto ? this.pollUpto : await this.currentLsn();
    return {
      database: this.database,
      slot: this.slot,
      indexes: this.indexes.size,
      walLsn: bigIntToLsn(wal),
      appliedLsn: bigIntToLsn(this.processedLsn),
      lagBytes: wal > this.processedLsn ? Number(wal - this.processedLsn) : 0,
      msSinceLastPoll: this.lastPollAt ? Date.now() - this.lastPollAt : null,
      backgroundRebuilds: [...this.indexes.values()].filter((li) => li.shadow).length,
      lastError: this.lastError?.message ?? null,
      snapshotErrors: this.saveErrors,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const li of this.indexes.values()) li.shadow = null;
    if (this.timer) clearTimeout(this.timer);
    if (this.polling) await this.polling.catch(() => {});
    try {
      if (this.snapshotRoot && this.indexes.size) {
        await this.pollOnceSafe();
        await this.saveDue(true);
        const all = [...this.indexes.values()];
        if (all.every((li) => li.ready && li.savedLsn > 0n)) {
          const target = all.reduce((m, li) => (li.savedLsn < m ? li.savedLsn : m), this.processedLsn);
          await this.client.query(`SELECT pg_replication_slot_advance($1, $2::pg_lsn)`, [this.slot, bigIntToLsn(target)]).catch(() => {});
        }
      }
    } catch (err) {
      this.log.warn({ err }, 'winnow: final snapshot failed');
    }
    for (const w of this.waiters) w.reject(new Error('winnow index sync is closed'));
    this.waiters = [];
    await this.client.end().catch(() => {});
    if (this.sideClient) await this.sideClient.then((c) => c.end()).catch(() => {});
  }
}

