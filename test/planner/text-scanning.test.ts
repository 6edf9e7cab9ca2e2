// The text-level pieces the planner rewrites by: locating CTE/subquery SELECTs (parentheses found past
// strings, quoted identifiers, comments and dollar quotes), distance thresholds and their spans, and
// SQL PREPARE/EXECUTE argument substitution. Pure functions over libpg-query parse trees.
import { beforeAll, expect, test } from 'vitest';
import { loadParser, parseStatement, type ParsedStatement } from '../../sql/parse.ts';
import { innerSelects, listItems, matchingParen, spliceText } from '../../sql/planner/cte.ts';
import { recognizeKnn, recognizeRange, rewriteRange } from '../../sql/planner/recognize.ts';
import { SqlPreparedStatements } from '../../sql/planner/sql-prepared.ts';

beforeAll(async () => {
  await loadParser();
});

function one(text: string): ParsedStatement {
  const p = parseStatement(text);
  if (!p.ok) throw new Error(p.error.message);
  return p.statements[0];
}

test('matchingParen skips strings, E-strings, quoted identifiers, comments and dollar quotes', () => {
  // Each closes at its last character.
  const cases = [`(a)`, `(')' || ")" )`, `(E'\\')' )`, `(x -- )\n)`, `(/* ) /* ) */ ) */ y)`, `($$)$$ || $t$)$t$)`, `(f(g(1), '(') , 2)`, `('a''b)')`];
  for (const s of cases) expect(matchingParen(s, 0), s).toBe(s.length - 1);
  expect(matchingParen(`(unclosed`, 0)).toBe(-1);
  expect(listItems(`( 'a,b' , f(1, 2),x )`, 0)!.map(([a, b]) => `( 'a,b' , f(1, 2),x )`.slice(a, b))).toEqual([`'a,b'`, 'f(1, 2)', 'x']);
  expect(listItems(`()`, 0)).toEqual([]);
});

test('innerSelects finds WITH items and FROM subqueries (in joins), not LATERAL or recursive ones', () => {
  const text = `WITH a AS (SELECT 1), b AS MATERIALIZED ( SELECT ')' AS p FROM t ) SELECT * FROM (SELECT 2) x JOIN ((SELECT 3) y CROSS JOIN z) ON true, LATERAL (SELECT 4) w`;
  const st = one(text);
  const found = innerSelects(text, st.stmt);
  expect(found.map((f) => [f.label, text.slice(f.start, f.end)])).toEqual([
    ['CTE a', 'SELECT 1'], ['CTE b', `SELECT ')' AS p FROM t `], ['subquery x', 'SELECT 2'], ['subquery y', 'SELECT 3'],
  ]);
  const rec = `WITH RECURSIVE r AS (SELECT 1 UNION SELECT 2) SELECT * FROM r`;
  expect(innerSelects(rec, one(rec).stmt)).toEqual([]);
  expect(spliceText('aébc', [{ start: 1, end: 3, text: 'X' }])).toBe('aXbc');
});

