import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';

export interface TestDatabase {
  host: string;
  port: number;
  user: string;
  database: string;
  /** postgres://… URL of this database on the real test PostgreSQL. */
  url: string;
  drop(): Promise<void>;
}

/**
 * A fresh database on the run's real PostgreSQL, so test files running in
 * parallel never see each other's tables.
 */
export async function createTestDatabase(prefix = 't'): Promise<TestDatabase> {
  const port = inject('pgPort');
  const host = '127.0.0.1';
  const user = 'postgres';
  const database = `${prefix}_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ host, port, user, database: 'postgres' });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${database}`);
  } finally {
    await admin.end();
  }
  return {
    host,
    port,
    user,
    database,
    url: `postgres://${user}@${host}:${port}/${database}`,
    async drop() {
      const c = new pg.Client({ host, port, user, database: 'postgres' });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}
