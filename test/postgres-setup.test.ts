import { afterAll, beforeAll, expect, test } from 'vitest';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from './support/db.ts';

let db: TestDatabase;
beforeAll(async () => { db = await createTestDatabase('smoke'); });
afterAll(async () => { await db.drop(); });

test('the test run has a real PostgreSQL with logical decoding available', async () => {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  const { rows } = await c.query(`SELECT current_setting('server_version_num')::int AS v, current_setting('wal_level') AS wal`);
  await c.end();
  expect(rows[0].v).toBeGreaterThanOrEqual(170000);
  expect(rows[0].wal).toBe('logical');
});
