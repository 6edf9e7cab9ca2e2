// The StatementHandler seam: answering a query in Winnow, rewriting a query, rewriting backend messages,
// and running internal queries on the session's own backend connection — with real clients.
import { serialize } from 'pg-protocol';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CommandComplete, DataRow, RowDescription, decodeDataRow, decodeRowDescription, B,
} from '../../server/protocol/messages.ts';
import type { StatementHandler } from '../../server/session.ts';
import { sharedParseCache } from '../../sql/parse.ts';
import { RawConn, harness, type Harness } from './helpers.ts';

let h: Harness;
const seen: string[] = [];
const probes: (string | undefined)[] = [];

function handler(): StatementHandler {
  let shoutColumn = -1;
  return {
    onQuery(ctx, q) {
      if (q.parsed.ok) seen.push(q.parsed.statements.map((s) => s.kind).join(','));
      else seen.push('parse-error');
      if (q.text === 'SHOW winnow_version') {
        return {
          respond: [RowDescription([{ name: 'winnow_version', typeOid: 25 }]), DataRow(['0.1.0']), CommandComplete('SHOW')],
        };
      }
      if (q.text === 'SELECT winnow_throw()') throw new Error('boom (sync)');
      if (q.text === 'SELECT winnow_reject()') return Promise.reject(new Error('boom (async)'));
      if (q.text === 'SELECT winnow_rewrite()') return { forward: [serialize.query('SELECT 7 AS rewritten')] };
      if (q.text === 'SELECT winnow_sync_probe()') {
        // ctx.query called synchronously inside the hook, while earlier pipelined queries are still being framed
        const p = ctx.query('SELECT 5');
        return p.then((r) => ({ respond: [RowDescription([{ name: 'v', typeOid: 25 }]), DataRow([r.rows[0][0]]), CommandComplete('SELECT 1')] }));
      }
      if (q.text === 'SELECT winnow_whoami()') {
        return ctx.query('SELECT current_user AS u, pg_backend_pid() AS pid').then((r) => ({
          respond: [
            RowDescription([{ name: 'u', typeOid: 25 }, { name: 'pid', typeOid: 23 }]),
            DataRow([r.rows[0][0], r.rows[0][1]]),
            CommandComplete('SELECT 1'),
          ],
        }));
      }
      return undefined;
    },
    async onParse(ctx, p) {
      if (p.text.includes('hook_throws')) throw new Error('boom (parse)');
      if (!p.text.includes('probe_me')) return undefined;
      const r = await ctx.query('SELECT 1');
      probes.push(r.error?.code ?? r.rows[0][0] ?? undefined);
      return undefined;
    },
    onBackendMessage(_ctx, frame) {
      if (frame[0] === B.RowDescription) {
        shoutColumn = decodeRowDescription(frame).findIndex((f) => f.name === 'shout');
      } else if (frame[0] === B.DataRow && shoutColumn >= 0) {
        const vals = decodeDataRow(frame);
        return DataRow(vals.map((v, i) => (i === shoutColumn && v ? v.toString().toUpperCase() : v)));
      } else if (frame[0] === B.CommandComplete) {
        shoutColumn = -1;
      }
      return undefined;
    },
  };
}

beforeAll(async () => {
  h = await harness({ handlerFactory: handler });
});
afterAll(async () => {
  await h?.close();
});

