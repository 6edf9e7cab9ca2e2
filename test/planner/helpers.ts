// A Winnow with the planner session (PlannerSession + IndexManager) in front of a fresh test database.
import pg from 'pg';
import { harness, type Harness } from '../server/helpers.ts';
import { createLogger } from '../../server/log.ts';
import { IndexManager } from '../../sync/index-manager.ts';
import { plannerSessionFactory } from '../../sql/planner/session.ts';
import { seededRandom } from '../support/random.ts';

export interface PlannerHarness extends Harness {
  mgr: IndexManager;
}

export async function plannerHarness(opts: { dataDir?: string; snapshotIntervalMs?: number; trainSampleMax?: number } = {}): Promise<PlannerHarness> {
  let target: { host: string; port: number } | null = null;
  const log = createLogger(process.env.WINNOW_TEST_LOG ?? 'silent');
  const mgr = new IndexManager({
    connection: (user, database) => ({ ...target!, user, database }),
    log,
    pollIntervalMs: 100,
    ...opts,
  });
  const h = await harness({ handlerFactory: plannerSessionFactory(mgr) });
  target = { host: h.db.host, port: h.db.port };
  const close = h.close;
  return Object.assign(h, {
    mgr,
    async close() {
      await mgr.close();
      const c = await h.direct();
      await c.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database()`).catch(() => {});
      await c.end();
      await close();
    },
  });
}

/**
 * The usual start of a planner test file: a harness, a client through Winnow with `CREATE EXTENSION
 * vector` done (`c`) and a client straight to Postgres (`d`); `end()` closes all three.
 */
export async function plannerClients(opts: Parameters<typeof plannerHarness>[0] = {}): Promise<{ h: PlannerHarness; c: pg.Client; d: pg.Client }> {
  const h = await plannerHarness(opts);
  const c = await h.client();
  const d = await h.direct();
  await c.query('CREATE EXTENSION vector');
  return { h, c, d };
}

/** Closes what plannerClients opened (any of them may be missing when beforeAll failed). */
export async function closePlannerClients(x: { h?: PlannerHarness; c?: pg.Client; d?: pg.Client }): Promise<void> {
  await x.c?.end();
  await x.d?.end();
  await x.h?.close();
}

/** A random vector as pgvector text ('[…]') and Postgres array text ('{…}'). */
export function randomVector(dim: number, rnd: () => number = Math.random): { pgv: string; arr: string; v: number[] } {
  const v = Array.from({ length: dim }, () => Math.round((rnd() * 2 - 1) * 1000) / 1000);
  return { pgv: `[${v.join(',')}]`, arr: `{${v.join(',')}}`, v };
}

/** Deterministic PRNG (mulberry32). */
export const prng = seededRandom;

/** Fills `table` (id bigint pk, cat int, v vector(dim)) with n random rows straight in Postgres. */
export async function fillTable(c: pg.Client, table: string, n: number, dim: number, seed = 1, firstId = 1): Promise<void> {
  const rnd = prng(seed);
  for (let start = 0; start < n; start += 500) {
    const rows: string[] = [];
    for (let i = start; i < Math.min(n, start + 500); i++) {
      const id = firstId + i;
      rows.push(`(${id}, ${id % 10}, '${randomVector(dim, rnd).arr}')`);
    }
    await c.query(`INSERT INTO ${table} (id, cat, v) VALUES ${rows.join(',')}`);
  }
}
