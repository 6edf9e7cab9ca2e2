// Differential suite: every statement of test/sql/corpus.sql runs through Winnow over the wire (the
// run's embedded Postgres, no pgvector, Winnow's migrations + translation) and through real pgvector
// 0.8.0 in PGlite. Rows and values must agree (floats within 1e-6 relative), errors must agree on
// SQLSTATE and message (and DETAIL where pgvector gives one). Statements marked '-- @difference'
// are deliberate differences listed in sql/README.md. SELECTs are also run a second time over the
// extended protocol (named prepared statement) against the same expected result.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, test } from 'vitest';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite/vector';
import { startWinnow, type Winnow } from '../../server/index.ts';
import { vectorSessionFactory } from '../../sql/vector-session.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

const here = path.dirname(fileURLToPath(import.meta.url));

interface Entry {
  sql: string;
  difference?: string;
  /** '-- @params [...]' (JSON): run with these parameters (extended protocol, unspecified types). */
  params?: unknown[];
  line: number;
}

export function loadCorpus(file = path.join(here, 'corpus.sql')): Entry[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const out: Entry[] = [];
  let buf: string[] = [];
  let difference: string | undefined;
  let params: unknown[] | undefined;
  let start = 0;
  lines.forEach((line, i) => {
    if (buf.length === 0) {
      const m = /^--\s*@difference\s+(.*)$/.exec(line);
      if (m) {
        difference = m[1];
        return;
      }
      const pm = /^--\s*@params\s+(.*)$/.exec(line);
      if (pm) {
        params = JSON.parse(pm[1]) as unknown[];
        return;
      }
      if (line.startsWith('--') || line.trim() === '') return;
      start = i + 1;
    }
    buf.push(line);
    if (line.trimEnd().endsWith(';')) {
      out.push({ sql: buf.join('\n'), difference, params, line: start });
      buf = [];
      difference = undefined;
      params = undefined;
    }
  });
  return out;
}

type Outcome =
  | { ok: true; rows: (string | null)[][] }
  | { ok: false; code: string; message: string; detail?: string };

const identity = (x: string) => x;
const pgTypes = { getTypeParser: () => identity } as unknown as pg.CustomTypesConfig;
const rawParsers = new Proxy({}, { get: () => identity, has: () => true }) as Record<number, (x: string) => string>;

