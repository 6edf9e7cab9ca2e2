// Unit tests for literal rewriting (sql/vector-rewrite.ts) on real libpg-query parse trees.
import { beforeAll, expect, test } from 'vitest';
import { loadParser, parseUncached } from '../../sql/parse.ts';
import { literalExtent, raiseStatement, rewriteStatements, type AllColumnsCatalog, type VectorColumn } from '../../sql/vector-rewrite.ts';
import { PgvectorError } from '../../sql/vector-format.ts';

beforeAll(async () => {
  await loadParser();
});

const items = new Map<string, VectorColumn>([['embedding', { kind: 'vector', typmod: 3 }], ['h', { kind: 'halfvec', typmod: -1 }]]);
const catalog: AllColumnsCatalog = {
  vectorColumns: (t) => (t === 'items' ? items : undefined),
  allColumns: (t) => (t === 'items' ? ['id', 'embedding', 'h'] : undefined),
};

function rw(sql: string): string {
  const p = parseUncached(sql);
  if (!p.ok) throw new Error(p.error.message);
  const r = rewriteStatements(sql, p.statements, catalog);
  if (!r.ok) throw r.error;
  return r.sql;
}

test('casts, operators, functions', () => {
  expect(rw("SELECT '[1,2]'::vector(2), CAST('[3]' AS halfvec), '[1.0001]'::halfvec")).toBe("SELECT '{1,2}'::vector(2), CAST('{3}' AS halfvec), '{1}'::halfvec");
  expect(rw("SELECT x <-> '[1,2]', '[1]' <=> y FROM t")).toBe("SELECT x <-> '{1,2}', '{1}' <=> y FROM t");
  expect(rw("SELECT l2_distance(v, '[1,2]'), vector_norm('[3,4]')")).toBe("SELECT l2_distance(v, '{1,2}'), vector_norm('{3,4}')");
  // Two unknown literals: ambiguous in pgvector too, left for Postgres to report.
  expect(rw("SELECT l2_distance('[1]', '[2]')")).toBe("SELECT l2_distance('[1]', '[2]')");
  // Not a vector context: untouched.
  expect(rw("SELECT '[1,2]'::jsonb, '[1,2]' = '[1,2]'")).toBe("SELECT '[1,2]'::jsonb, '[1,2]' = '[1,2]'");
});

test('INSERT, UPDATE, comparisons by catalog column type; halfvec rounding', () => {
  expect(rw("INSERT INTO items VALUES (1, '[1,2,3]', '[1.0001]'), (2, E'[4,5,6]', NULL)")).toBe("INSERT INTO items VALUES (1, '{1,2,3}', '{1}'), (2, '{4,5,6}', NULL)");
  expect(rw("INSERT INTO items (h, embedding) VALUES ('[2049]', '[0,0,1]') RETURNING embedding <-> '[1,1,1]'")).toBe("INSERT INTO items (h, embedding) VALUES ('{2048}', '{0,0,1}') RETURNING embedding <-> '{1,1,1}'");
  expect(rw("UPDATE items SET embedding = '[1,2,3]' WHERE embedding = '[3,2,1]' OR embedding IN ('[1,1,1]')")).toBe("UPDATE items SET embedding = '{1,2,3}' WHERE embedding = '{3,2,1}' OR embedding IN ('{1,1,1}')");
  expect(rw("SELECT * FROM (VALUES ('[1]'::vector), ('[2]')) t(v)")).toBe("SELECT * FROM (VALUES ('{1}'::vector), ('{2}')) t(v)");
  expect(rw("SELECT coalesce(NULL::vector, '[7]'), ARRAY['[1]'::vector, '[2]']")).toBe("SELECT coalesce(NULL::vector, '{7}'), ARRAY['{1}'::vector, '{2}']");
});

test('byte offsets with multi-byte text before the literal; several statements', () => {
  expect(rw("SELECT 'é', '[1]'::vector; SELECT 'ü' || 'x', '[2]'::vector")).toBe("SELECT 'é', '{1}'::vector; SELECT 'ü' || 'x', '{2}'::vector");
});

test('errors: pgvector message and which statement failed', () => {
  const sql = "SELECT 1; INSERT INTO items VALUES (1, '[1,2]')";
  const p = parseUncached(sql);
  if (!p.ok) throw new Error('parse');
  const r = rewriteStatements(sql, p.statements, catalog);
  expect(r.ok).toBe(false);
  if (r.ok) return;
  expect(r.index).toBe(1);
  expect(r.error.message).toBe('expected 3 dimensions, not 2');
  expect(raiseStatement(new PgvectorError('22P02', `bad "x'y"`, 'd'))).toBe(`DO $winnow_raise$BEGIN RAISE EXCEPTION USING ERRCODE = '22P02', MESSAGE = 'bad "x''y"', DETAIL = 'd'; END$winnow_raise$`);
});

test('literal extents', () => {
  const b = Buffer.from("x 'a''b' E'c\\'d' $q$e$q$");
  expect(literalExtent(b, 2)).toBe(6);
  expect(literalExtent(b, 9)).toBe(7);
  expect(literalExtent(b, 17)).toBe(7);
});
