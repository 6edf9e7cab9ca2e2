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
import { mkdir, readFile, rename, writeFile, rm } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import type { Logger } from 'pino';
import { VectorIndex, type Metric } from '../native/index.ts';
import { decodeFloat4Array, decodeKey, decodePgOutput, lsnToBigInt, bigIntToLsn, type TupleValue } from './pgoutput.ts';
import { quoteIdent } from '../sql/quote.ts';

export const PUBLICATION = 'winnow_indexed';
/** Below this many rows an index is not trained: searches are exact brute force (measured, see README). */
export const TRAIN_THRESHOLD = 10_000;

export interface IndexMeta {
  name: string;
  schema: string;
  table: string;
  relid: number;
  column: string;
  keyColumn: string;
  metric: Metric;
  accessMethod: string;
  options: { nlist?: number; reducedDim?: number };
  dim: number;
}

export interface BuildProgress {
  phase: 'scanning table' | 'training' | 'done';
  done: number;
  total: number;
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
  /** Key and vector column positions in the table's pgoutput Relation message. */
  cols: { key: number; vec: number } | null = null;
  constructor(public meta: IndexMeta) {
    this.index = newIndex(meta);
  }
}

function newIndex(meta: IndexMeta): VectorIndex {
  return new VectorIndex({ dim: meta.dim, metric: meta.metric, nlist: meta.options.nlist, reducedDim: meta.options.reducedDim });
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
}

/** A changed index is saved early after this many applied changes (bounds WAL redecoded per poll). */
export const SNAPSHOT_AFTER_CHANGES = 5000;

/** Bumped when the snapshot layout or meaning changes: other versions are rebuilt. */
export const SNAPSHOT_FORMAT = 1;

export class IndexManager {
  private dbs = new Map<string, Promise<DatabaseIndexes>>();
  constructor(private opts: ManagerOptions) {}

