// Programmatic entry point: startWinnow(config) → { host, port, close() }. Used by the CLI, tests and benchmarks.
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { loadParser } from '../sql/parse.ts';
import type { BackendTarget } from './backend.ts';
import { resolveConfig, type WinnowConfig } from './config.ts';
import { startEmbeddedPostgres, type EmbeddedCluster } from './embedded-postgres.ts';
import { Listener, isLoopback } from './listener.ts';
import { createLogger } from './log.ts';
import type { StatementHandlerFactory } from './session.ts';

export type { WinnowConfig } from './config.ts';
export type { StatementHandler, StatementHandlerFactory, SessionContext, FrontendAction, PreparedStatement } from './session.ts';

export interface StartOptions extends Partial<WinnowConfig> {
  logger?: Logger;
  /** Per-session hooks (the seam for the SQL/planner issues). */
  handlerFactory?: StatementHandlerFactory;
}

export interface Winnow {
  host: string;
  port: number;
  /** The Unix-domain socket Winnow also listens on (config.unixSocketDir), else null. */
  socketPath: string | null;
  config: WinnowConfig;
  /** Where sessions connect: the embedded cluster (if Winnow started one) or --database-url. */
  postgres: { host: string; port: number; embedded: boolean; socketDir?: string };
  /** Number of open client sessions. */
  sessionCount(): number;
  /** Closes every session, stops listening and stops the embedded PostgreSQL if Winnow started it. */
  close(): Promise<void>;
}

function targetFromUrl(url: string): BackendTarget {
  const u = new URL(url);
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new Error(`unsupported database URL ${u.protocol}`);
  const host = u.searchParams.get('host') ?? decodeURIComponent(u.hostname || 'localhost');
  const port = Number(u.port || 5432);
  if (host.startsWith('/')) return { path: `${host}/.s.PGSQL.${port}` };
  return { host, port };
}

export async function startWinnow(options: StartOptions = {}): Promise<Winnow> {
  const { logger, handlerFactory, ...flags } = options;
  const config = resolveConfig(flags);
  const log = logger ?? createLogger(config.logLevel);
  await loadParser();

  let cluster: EmbeddedCluster | null = null;
  let targetFor: (remote: string | undefined) => BackendTarget;
  let pgInfo: Winnow['postgres'];
  if (config.databaseUrl) {
    const target = targetFromUrl(config.databaseUrl);
    targetFor = () => target;
    pgInfo = 'path' in target ? { host: target.path, port: 0, embedded: false } : { host: target.host, port: target.port, embedded: false };
  } else {
    cluster = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.pgPort, password: config.pgPassword, log });
    const c = cluster;
    targetFor = (remote) => (isLoopback(remote) ? c.socketTarget : c.tcpTarget);
    pgInfo = { host: '127.0.0.1', port: c.port, embedded: true, socketDir: c.socketDir };
  }

  const listener = new Listener({
    host: config.host,
    port: config.port,
    unixSocketDir: config.unixSocketDir,
    log,
    targetFor,
    handlerFactory,
    maxMessageSize: config.maxMessageSize,
    tls: config.tlsCert && config.tlsKey ? { cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey) } : undefined,
  });
  let addr: { host: string; port: number };
  try {
    addr = await listener.listen();
  } catch (err) {
    await cluster?.stop();
    throw err;
  }
  log.info({ host: addr.host, port: addr.port, socket: listener.socketPath ?? undefined, postgres: pgInfo, tls: Boolean(config.tlsCert) }, 'winnow listening');

  let closing: Promise<void> | null = null;
  return {
    host: addr.host,
    port: addr.port,
    socketPath: listener.socketPath,
    config,
    postgres: pgInfo,
    sessionCount: () => listener.sessions.size,
    close() {
      closing ??= (async () => {
        await listener.close();
        await cluster?.stop();
        log.info('winnow stopped');
      })();
      return closing;
    },
  };
}
