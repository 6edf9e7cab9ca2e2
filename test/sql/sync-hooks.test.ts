// Plain statements must not go through a Promise: an async hook makes the session flush, pause the
// client and send the rest of the batch in separate writes (bench:passthrough measured ~0.6x direct).
import { beforeAll, describe, expect, it } from 'vitest';
import { serialize } from 'pg-protocol';
import { loadParser, parseStatement } from '../../sql/parse.ts';
import { PlannerSession } from '../../sql/planner/session.ts';
import type { SessionContext } from '../../server/session.ts';
import type { IndexManager } from '../../sync/index-manager.ts';

function fakeCtx(vectorTypes: boolean): { ctx: SessionContext; queries: string[] } {
  const queries: string[] = [];
  const ctx = {
    id: 1, params: { user: 'u', database: 'd' }, transactionStatus: 'I', preparedStatements: new Map(),
    log: { warn() {}, debug() {}, info() {}, error() {} },
    respond() {},
    async query(text: string) {
      queries.push(text);
      const rows = vectorTypes && text.includes('pg_type') ? [['90001', 'vector', '90002']] : [];
      return { fields: [], rows, commandTags: [] };
    },
  } as unknown as SessionContext;
  return { ctx, queries };
}

const mgr = { forDatabase: async () => ({ indexes: new Map(), findByName: () => undefined }) } as unknown as IndexManager;
const SQL = 'SELECT id, name FROM bench_items WHERE id = $1';
const parse = (name: string, text: string) => ({ name, text, paramTypes: [], parsed: parseStatement(text), frame: serialize.parse({ name, text, types: [] }) });
const isPromise = (x: unknown) => !!x && typeof (x as Promise<unknown>).then === 'function';

describe('handler stack answers plain statements synchronously', () => {
  beforeAll(loadParser);

  it('without vector types: Parse/Bind/Describe/Sync and simple Query return undefined, not a Promise, once the types are known', async () => {
    const { ctx, queries } = fakeCtx(false);
    const s = new PlannerSession(mgr);
    // First statement: the vector types are looked up once (asynchronously).
    const first = s.onParse(ctx, parse('', SQL));
    expect(isPromise(first)).toBe(true);
    expect(await first).toBeUndefined();
    expect(queries.length).toBe(1);
    const again = s.onParse(ctx, parse('', SQL));
    expect(again).toBeUndefined();
    const bind = s.onBind(ctx, serialize.bind({ portal: '', statement: '', values: ['7'] }));
    expect(bind).toBeUndefined();
    expect(s.onDescribe(ctx, serialize.describe({ type: 'P', name: '' }))).toBeUndefined();
    expect(s.onSync(ctx, serialize.sync())).toBeUndefined();
    const text = 'SELECT id FROM bench_items WHERE id = 12345';
    const q = s.onQuery(ctx, { text, parsed: parseStatement(text), frame: serialize.query(text) });
    expect(q).toBeUndefined();
    expect(queries.length).toBe(1);
  });

  it('with vector types: a cached statement still injects its Describe synchronously, and DDL stays on the async path', async () => {
    const { ctx, queries } = fakeCtx(true);
    const s = new PlannerSession(mgr);
    const text = 'SELECT id FROM bench_items WHERE id = 1';
    const first = s.onParse(ctx, parse('s1', text));
    expect(isPromise(first)).toBe(true); // types and the table are looked up
    await first;
    const n = queries.length;
    const again = s.onParse(ctx, parse('s1', text));
    expect(isPromise(again)).toBe(false);
    const fwd = (again as { forward: Buffer[] }).forward;
    expect(fwd.map((b) => String.fromCharCode(b[0]))).toEqual(['P', 'D']);
    expect(queries.length).toBe(n);
    const ddl = 'ALTER TABLE bench_items ADD COLUMN v vector(3)';
    expect(isPromise(s.onQuery(ctx, { text: ddl, parsed: parseStatement(ddl), frame: serialize.query(ddl) }))).toBe(true);
  });
});