test('thresholds: recognised in any order and form, the conjunct removed from the filter and rewritten by id', () => {
  const knn = `SELECT id FROM t WHERE cat = 'ü' AND 0.5 >= t.v <-> '[1,2]'::vector AND id > 3 ORDER BY v <-> '[1,2]' LIMIT 5`;
  const st = one(knn);
  const p = recognizeKnn(knn, st.stmt, st.location, st.length)!;
  expect(p.threshold).toEqual({ r: 0.5, inclusive: true });
  expect(p.filterWhere).toBe(`cat = 'ü' AND true AND id > 3`);
  expect(p.filterWhereNode?.BoolExpr?.args).toHaveLength(2);
  // Another query vector, a parameter, a parenthesised column or a non-constant bound: not a threshold.
  for (const w of [`v <-> '[9,9]' < 0.5`, `v <-> '[1,2]' < $1`, `(v) <-> '[1,2]' < 0.5`, `v <-> '[1,2]' < id`, `v <-> '[1,2]' > 0.5`]) {
    const t = `SELECT id FROM t WHERE ${w} ORDER BY v <-> '[1,2]' LIMIT 5`;
    const s2 = one(t);
    expect(recognizeKnn(t, s2.stmt, s2.location, s2.length)!.threshold, w).toBeUndefined();
  }
  const range = `SELECT cat, avg(v <=> '[1,2]') FROM t x WHERE x.v <=> '[1,2]' < 1e-1 AND cat <> 2 GROUP BY cat`;
  const s3 = one(range);
  const r = recognizeRange(range, s3.stmt, s3.location, s3.length)!;
  expect(r).toMatchObject({ table: 't', ref: 'x', column: 'v', metric: 'cos', radius: { r: 0.1, inclusive: false } });
  expect(rewriteRange(r, 'id', BigInt64Array.from([4n, 2n]), Float32Array.from([0.25, 0.5])))
    .toBe(`SELECT cat, avg(('{0.25,0.5}'::float8[])[array_position('{4,2}'::bigint[], "x"."id"::bigint)]) FROM t x WHERE ("x"."id" = ANY('{4,2}'::bigint[])) AND cat <> 2 GROUP BY cat`);
  // A threshold under OR, or inside a subquery, is not a range query.
  for (const t of [`SELECT id FROM t WHERE v <-> '[1]' < 1 OR cat = 2`, `SELECT id FROM t WHERE id IN (SELECT id FROM u WHERE v <-> '[1]' < 1)`]) {
    const s4 = one(t);
    expect(recognizeRange(t, s4.stmt, s4.location, s4.length), t).toBeNull();
  }
});

test('EXECUTE of a remembered PREPARE becomes its SELECT with the arguments substituted', () => {
  const sp = new SqlPreparedStatements();
  const prep = `PREPARE q(vector(3), int, text) AS SELECT id FROM t WHERE tag = $3 AND v <=> $1 < 0.9 ORDER BY v <=> $1 LIMIT $2;`;
  sp.note(prep, [one(prep)]);
  const sub = (e: string) => sp.substitute(e, (one(e).stmt as any).ExecuteStmt, 0);
  expect(sub(`EXECUTE q('[1,2,3]', 5, 'a''b')`)).toBe(`SELECT id FROM t WHERE tag = 'a''b'::text AND v <=> '[1,2,3]'::vector(3) < 0.9 ORDER BY v <=> '[1,2,3]'::vector(3) LIMIT 5`);
  expect(sub(`EXECUTE q ( '[1,2,3]'::vector , 2 + 3, lower('X') )`)).toBe(`SELECT id FROM t WHERE tag = (lower('X'))::text AND v <=> '[1,2,3]'::vector < 0.9 ORDER BY v <=> '[1,2,3]'::vector LIMIT (2 + 3)::int`);
  expect(sub(`EXECUTE q('[1,2,3]', 5)`)).toBeNull(); // too few arguments: Postgres says so
  const planned = sub(`EXECUTE q('[1,2,3]', 5, 'x')`)!;
  const st = one(planned);
  expect(recognizeKnn(planned, st.stmt, st.location, st.length)).toMatchObject({ limit: 5, query: { literal: '[1,2,3]' }, threshold: { r: 0.9 } });
  // Forgetting: DEALLOCATE, DISCARD ALL, PREPARE of an existing name, PREPARE in a multi-statement query.
  sp.note('DEALLOCATE q', [one('DEALLOCATE q')]);
  expect(sp.has('q')).toBe(false);
  sp.note(prep, [one(prep)]);
  sp.note(prep, [one(prep)]);
  expect(sp.has('q')).toBe(false);
  sp.note(prep, [one(prep)]);
  sp.note('DISCARD ALL', [one('DISCARD ALL')]);
  expect(sp.has('q')).toBe(false);
  const multi = parseStatement(`${prep} SELECT 1`);
  if (!multi.ok) throw new Error('parse');
  sp.note(multi.text, multi.statements);
  expect(sp.has('q')).toBe(false);
});
