// Disk full while saving a snapshot: the previous snapshot stays valid and loadable, the failure is
// reported in SHOW winnow.index_status, and the next save after space returns succeeds. The data
// directory is a real 3 MB tmpfs (the test runs as root); where mounting is not permitted, the write
// failure is injected instead by putting a regular file where the snapshot directory's temp file goes.
import { afterAll, beforeAll, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { VectorIndex } from '../../native/index.ts';
import { plannerHarness, fillTable, type PlannerHarness } from '../planner/helpers.ts';

const DIM = 64;
const mnt = mkdtempSync(path.join(tmpdir(), 'winnow-full-'));
let tmpfs = false;
let h: PlannerHarness;
let c: pg.Client;

beforeAll(async () => {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mnt], { stdio: 'ignore' });
    tmpfs = true;
  } catch {
    tmpfs = false;
  }
  h = await plannerHarness({ dataDir: mnt, snapshotIntervalMs: 0 });
  c = await h.client();
});

afterAll(async () => {
  await c?.end();
  await h?.close();
  if (tmpfs) execFileSync('umount', [mnt]);
  rmSync(mnt, { recursive: true, force: true });
});

test(`a failed snapshot save keeps the previous snapshot valid`, async () => {
  await c.query('CREATE EXTENSION vector');
  await c.query(`CREATE TABLE items (id bigint PRIMARY KEY, cat int NOT NULL, v vector(${DIM}))`);
  const d = await h.direct();
  await fillTable(d, 'items', 2000, DIM, 5);
  await c.query('CREATE INDEX items_v ON items USING winnow (v vector_l2_ops)');
  await c.query('SHOW winnow.index_status'); // one poll: the first snapshot is written
  const db = await h.mgr.forDatabase(h.db.user, h.db.database);
  const li = db.indexes.get('public.items_v')!;
  const dir = db.snapshotDir(li.meta)!;
  for (let i = 0; i < 50 && li.savedLsn === 0n; i++) await new Promise((r) => setTimeout(r, 100));
  const stateBefore = readFileSync(path.join(dir, 'state.json'), 'utf8');
  const fileBefore = readFileSync(path.join(dir, 'index.winnow'));

  // Fill the disk (or inject the failure), then change the table so a save is due.
  const filler = path.join(mnt, 'filler');
  if (tmpfs) {
    try {
      writeFileSync(filler, Buffer.alloc(3 * 1024 * 1024));
    } catch { /* ENOSPC: the disk is full, as intended */ }
  } else {
    mkdirSync(path.join(dir, `index.winnow.tmp-${process.pid}`), { recursive: true });
  }
  await fillTable(d, 'items', 500, DIM, 6, 5000);
  const errorsBefore = db.saveErrors;
  for (let i = 0; i < 50 && db.saveErrors === errorsBefore; i++) {
    await c.query('SHOW winnow.index_status');
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(db.saveErrors).toBeGreaterThan(errorsBefore);
  const status = (await c.query('SHOW winnow.index_status')).rows[0];
  expect(Number(status.snapshot_errors)).toBeGreaterThan(0);
  expect(Number(status.rows)).toBe(2500);
  // The previous snapshot is untouched and loads.
  expect(readFileSync(path.join(dir, 'state.json'), 'utf8')).toBe(stateBefore);
  expect(readFileSync(path.join(dir, 'index.winnow')).equals(fileBefore)).toBe(true);
  const old = await VectorIndex.load(dir);
  expect(old.size).toBe(2000);

  // Space is back: the next save succeeds and includes the new rows.
  rmSync(filler, { force: true });
  rmSync(path.join(dir, `index.winnow.tmp-${process.pid}`), { recursive: true, force: true });
  for (let i = 0; i < 50 && readFileSync(path.join(dir, 'state.json'), 'utf8') === stateBefore; i++) {
    await c.query('SHOW winnow.index_status');
    await new Promise((r) => setTimeout(r, 100));
  }
  expect((await VectorIndex.load(dir)).size).toBe(2500);
  expect(readdirSync(dir).sort()).toEqual(['index.winnow', 'state.json']);
  console.log(tmpfs ? 'disk full simulated with a 3 MB tmpfs' : 'mount not permitted: write failure injected');
  await d.end();
});
