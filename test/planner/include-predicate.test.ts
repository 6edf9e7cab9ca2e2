// The INCLUDE-column predicate compiler (sql/planner/include-predicate.ts) against Postgres itself:
// the same rows (with NULLs, NaN, padding, int8 beyond 2^53) are stored in a real table and in a
// small in-memory store implementing IncludeStore's interface; every eligible WHERE clause must
// select exactly the ids Postgres selects, and ineligible ones must be refused.
import { afterAll, beforeAll, expect, test } from 'vitest';
import pg from 'pg';
import { loadParser, parseStatement } from '../../sql/parse.ts';
import { compileIncludePredicate, includeIneligibility, type IncludeColumns } from '../../sql/planner/include-predicate.ts';
import type { IncludeValue } from '../../sync/include-store.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { seededRandom } from '../support/random.ts';

/** A minimal IncludeStore: rows in a Map, `matching` scans them in id order. */
class FakeIncludeStore implements IncludeColumns {
  readonly columns: readonly string[];
  private rows = new Map<bigint, IncludeValue[]>();
  constructor(private defs: { name: string; type: string }[]) {
    this.columns = defs.map((d) => d.name);
  }
  typeOf(column: string): string {
    const d = this.defs.find((x) => x.name === column);
    if (!d) throw new Error(`no column ${column}`);
    return d.type;
  }
  set(id: bigint, values: IncludeValue[]) { this.rows.set(id, values); }
  value(id: bigint, column: string): IncludeValue | undefined {
    return this.rows.get(id)?.[this.columns.indexOf(column)];
  }
  matching(pred: (get: (column: string) => IncludeValue) => boolean): BigInt64Array {
    const ids = [...this.rows.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return BigInt64Array.from(ids.filter((id) => pred((c) => this.rows.get(id)![this.columns.indexOf(c)])));
  }
  get size() { return this.rows.size; }
}

const DEFS = [
  { name: 'i', type: 'int4' }, { name: 'b', type: 'int8' }, { name: 'f', type: 'float8' }, { name: 'r', type: 'float4' },
  { name: 'n', type: 'numeric' }, { name: 't', type: 'text' }, { name: 'c', type: 'bpchar' }, { name: 'ok', type: 'bool' },
];
let db: TestDatabase;
let d: pg.Client;
const store = new FakeIncludeStore(DEFS);

beforeAll(async () => {
  await loadParser();
  db = await createTestDatabase('incl');
  d = new pg.Client({ host: db.host, port: db.port, user: db.user, database: db.database });
  await d.connect();
  await d.query(`CREATE TABLE t (id bigint PRIMARY KEY, i int4, b int8, f float8, r float4, n numeric, t text, c char(4), ok bool)`);
  const rnd = seededRandom(5);
  const pick = <T,>(xs: T[]) => xs[Math.floor(rnd() * xs.length)];
  const rows: string[] = [];
  for (let id = 1; id <= 400; id++) {
    const nul = () => rnd() < 0.12;
    const i = nul() ? null : Math.floor(rnd() * 20) - 5;
    const b = nul() ? null : pick([0n, 1n, -7n, 9007199254740993n, 9007199254740992n, 123n]);
    const f = nul() ? null : pick([0, 0.1, -2.5, 3, 1e10, NaN, 7.25]);
    const r = nul() ? null : pick([0.1, 1.5, -3, 2]);
    const n = nul() ? null : pick(['0.1', '2', '-3.75', '100']);
    const t = nul() ? null : pick(['a', 'b', 'noun', 'verb', '', "it's"]);
    const c = nul() ? null : pick(['ab', 'ab  ', 'x', '']);
    const ok = nul() ? null : rnd() < 0.5;
    rows.push(`(${id}, ${i ?? 'NULL'}, ${b ?? 'NULL'}, ${f === null ? 'NULL' : `'${f}'`}, ${r ?? 'NULL'}, ${n ?? 'NULL'}, ${t === null ? 'NULL' : `'${t.replace(/'/g, "''")}'`}, ${c === null ? 'NULL' : `'${c}'`}, ${ok ?? 'NULL'})`);
  }
  await d.query(`INSERT INTO t VALUES ${rows.join(',')}`);
  // The store is filled from what Postgres holds (as the include store is, from the table).
  const all = await d.query({ text: `SELECT id::text, i, b::text, f, r, n::text, t, c, ok FROM t`, rowMode: 'array' });
  for (const row of all.rows as unknown[][]) {
    store.set(BigInt(row[0] as string), [
      row[1] as number | null, row[2] === null ? null : BigInt(row[2] as string), row[3] === null ? null : Number(row[3]),
      row[4] === null ? null : Number(row[4]), row[5] === null ? null : Number(row[5]), row[6] as string | null, row[7] as string | null, row[8] as boolean | null,
    ]);
  }
});

