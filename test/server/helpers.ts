// Shared test helpers: a Winnow in front of a fresh database, and raw protocol sockets for bad-input tests.
import net from 'node:net';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { startWinnow, type StartOptions, type Winnow } from '../../server/index.ts';
import { createLogger } from '../../server/log.ts';

export interface Harness {
  db: TestDatabase;
  winnow: Winnow;
  /** Connection settings for clients going through Winnow. */
  conn: { host: string; port: number; user: string; database: string };
  url: string;
  /** A pg client connected directly to Postgres (admin checks). */
  direct(): Promise<pg.Client>;
  /** A pg client connected through Winnow. */
  client(): Promise<pg.Client>;
  /** Backends connected to this test database (excluding the caller). */
  backendCount(): Promise<number>;
  close(): Promise<void>;
}

export async function harness(opts: Partial<StartOptions> = {}): Promise<Harness> {
  const db = await createTestDatabase('srv');
  const winnow = await startWinnow({
    databaseUrl: db.url,
    port: 0,
    logger: createLogger(process.env.WINNOW_TEST_LOG ?? 'silent'),
    ...opts,
  });
  const conn = { host: '127.0.0.1', port: winnow.port, user: db.user, database: db.database };
  const h: Harness = {
    db,
    winnow,
    conn,
    url: `postgres://${db.user}@127.0.0.1:${winnow.port}/${db.database}`,
    async direct() {
      const c = new pg.Client({ host: db.host, port: db.port, user: db.user, database: db.database });
      await c.connect();
      return c;
    },
    async client() {
      const c = new pg.Client(conn);
      await c.connect();
      return c;
    },
    async backendCount() {
      const c = await h.direct();
      try {
        const r = await c.query(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`,
        );
        return r.rows[0].n as number;
      } finally {
        await c.end();
      }
    },
    async close() {
      await winnow.close();
      await db.drop();
    },
  };
  return h;
}

/** Polls until fn() returns true (or throws after timeoutMs). */
export async function eventually(fn: () => Promise<boolean> | boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface RawMessage {
  type: string;
  body: Buffer;
}

/** A raw protocol connection: write bytes, read framed backend messages. */
export class RawConn {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;
  readonly socket: net.Socket;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  private wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  static connect(port: number): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => resolve(new RawConn(s)));
      s.once('error', reject);
    });
  }

  /** Connects and completes startup (trust auth) for user/database. */
  static async startup(port: number, user: string, database: string): Promise<RawConn> {
    const c = await RawConn.connect(port);
    c.write(serialize.startup({ user, database }));
    await c.readUntil('Z');
    return c;
  }

  write(b: Buffer | string): void {
    if (!this.socket.destroyed) this.socket.write(b);
  }

  /** Next backend message, or null when the connection closed. */
  async read(timeoutMs = 10_000): Promise<RawMessage | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.buf.length >= 5) {
        const len = this.buf.readInt32BE(1);
        if (this.buf.length >= len + 1) {
          const m = { type: String.fromCharCode(this.buf[0]), body: this.buf.subarray(5, len + 1) };
          this.buf = this.buf.subarray(len + 1);
          return m;
        }
      }
      if (this.closed) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out reading from server');
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Reads messages until one of `type` (inclusive); returns all read. */
  async readUntil(type: string, timeoutMs = 10_000): Promise<RawMessage[]> {
    const out: RawMessage[] = [];
    for (;;) {
      const m = await this.read(timeoutMs);
      if (!m) throw new Error(`connection closed before '${type}'; got ${out.map((x) => x.type).join('')}`);
      out.push(m);
      if (m.type === type) return out;
    }
  }

  /** Reads until the server closes; returns everything read. */
  async readToEnd(timeoutMs = 10_000): Promise<RawMessage[]> {
    const out: RawMessage[] = [];
    for (;;) {
      const m = await this.read(timeoutMs);
      if (!m) return out;
      out.push(m);
    }
  }

  /** Raw bytes received so far and not yet read (e.g. the single 'N' after SSLRequest). */
  async readBytes(n: number, timeoutMs = 5000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.buf.length < n) {
      if (this.closed || Date.now() > deadline) throw new Error('no data');
      await new Promise((r) => setTimeout(r, 10));
    }
    const b = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return b;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** ErrorResponse fields by their one-letter codes. */
export function errorFields(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let p = 0;
  while (p < body.length && body[p] !== 0) {
    const end = body.indexOf(0, p + 1);
    out[String.fromCharCode(body[p])] = body.toString('utf8', p + 1, end);
    p = end + 1;
  }
  return out;
}
