// pgbench as a second client for bench:e2e: a C client whose own cost per query is a few
// microseconds, so its QPS shows what the server side sustains when the client is not the limit
// (node-pg spends ~250 µs of JavaScript per 512-d query; bench/results/e2e-*.md "Floor").
//
// Each query vector becomes a pgbench variable (-D qN=[…]) used by its own one-line script, so with
// -M prepared every script is a named prepared statement whose vector is a Bind parameter, as with pg.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** pgbench takes at most 128 script files. */
export const PGBENCH_MAX_SCRIPTS = 100;

export function pgbenchAvailable(): boolean {
  return spawnSync('pgbench', ['--version'], { encoding: 'utf8' }).status === 0;
}

export interface PgbenchRun { tps: number; latencyMs: number; failed: number }

/**
 * `statement(v)` is one script's SQL with `v` the variable to use for the query vector (`:q7`).
 * `options`: the connection's startup options (`-c winnow.nprobe=24 …`); `host`: an address or a Unix socket directory.
 */
export function pgbench(opts: { host?: string; port: number; user: string; password: string; database: string; vectors: string[]; statement: (v: string) => string; seconds: number; clients?: number; options?: string }): PgbenchRun {
  const dir = mkdtempSync(path.join(tmpdir(), 'winnow-pgbench-'));
  try {
    const args = ['-n', '-M', 'prepared', '-c', String(opts.clients ?? 1), '-j', String(opts.clients ?? 1), '-T', String(opts.seconds), '-h', opts.host ?? '127.0.0.1', '-p', String(opts.port), '-U', opts.user];
    opts.vectors.slice(0, PGBENCH_MAX_SCRIPTS).forEach((v, i) => {
      const file = path.join(dir, `q${i}.sql`);
      writeFileSync(file, opts.statement(`:q${i}`) + ';\n');
      args.push('-D', `q${i}=${v}`, '-f', file);
    });
    args.push(opts.database);
    const r = spawnSync('pgbench', args, { encoding: 'utf8', env: { ...process.env, PGPASSWORD: opts.password, PGOPTIONS: opts.options ?? '' }, maxBuffer: 64 << 20 });
    const out = `${r.stdout}\n${r.stderr}`;
    const tps = /^tps = ([\d.]+)/m.exec(out);
    const lat = /^latency average = ([\d.]+) ms/m.exec(out);
    if (r.status !== 0 || !tps || !lat) throw new Error(`pgbench failed (status ${r.status}): ${out.split('\n').filter((l) => /error|ERROR|FATAL/.test(l)).slice(0, 3).join(' | ') || out.slice(0, 500)}`);
    const failed = /^number of failed transactions: (\d+)/m.exec(out);
    return { tps: Number(tps[1]), latencyMs: Number(lat[1]), failed: failed ? Number(failed[1]) : 0 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