afterAll(async () => {
  await d?.end();
  await db?.drop();
});

function whereNode(where: string) {
  const p = parseStatement(`SELECT 1 FROM t x WHERE ${where}`);
  if (!p.ok) throw new Error(p.error.message);
  return (p.statements[0].stmt as any).SelectStmt.whereClause;
}

const ELIGIBLE = [
  'i = 3', 'i <> 3', 'i < 0', 'i <= 0', '3 > i', 'i >= 10', "i = '4'", 'i = 4.0', 'i < 2.5', 'x.i = 1',
  'b = 9007199254740993', 'b > 9007199254740992', 'b = -7', 'b < 1', 'b IN (0, 123)', 'b = 123::int8',
  "f = 'NaN'", "f > 1e9", "f = 0.1", 'f < 0', "f <> 'NaN'::float8", 'f BETWEEN -3 AND 3',
  "r = '0.1'", 'r = 0.1', 'r = 0.1::float4', 'r >= 1.5', 'n = 0.1', 'n < 0', "n = '2'",
  "t = 'noun'", "t <> 'noun'", "t IN ('a', 'b', NULL)", "t NOT IN ('a', 'b')", "t NOT IN ('a', NULL)", "t = ''", "t = 'it''s'", "t = 'verb'::text", "t = 'verb'::varchar",
  "c = 'ab'", "c = 'ab  '", "c = ''", "c <> 'x'",
  'ok', 'NOT ok', 'ok = true', "ok = 't'", 'ok IS TRUE', 'ok IS NOT TRUE', 'ok IS FALSE', 'ok IS NOT FALSE', 'ok IS UNKNOWN', 'ok IS NOT UNKNOWN',
  'i IS NULL', 't IS NOT NULL', 'i BETWEEN 0 AND 5', 'i NOT BETWEEN 0 AND 5', 'i BETWEEN SYMMETRIC 5 AND 0', 'i NOT BETWEEN SYMMETRIC 5 AND 0',
  "i = 3 OR t = 'a'", "NOT (i = 3 OR t = 'a')", "(i > 0 AND ok) OR (b = 123 AND NOT ok)", "NOT (i > 0 AND t IN ('a', 'noun'))",
  'i IS DISTINCT FROM 3', 'i IS NOT DISTINCT FROM 3', 'i IS DISTINCT FROM NULL', 'i = NULL', 'NOT (i = NULL)', 'i = b', 'i < f',
  'true', 'NOT false', "ok AND i IN (1, 2, 3) AND t <> 'b'",
];

test('eligible predicates select exactly the rows Postgres selects (three-valued logic)', async () => {
  for (const where of ELIGIBLE) {
    const pred = compileIncludePredicate(whereNode(where), store, ['x']);
    expect(pred, `${where}: ${includeIneligibility(whereNode(where), store, ['x'])}`).not.toBeNull();
    const got = Array.from(store.matching(pred!), String);
    const r = await d.query(`SELECT x.id::text FROM t x WHERE ${where} ORDER BY x.id`);
    expect(got, where).toEqual(r.rows.map((row) => row.id));
  }
});

test('anything else is not eligible', () => {
  for (const where of [
    "t < 'b'", "t BETWEEN 'a' AND 'c'", "t LIKE 'n%'", 'i + 1 = 2', 'abs(i) = 2', 'i::text = \'2\'', 'id = 3', 'y.i = 3', 't.i = 1',
    "i = 'x'", "i = '2.5'", "t = 3", 'ok = 1', "c = 'ab'::text", 'i = (SELECT 1)', 'i = ANY(ARRAY[1,2])', 'i = 2.5::int', "t ~ 'a'", 'i = $1',
  ]) {
    expect(compileIncludePredicate(whereNode(where), store, ['x']), where).toBeNull();
  }
});