describe('StatementHandler hooks', () => {
  it('every Query is parsed with libpg-query (cached), and parse failures pass through to Postgres', async () => {
    const c = await h.client();
    await c.query('SELECT 1; CREATE TEMP TABLE x (a int)');
    const misses = sharedParseCache.misses;
    await c.query('SELECT 1; CREATE TEMP TABLE y (a int)');
    await c.query('SELECT 1; CREATE TEMP TABLE y2 (a int)');
    await c.query('SELECT 1 AS same');
    await c.query('SELECT 1 AS same');
    expect(sharedParseCache.misses - misses).toBe(3);
    expect(seen).toContain('SelectStmt,CreateStmt');
    const err = await c.query('SELEC 1').catch((e) => e);
    expect(err.code).toBe('42601');
    expect(err.position).toBe('1');
    expect(seen.at(-1)).toBe('parse-error');
    await c.end();
  });

  it('answers a query itself with the right transaction status', async () => {
    const c = await h.client();
    expect((await c.query('SHOW winnow_version')).rows).toEqual([{ winnow_version: '0.1.0' }]);
    await c.query('BEGIN');
    expect((await c.query('SHOW winnow_version')).rows).toEqual([{ winnow_version: '0.1.0' }]);
    await c.query('ROLLBACK');
    const raw = await RawConn.startup(h.conn.port, h.conn.user, h.conn.database);
    // Pipelined: the local answer is delivered in order between backend answers.
    raw.write(Buffer.concat([serialize.query('BEGIN'), serialize.query('SELECT pg_sleep(0.2)'), serialize.query('SHOW winnow_version'), serialize.query('SELECT 2')]));
    const ms: string[] = [];
    for (let i = 0; i < 4; i++) {
      const part = await raw.readUntil('Z');
      ms.push(part.map((m) => m.type).join('') + part.at(-1)!.body.toString());
    }
    expect(ms).toEqual(['CZT', 'TDCZT', 'TDCZT', 'TDCZT']);
    raw.destroy();
    await c.end();
  });

  it('rewrites a query and rewrites backend rows', async () => {
    const c = await h.client();
    expect((await c.query('SELECT winnow_rewrite()')).rows).toEqual([{ rewritten: 7 }]);
    expect((await c.query(`SELECT 'quiet' AS shout, 'quiet' AS calm`)).rows).toEqual([{ shout: 'QUIET', calm: 'quiet' }]);
    await c.end();
  });

  it('internal queries keep their place behind pipelined client messages', async () => {
    const raw = await RawConn.startup(h.conn.port, h.conn.user, h.conn.database);
    raw.write(Buffer.concat([serialize.query('SELECT 1'), serialize.query('SELECT 2'), serialize.query('SELECT winnow_sync_probe()'), serialize.query('SELECT 3')]));
    const vals: string[] = [];
    for (let i = 0; i < 4; i++) {
      const part = await raw.readUntil('Z');
      const d = part.find((m) => m.type === 'D')!;
      vals.push(d.body.subarray(6).toString());
    }
    expect(vals).toEqual(['1', '2', '5', '3']);
    raw.destroy();
  });

  it('an internal query from a hook inside an open extended batch fails fast instead of deadlocking', async () => {
    const raw = await RawConn.startup(h.conn.port, h.conn.user, h.conn.database);
    probes.length = 0;
    raw.write(
      Buffer.concat([
        serialize.parse({ name: 'a', text: 'SELECT 1 AS probe_me' }),
        serialize.bind({ statement: 'a' }),
        serialize.execute({}),
        serialize.parse({ name: 'b', text: 'SELECT 2 AS probe_me' }), // mid-batch: the Sync is behind this hook
        serialize.bind({ statement: 'b' }),
        serialize.execute({}),
        serialize.sync(),
      ]),
    );
    const ms = await raw.readUntil('Z');
    expect(ms.map((m) => m.type).join('')).toBe('12DC12DCZ');
    expect(probes).toEqual(['1', '0A000']);
    raw.destroy();
  });

  it('runs an internal query on the session\'s own backend connection (async hook)', async () => {
    const c = await h.client();
    const pid = (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    const r = await c.query('SELECT winnow_whoami()');
    expect(r.rows[0]).toEqual({ u: h.conn.user, pid });
    await c.end();
    const sql = postgres({ ...h.conn, username: h.conn.user, max: 1 });
    const [a, b, d] = await Promise.all([sql`SELECT 1 AS a`, sql.unsafe('SELECT winnow_whoami()'), sql`SELECT 3 AS d`]);
    expect(a[0].a).toBe(1);
    expect(b[0].u).toBe(h.conn.user);
    expect(d[0].d).toBe(3);
    await sql.end();
  });

  it('a hook that throws gives the client an ErrorResponse, aborts like any error, and the session goes on', async () => {
    const c = await h.client();
    await c.query('CREATE TEMP TABLE t (a int)');
    await expect(c.query('SELECT winnow_throw()')).rejects.toMatchObject({ code: 'XX000', message: 'internal error in Winnow: boom (sync)' });
    await expect(c.query('SELECT winnow_reject()')).rejects.toMatchObject({ code: 'XX000', message: 'internal error in Winnow: boom (async)' });
    expect((await c.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    // In a transaction block the failure aborts the transaction, as a Postgres error would.
    await c.query('BEGIN');
    await c.query('INSERT INTO t VALUES (1)');
    await expect(c.query('SELECT winnow_throw()')).rejects.toMatchObject({ code: 'XX000' });
    await expect(c.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' });
    await c.query('ROLLBACK');
    // Extended protocol: the batch's earlier INSERT is rolled back with it, the rest skipped up to Sync.
    const raw = await RawConn.startup(h.conn.port, h.conn.user, h.conn.database);
    raw.write(Buffer.concat([serialize.query('CREATE TABLE IF NOT EXISTS hook_t (a int)'), serialize.query('TRUNCATE hook_t')]));
    await raw.readUntil('Z');
    await raw.readUntil('Z');
    raw.write(
      Buffer.concat([
        serialize.parse({ text: 'INSERT INTO hook_t VALUES (1)' }),
        serialize.bind({}),
        serialize.execute({}),
        serialize.parse({ name: 'x', text: 'SELECT 1 AS hook_throws' }),
        serialize.bind({ statement: 'x' }),
        serialize.execute({}),
        serialize.sync(),
        serialize.query('SELECT count(*) FROM hook_t'),
      ]),
    );
    const batch = await raw.readUntil('Z');
    expect(batch.map((m) => m.type).join('')).toBe('12CEZ');
    expect(batch.find((m) => m.type === 'E')!.body.toString()).toContain('internal error in Winnow: boom (parse)');
    const count = await raw.readUntil('Z');
    expect(count.find((m) => m.type === 'D')!.body.subarray(6).toString()).toBe('0');
    raw.destroy();
    expect((await c.query('SELECT 2 AS ok')).rows).toEqual([{ ok: 2 }]);
    await c.end();
  });
});