function asText(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return v;
  // PGlite parses some types whatever the parsers say: print them back in Postgres's text format.
  if (typeof v === 'boolean') return v ? 't' : 'f';
  if (Array.isArray(v)) {
    return `{${v.map((x) => {
      if (x === null) return 'NULL';
      if (Array.isArray(x)) return asText(x);
      const t = asText(x)!;
      return /^$|[{}",\\\s]|^null$/i.test(t) ? `"${t.replace(/["\\]/g, '\\$&')}"` : t;
    }).join(',')}}`;
  }
  return String(v);
}

function close(a: string, b: string): boolean {
  if (a === b) return true;
  const na = Number(a);
  const nb = Number(b);
  if (a.trim() !== '' && b.trim() !== '' && !Number.isNaN(na) && !Number.isNaN(nb)) {
    if (na === nb) return true;
    return Math.abs(na - nb) <= 1e-6 * Math.max(Math.abs(na), Math.abs(nb));
  }
  // vectors / arrays: compare element-wise
  const va = /^[[{](.*)[\]}]$/.exec(a);
  const vb = /^[[{](.*)[\]}]$/.exec(b);
  if (va && vb && a[0] === b[0]) {
    const xa = va[1].split(',');
    const xb = vb[1].split(',');
    return xa.length === xb.length && xa.every((x, i) => close(x, xb[i]));
  }
  return false;
}

function same(a: Outcome, b: Outcome): string | null {
  if (a.ok !== b.ok) {
    return `winnow ${a.ok ? 'succeeded' : `failed ${(a as any).code} ${(a as any).message}`}, pgvector ${b.ok ? 'succeeded' : `failed ${(b as any).code} ${(b as any).message}`}`;
  }
  if (!a.ok && !b.ok) {
    if (a.code !== b.code || a.message !== b.message) return `error: winnow ${a.code} "${a.message}" vs pgvector ${b.code} "${b.message}"`;
    if (b.detail && a.detail !== b.detail) return `detail: winnow "${a.detail}" vs pgvector "${b.detail}"`;
    return null;
  }
  const ra = (a as { rows: (string | null)[][] }).rows;
  const rb = (b as { rows: (string | null)[][] }).rows;
  if (ra.length !== rb.length) return `row count ${ra.length} vs ${rb.length}`;
  for (let i = 0; i < ra.length; i++) {
    if (ra[i].length !== rb[i].length) return `row ${i} width ${ra[i].length} vs ${rb[i].length}`;
    for (let j = 0; j < ra[i].length; j++) {
      const x = ra[i][j];
      const y = rb[i][j];
      if (x === null || y === null) {
        if (x !== y) return `row ${i} col ${j}: ${x} vs ${y}`;
      } else if (!close(x, y)) return `row ${i} col ${j}: ${x} vs ${y}`;
    }
  }
  return null;
}

let db: TestDatabase;
let winnow: Winnow;
let client: pg.Client;
let lite: PGlite;

beforeAll(async () => {
  db = await createTestDatabase('diff');
  winnow = await startWinnow({ databaseUrl: db.url, port: 0, host: '127.0.0.1', handlerFactory: vectorSessionFactory, logLevel: 'warn' } as never);
  client = new pg.Client({ host: '127.0.0.1', port: winnow.port, user: 'postgres', database: db.database, types: pgTypes });
  await client.connect();
  lite = new PGlite({ extensions: { vector } });
  await lite.waitReady;
});

afterAll(async () => {
  await client?.end();
  await winnow?.close();
  await lite?.close();
  await db?.drop();
});

async function viaWinnow(sql: string, name?: string, params?: unknown[]): Promise<Outcome> {
  try {
    const r = await client.query({ text: sql, rowMode: 'array', ...(name ? { name } : {}), ...(params ? { values: params } : {}) } as pg.QueryConfig);
    const last = Array.isArray(r) ? r[r.length - 1] : r;
    return { ok: true, rows: (last.rows ?? []).map((row: unknown[]) => row.map(asText)) };
  } catch (err) {
    const e = err as { code?: string; message: string; detail?: string };
    if (!e.code) throw err;
    return { ok: false, code: e.code, message: e.message, detail: e.detail };
  }
}

async function viaPgvector(sql: string, params: unknown[] = []): Promise<Outcome> {
  try {
    const r = await lite.query(sql, params, { rowMode: 'array', parsers: rawParsers });
    return { ok: true, rows: (r.rows as unknown[][]).map((row) => row.map(asText)) };
  } catch (err) {
    const e = err as { code?: string; message: string; detail?: string };
    if (!e.code) throw err;
    return { ok: false, code: e.code, message: e.message, detail: e.detail };
  }
}

test('corpus: Winnow agrees with pgvector 0.8.0', { timeout: 170_000 }, async () => {
  const corpus = loadCorpus();
  expect(corpus.length).toBeGreaterThanOrEqual(300);
  const mismatches: string[] = [];
  const listed: string[] = [];
  let matches = 0;
  let extended = 0;
  let withParams = 0;
  let n = 0;
  let inTx = false;
  for (const e of corpus) {
    n++;
    const expected = await viaPgvector(e.sql, e.params);
    const got = await viaWinnow(e.sql, undefined, e.params);
    if (e.params) withParams++;
    let diff = same(got, expected);
    const upper = e.sql.trim().toUpperCase();
    if (/^BEGIN/.test(upper)) inTx = true;
    if (/^(COMMIT|ROLLBACK)/.test(upper)) inTx = false;
    // Extended protocol: re-run read-only statements as a named prepared statement.
    if (diff === null && !inTx && /^SELECT/.test(upper) && !/\bnextval\b/i.test(e.sql)) {
      const again = await viaWinnow(e.sql, `diff_${n}`, e.params);
      const d2 = same(again, expected);
      if (d2) diff = `extended protocol: ${d2}`;
      else extended++;
    }
    if (e.difference) {
      listed.push(`line ${e.line}: ${e.sql} -- ${e.difference}${diff ? ` (differs: ${diff})` : ' (now agrees)'}`);
      continue;
    }
    if (diff) mismatches.push(`line ${e.line}: ${e.sql}\n    ${diff}`);
    else matches++;
  }
  const report = [
    `# Differential results (Winnow vs pgvector 0.8.0 in PGlite)`,
    ``,
    `statements: ${corpus.length} (${withParams} with bound parameters); matching: ${matches}; also matched over the extended protocol (named prepared statement): ${extended}; listed differences: ${listed.length}; unexpected mismatches: ${mismatches.length}`,
    ``,
    `## Listed differences`,
    ...listed.map((l) => `- ${l}`),
    ``,
    `## Unexpected mismatches`,
    ...mismatches.map((m) => `- ${m}`),
    ``,
  ].join('\n');
  // The committed report is refreshed on request only, so a test run leaves the tree clean.
  if (process.env.WINNOW_WRITE_DIFF_REPORT) writeFileSync(path.join(here, 'differential-results.md'), report);
  console.log(report);
  expect(mismatches).toEqual([]);
});