  /** The database's index set, loading (and building) its indexes on first use. */
  forDatabase(user: string, database: string): Promise<DatabaseIndexes> {
    let p = this.dbs.get(database);
    if (!p) {
      p = (async () => {
        const d = new DatabaseIndexes(database, () => this.opts.connection(user, database), this.opts.log, this.opts.pollIntervalMs ?? 200,
          this.opts.dataDir ? path.join(this.opts.dataDir, safeName(database)) : null, this.opts.snapshotIntervalMs ?? 30_000);
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
    private snapshotRoot: string | null, private snapshotIntervalMs: number) {
    this.slot = slotName(database);
  }

  snapshotDir(meta: IndexMeta): string | null {
    return this.snapshotRoot ? path.join(this.snapshotRoot, `${safeName(meta.schema)}.${safeName(meta.name)}`) : null;
  }

  /** Loads a snapshot if it is usable: same definition and format, and the slot has not moved past it. */
  private async loadSnapshot(meta: IndexMeta, confirmed: bigint | null): Promise<LiveIndex | string> {
    const dir = this.snapshotDir(meta);
    if (!dir) return 'no data directory';
    let state: { format: number; meta: IndexMeta; lsn: string };
    try {
      state = JSON.parse(await readFile(path.join(dir, 'state.json'), 'utf8'));
    } catch {
      return 'no snapshot';
    }
    if (state.format !== SNAPSHOT_FORMAT) return `snapshot format ${state.format}, expected ${SNAPSHOT_FORMAT}`;
    const m = state.meta;
    if (m.relid !== meta.relid || m.dim !== meta.dim || m.metric !== meta.metric || m.column !== meta.column || m.keyColumn !== meta.keyColumn) return 'snapshot of another index definition';
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
    const li = new LiveIndex(meta);
    li.index = index;
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
    if (changed > 0 || li.savedLsn === 0n) await li.index.save(dir);
    const tmp = path.join(dir, 'state.json.tmp');
    await writeFile(tmp, JSON.stringify({ format: SNAPSHOT_FORMAT, meta: li.meta, lsn: lsn.toString(), rows: li.index.size, savedAt: new Date().toISOString() }));
    await rename(tmp, path.join(dir, 'state.json'));
    li.unsaved -= changed;
    li.savedLsn = lsn;
    li.savedAt = Date.now();
  }

  /** Saves indexes whose snapshot is due (force: all, e.g. at shutdown). Failures keep the previous snapshot. */
  async saveDue(force = false): Promise<void> {
    if (!this.snapshotRoot) return;
    for (const li of this.indexes.values()) {
      if (!li.ready) continue;
      // Due: the interval passed with changes; many changes (each poll redecodes WAL since the
      // oldest snapshot, so keep that short); or only the LSN moved (cheap: state.json only).
      const age = Date.now() - li.savedAt;
      const due = force || li.savedLsn === 0n
        || (li.unsaved > 0 && (age >= this.snapshotIntervalMs || li.unsaved >= SNAPSHOT_AFTER_CHANGES))
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
      const metas = await this.client.query(`SELECT * FROM winnow.indexes ORDER BY created_at`);
      const slot = await this.client.query(`SELECT confirmed_flush_lsn::text AS c FROM pg_replication_slots WHERE slot_name = $1`, [this.slot]);
      const confirmed = slot.rows.length && slot.rows[0].c ? lsnToBigInt(slot.rows[0].c) : null;
      for (const r of metas.rows) {
        const meta: IndexMeta = {
          name: r.name, schema: r.schema_name, table: r.table_name, relid: Number(r.relid), column: r.column_name,
          keyColumn: r.key_column, metric: r.metric, accessMethod: r.access_method, options: r.options ?? {}, dim: r.dim,
        };
        const snap = await this.loadSnapshot(meta, confirmed);
        if (typeof snap !== 'string') {
          this.indexes.set(this.key(meta.schema, meta.name), snap);
          this.log.info({ index: meta.name, rows: snap.index.size, lsn: bigIntToLsn(snap.savedLsn) }, 'winnow: index loaded from snapshot');
          continue;
        }
        this.log.info({ index: meta.name, reason: snap }, 'winnow: rebuilding index from its table');
        const li = await this.build(meta, (p) => this.log.info({ index: meta.name, ...p }, 'winnow: rebuild progress'));
        li.origin = `rebuilt (${snap})`;
      }
      if (this.indexes.size) {
        await this.ensureSlot();
        await this.waitFor(await this.currentLsn());
      }
    }
    this.schedule();
  }

  private async connect(): Promise<pg.Client> {
    const c = new pg.Client({ ...this.config(), application_name: 'winnow-sync' });
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
  async build(meta: IndexMeta, onProgress?: (p: BuildProgress) => void): Promise<LiveIndex> {
    await this.ensurePublication(meta);
    await this.ensureSlot();
    const li = new LiveIndex(meta);
    const k = this.key(meta.schema, meta.name);
    this.indexes.set(k, li);
    const c = await this.connect();
    try {
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const tbl = `${quoteIdent(meta.schema)}.${quoteIdent(meta.table)}`;
      const total = Number((await c.query(`SELECT count(*)::bigint AS n FROM ${tbl}`)).rows[0].n);
      li.progress = { phase: 'scanning table', done: 0, total };
      onProgress?.(li.progress);
      const keyCol = quoteIdent(meta.keyColumn);
      const vecCol = quoteIdent(meta.column);
      let last: bigint | null = null;
      const batch = 5000;
      const sample: Float32Array[] = [];
      for (;;) {
        const r: pg.QueryResult = await c.query({
          text: `SELECT ${keyCol}::bigint::text AS k, encode(array_send(${vecCol}::real[]), 'hex') AS v FROM ${tbl} WHERE ${vecCol} IS NOT NULL${last === null ? '' : ` AND ${keyCol} > $1`} ORDER BY ${keyCol} LIMIT ${batch}`,
          values: last === null ? [] : [last.toString()],
          rowMode: 'array',
          types: { getTypeParser: () => (v: string) => v },
        } as pg.QueryConfig);
        const n: number = r.rows.length;
        if (n === 0) break;
        const ids = new BigInt64Array(n);
        const vecs = new Float32Array(n * meta.dim);
        let kept = 0;
        for (let i = 0; i < n; i++) {
          const row = r.rows[i] as unknown as string[];
          const id = BigInt(row[0]);
          last = id;
          const { dim } = decodeFloat4Array(Buffer.from(row[1], 'hex'), vecs, kept * meta.dim);
          if (dim !== meta.dim) throw new Error(`row ${id} has ${dim} dimensions, index expects ${meta.dim}`);
          if (!isIndexable(meta.metric, vecs, kept * meta.dim, meta.dim)) continue;
          ids[kept++] = id;
        }
        if (kept > 0) {
          const keptVecs = vecs.subarray(0, kept * meta.dim);
          await li.index.add(ids.subarray(0, kept), keptVecs);
          if (sample.length < 20) sample.push(keptVecs);
        }
        li.progress = { phase: 'scanning table', done: li.progress.done + n, total };
        onProgress?.(li.progress);
        if (n < batch) break;
      }
      await c.query('COMMIT');
      if (li.progress.done >= TRAIN_THRESHOLD) {
        li.progress = { phase: 'training', done: li.progress.done, total };
        onProgress?.(li.progress);
        const len = sample.reduce((a, s) => a + s.length, 0);
        const all = new Float32Array(len);
        let o = 0;
        for (const s of sample) { all.set(s, o); o += s.length; }
        await li.index.train(all);
      }
      li.progress = { phase: 'done', done: li.progress.done, total };
      onProgress?.(li.progress);
    } catch (err) {
      this.indexes.delete(k);
      throw err;
    } finally {
      await c.end().catch(() => {});
    }
    li.ready = true;
    // Catch up with everything committed since the snapshot before the index serves queries.
    const { rows } = await this.client.query('SELECT pg_current_wal_lsn()::text AS l');
    await this.waitFor(lsnToBigInt(rows[0].l));
    return li;
  }

  /** Runs fn between polls (no change is applied meanwhile). */
  private async exclusive<T>(fn: () => Promise<T>): Promise<T> {
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
    await this.build(li.meta);
  }

  async drop(schema: string, name: string): Promise<boolean> {
    const k = this.key(schema, name);
    const li = this.indexes.get(k);
    if (!li) return false;
    this.indexes.delete(k);
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
    await this.client.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, [this.slot]);
    await this.client.query(`DROP PUBLICATION IF EXISTS ${PUBLICATION}`);
    this.relations.clear();
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

  private schedule(): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.kick();
    }, this.intervalMs);
    this.timer.unref();
  }

  private kick(): void {
    if (this.polling || this.closed) return;
    this.polling = (async () => {
      try {
        do {
          await this.pollOnce();
        } while (this.waiters.some((w) => w.lsn > this.processedLsn) && !this.closed);
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
    const { rows: u } = await this.client.query('SELECT pg_current_wal_lsn()::text AS l');
    const upto = u[0].l as string;
    const r = await this.client.query({
      text: `SELECT data FROM pg_logical_slot_peek_binary_changes($1, $2::pg_lsn, NULL, 'proto_version', '1', 'publication_names', '${PUBLICATION}', 'binary', 'true')`,
      values: [this.slot, upto],
      rowMode: 'array',
      types: { getTypeParser: (oid: number) => (oid === 17 ? (v: string) => Buffer.from(v.slice(2), 'hex') : (v: string) => v) },
    } as pg.QueryConfig);
    this.applyMessages(r.rows.map((row) => (row as unknown as Buffer[])[0]));
    const uptoN = lsnToBigInt(upto);
    this.setProcessed(uptoN);
    this.lastPollAt = Date.now();
    await this.saveDue();
    // Advance the slot to what every index has applied (with snapshots: what every snapshot
    // includes, so a restart can replay from there); a building index holds it back.
    const all = [...this.indexes.values()];
    if (all.length && all.every((li) => li.ready)) {
      const target = this.snapshotRoot ? all.reduce((m, li) => (li.savedLsn < m ? li.savedLsn : m), uptoN) : uptoN;
      if (target > this.advancedLsn && (r.rows.length > 0 || this.snapshotRoot)) {
        await this.client.query(`SELECT pg_replication_slot_advance($1, $2::pg_lsn)`, [this.slot, bigIntToLsn(target)]);
        this.advancedLsn = target;
      }
    }
  }

  private advancedLsn = 0n;

  private setProcessed(lsn: bigint): void {
    if (lsn > this.processedLsn) this.processedLsn = lsn;
    const still: typeof this.waiters = [];
    for (const w of this.waiters) (w.lsn <= this.processedLsn ? w.resolve() : still.push(w));
    this.waiters = still;
  }

  private applyMessages(msgs: Buffer[]): void {
    type Pending = { upserts: Map<bigint, Float32Array | null>; truncated: boolean };
    const pending = new Map<LiveIndex, Pending>();
    const get = (li: LiveIndex) => {
      let p = pending.get(li);
      if (!p) pending.set(li, (p = { upserts: new Map(), truncated: false }));
      return p;
    };
    let txLsn = 0n;
    let targets: LiveIndex[] = [];
    const targetsFor = (relid: number) => targets.filter((li) => li.meta.relid === relid && li.ready && li.lastCommit < txLsn);
    for (const m of msgs) {
      const msg = decodePgOutput(m);
      switch (msg.tag) {
        case 'begin':
          txLsn = msg.finalLsn;
          targets = [...this.indexes.values()];
          break;
        case 'relation': {
          this.relations.set(msg.relid, { schema: msg.schema, name: msg.name, columns: msg.columns.map((c) => c.name) });
          for (const li of this.indexes.values()) {
            if (li.meta.relid !== msg.relid) continue;
            const names = msg.columns.map((c) => c.name);
            li.cols = { key: names.indexOf(li.meta.keyColumn), vec: names.indexOf(li.meta.column) };
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
              p.upserts.set(oldId, null);
            }
            const id = decodeKey(msg.tuple[cols.key] as Buffer);
            const v: TupleValue = msg.tuple[cols.vec];
            if (v === 'unchanged') {
              // TOASTed vector not modified: keep what the index has (unless removed above with a key change).
              if (p.upserts.get(id) === null) p.upserts.delete(id);
              continue;
            }
            p.upserts.set(id, v === null ? null : decodeFloat4Array(v).values);
          }
          break;
        }
        case 'delete':
          for (const li of targetsFor(msg.relid)) {
            const cols = this.colsFor(li, msg.relid);
            get(li).upserts.set(decodeKey(msg.oldKey[cols.key] as Buffer), null);
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
    }
    for (const [li, p] of pending) {
      if (p.truncated) li.index = newIndex(li.meta);
      const del: bigint[] = [];
      const addIds: bigint[] = [];
      const addVecs: Float32Array[] = [];
      for (const [id, v] of p.upserts) {
        if (v === null || v.length !== li.meta.dim || !isIndexable(li.meta.metric, v)) del.push(id);
        else {
          addIds.push(id);
          addVecs.push(v);
        }
      }
      if (del.length) li.index.remove(BigInt64Array.from(del));
      if (addIds.length) {
        const flat = new Float32Array(addIds.length * li.meta.dim);
        addVecs.forEach((v, i) => flat.set(v, i * li.meta.dim));
        li.index.addSync(BigInt64Array.from(addIds), flat);
      }
      this.applied += del.length + addIds.length;
      li.unsaved += del.length + addIds.length + (p.truncated ? 1 : 0);
    }
  }

  private colsFor(li: LiveIndex, relid: number): { key: number; vec: number } {
    if (!li.cols) {
      const rel = this.relations.get(relid);
      if (!rel) throw new Error(`pgoutput: no Relation message for ${relid}`);
      li.cols = { key: rel.columns.indexOf(li.meta.keyColumn), vec: rel.columns.indexOf(li.meta.column) };
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

  status(): { lagBytes: bigint; lastError: string | null } {
    return { lagBytes: 0n, lastError: this.lastError?.message ?? null };
  }

  async close(): Promise<void> {
    this.closed = true;
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
  }
}

