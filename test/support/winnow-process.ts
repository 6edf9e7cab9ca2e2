// The real CLI (`bin/winnow.js serve …`) as a child process, for tests of start-up, shutdown and crashes.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface WinnowProcess {
  child: ChildProcess;
  /** The port from the psql line Winnow prints once it is ready. */
  port: number;
  exited: Promise<number | null>;
  stderr(): string;
}

/** Starts `winnow serve ARGS` and resolves once it prints its psql line (rejects if it exits first). */
export async function spawnWinnow(args: string[], env: Record<string, string> = {}): Promise<WinnowProcess> {
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin/winnow.js'), 'serve', ...args], {
    cwd: repoRoot,
    env: { ...process.env, WINNOW_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`winnow did not start:\n${out}\n${err}`)), 60_000);
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /psql "postgres:\/\/[^@]+@127\.0\.0\.1:(\d+)\//.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    });
    child.on('exit', () => reject(new Error(`winnow exited:\n${out}\n${err}`)));
  });
  return { child, port, exited, stderr: () => err };
}
