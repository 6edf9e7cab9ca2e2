// Configuration from flags and environment (flags win). Every option has a WINNOW_* variable.
import path from 'node:path';

export interface WinnowConfig {
  /** Address Winnow listens on (default 127.0.0.1). */
  host: string;
  /** Port Winnow listens on (default 5433; 0 = any free port). */
  port: number;
  /** Also listen on the Unix-domain socket <dir>/.s.PGSQL.<port> (default: TCP only). */
  unixSocketDir?: string;
  /** Use this existing PostgreSQL instead of the embedded one (postgres://user@host:port/db). */
  databaseUrl?: string;
  /** Data directory for the embedded PostgreSQL (default ./.winnow). */
  dataDir: string;
  /** Port of the embedded PostgreSQL (default 0 = a free port on 127.0.0.1). */
  pgPort: number;
  /** Password of the embedded cluster's superuser 'postgres' for non-loopback clients (set at initdb). */
  pgPassword?: string;
  /** PEM certificate and key: when both are set, SSLRequest is answered with 'S' and TLS. */
  tlsCert?: string;
  tlsKey?: string;
  logLevel: string;
  /** Largest frontend message accepted (default 1 GiB - 1, like Postgres). */
  maxMessageSize?: number;
}

export const DEFAULTS: WinnowConfig = {
  host: '127.0.0.1',
  port: 5433,
  dataDir: './.winnow',
  pgPort: 0,
  logLevel: 'info',
};

/** Environment variable for each option (documented in server/README.md). */
export const ENV: Record<keyof WinnowConfig, string> = {
  host: 'WINNOW_HOST',
  port: 'WINNOW_PORT',
  unixSocketDir: 'WINNOW_UNIX_SOCKET_DIR',
  databaseUrl: 'WINNOW_DATABASE_URL',
  dataDir: 'WINNOW_DATA_DIR',
  pgPort: 'WINNOW_PG_PORT',
  pgPassword: 'WINNOW_PG_PASSWORD',
  tlsCert: 'WINNOW_TLS_CERT',
  tlsKey: 'WINNOW_TLS_KEY',
  logLevel: 'WINNOW_LOG_LEVEL',
  maxMessageSize: 'WINNOW_MAX_MESSAGE_SIZE',
};

const NUMERIC = new Set<keyof WinnowConfig>(['port', 'pgPort', 'maxMessageSize']);

function toValue(key: keyof WinnowConfig, raw: string): string | number {
  if (!NUMERIC.has(key)) return raw;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`invalid ${key}: ${raw}`);
  return n;
}

/** Merges defaults < environment < flags. */
export function resolveConfig(flags: Partial<WinnowConfig> = {}, env: NodeJS.ProcessEnv = process.env): WinnowConfig {
  const cfg: Record<string, unknown> = { ...DEFAULTS };
  for (const [key, name] of Object.entries(ENV) as [keyof WinnowConfig, string][]) {
    const v = env[name];
    if (v !== undefined && v !== '') cfg[key] = toValue(key, v);
  }
  for (const [key, v] of Object.entries(flags)) {
    if (v !== undefined) cfg[key] = typeof v === 'string' ? toValue(key as keyof WinnowConfig, v) : v;
  }
  const out = cfg as unknown as WinnowConfig;
  if ((out.tlsCert && !out.tlsKey) || (!out.tlsCert && out.tlsKey)) throw new Error('TLS needs both a certificate and a key');
  out.dataDir = path.resolve(out.dataDir);
  return out;
}
