// Winnow's SQL objects (pgvector's surface) live in numbered files in migrations/. They are applied
// in order, all pending files in one transaction, and recorded in winnow.schema_migrations so
// applying again is a no-op. Two ways to run them:
//   - applyMigrations(query): from TypeScript over any connection (tests, tools);
//   - installStatement(): one self-contained SQL statement (a DO block) that does the same inside
//     Postgres; the server sends it in place of CREATE EXTENSION vector, so it runs in the client's own
//     transaction (or its implicit one) and fails or succeeds as a whole.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { quoteLiteral } from './quote.ts';

export const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'migrations');

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

let cached: Migration[] | null = null;

export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  if (dir === MIGRATIONS_DIR && cached) return cached;
  const list = readdirSync(dir)
    .filter((f) => /^\d{4}_[\w-]+\.sql$/.test(f))
    .sort()
    .map((f) => ({ version: Number(f.slice(0, 4)), name: f.replace(/\.sql$/, ''), sql: readFileSync(path.join(dir, f), 'utf8') }));
  const versions = new Set(list.map((m) => m.version));
  if (versions.size !== list.length) throw new Error('duplicate migration version in ' + dir);
  if (dir === MIGRATIONS_DIR) cached = list;
  return list;
}

const BOOKKEEPING = `CREATE SCHEMA IF NOT EXISTS winnow;
CREATE TABLE IF NOT EXISTS winnow.schema_migrations (
  version integer PRIMARY KEY,
  name text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)`;

export type QueryFn = (sql: string) => Promise<{ rows: Record<string, unknown>[] }>;

/**
 * Applies pending migrations in one transaction (BEGIN/COMMIT unless `inTransaction`).
 * Returns the versions applied. Serialised against concurrent runners by an advisory lock.
 */
export async function applyMigrations(query: QueryFn, opts: { inTransaction?: boolean; dir?: string } = {}): Promise<number[]> {
  const migrations = loadMigrations(opts.dir);
  if (!opts.inTransaction) await query('BEGIN');
  try {
    await query(`SELECT pg_advisory_xact_lock(hashtext('winnow.schema_migrations'))`);
    await query(BOOKKEEPING);
    const { rows } = await query('SELECT version FROM winnow.schema_migrations');
    // User-facing objects go to the current schema, like an extension's @extschema@ (normally public).
    const schema = String((await query('SELECT quote_ident(current_schema()) AS s')).rows[0].s);
    const done = new Set(rows.map((r) => Number(r.version)));
    const applied: number[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await query(m.sql.replaceAll('@extschema@', schema));
      await query(`INSERT INTO winnow.schema_migrations (version, name) VALUES (${m.version}, ${quoteLiteral(m.name)})`);
      applied.push(m.version);
    }
    if (!opts.inTransaction) await query('COMMIT');
    return applied;
  } catch (err) {
    if (!opts.inTransaction) await query('ROLLBACK').catch(() => {});
    throw err;
  }
}


function dollarQuote(s: string): string {
  let tag = 'winnow';
  while (s.includes(`$${tag}$`)) tag += '_';
  return `$${tag}$${s}$${tag}$`;
}

/** True when Winnow's vector objects are installed (the SQL expression, for use inside statements). */
export const INSTALLED_SQL = `EXISTS (SELECT FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = 'winnow' AND c.relname = 'schema_migrations')
  AND EXISTS (SELECT FROM winnow.schema_migrations)`;

/**
 * CREATE EXTENSION [IF NOT EXISTS] vector as one statement: errors/notices as Postgres words them for
 * extensions, then every pending migration and its bookkeeping row.
 */
export function installStatement(ifNotExists: boolean): string {
  const steps = loadMigrations()
    .map(
      (m) => `  IF NOT EXISTS (SELECT FROM winnow.schema_migrations WHERE version = ${m.version}) THEN
    EXECUTE replace(${dollarQuote(m.sql)}, '@extschema@', quote_ident(current_schema()));
    INSERT INTO winnow.schema_migrations (version, name) VALUES (${m.version}, ${quoteLiteral(m.name)});
  END IF;`,
    )
    .join('\n');
  const exists = ifNotExists
    ? `RAISE NOTICE 'extension "vector" already exists, skipping'; RETURN;`
    : `RAISE EXCEPTION 'extension "vector" already exists' USING ERRCODE = 'duplicate_object';`;
  return `DO ${dollarQuote(`
DECLARE
  installed boolean;
  old_level text := current_setting('client_min_messages');
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('winnow.schema_migrations'));
  installed := to_regclass('winnow.schema_migrations') IS NOT NULL;
  IF installed THEN
    installed := EXISTS (SELECT FROM winnow.schema_migrations);
  END IF;
  IF installed AND to_regtype('vector') IS NOT NULL THEN
    ${exists}
  END IF;
  PERFORM set_config('client_min_messages', 'warning', true);
  EXECUTE ${dollarQuote(BOOKKEEPING)};
${steps}
  PERFORM set_config('client_min_messages', old_level, true);
END`)}`;
}

/**
 * DROP EXTENSION [IF EXISTS] vector [CASCADE] as one statement. Without CASCADE it refuses, like
 * Postgres, while a table column (or view) still uses vector/halfvec.
 */
export function uninstallStatement(ifExists: boolean, cascade: boolean): string {
  const missing = ifExists
    ? `RAISE NOTICE 'extension "vector" does not exist, skipping'; RETURN;`
    : `RAISE EXCEPTION 'extension "vector" does not exist' USING ERRCODE = 'undefined_object';`;
  return `DO ${dollarQuote(`
DECLARE
  deps text;
  old_level text := current_setting('client_min_messages');
BEGIN
  IF to_regclass('winnow.schema_migrations') IS NULL OR to_regtype('vector') IS NULL THEN
    ${missing}
  END IF;
  ${
    cascade
      ? ''
      : `SELECT string_agg(format('column %s of %s %s depends on type %s', a.attname,
            CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' ELSE 'table' END,
            c.oid::regclass, format_type(t.oid, NULL)), E'\\n' ORDER BY c.oid, a.attnum)
       INTO deps
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_type t ON t.oid = a.atttypid
      WHERE NOT a.attisdropped AND a.attnum > 0 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
        AND (t.typname IN ('vector', 'halfvec', '_vector', '_halfvec'))
        AND t.typnamespace = (SELECT typnamespace FROM pg_type WHERE oid = to_regtype('vector'));
  IF deps IS NOT NULL THEN
    RAISE EXCEPTION 'cannot drop extension vector because other objects depend on it'
      USING ERRCODE = 'dependent_objects_still_exist', DETAIL = deps,
            HINT = 'Use DROP ... CASCADE to drop the dependent objects too.';
  END IF;`
  }
  PERFORM set_config('client_min_messages', 'warning', true);
  DROP TYPE vector, halfvec CASCADE;
  DROP FUNCTION IF EXISTS hamming_distance(bit, bit), jaccard_distance(bit, bit),
    vector_typmod_in(cstring[]), vector_typmod_out(integer), halfvec_typmod_in(cstring[]), halfvec_typmod_out(integer),
    vector_combine(double precision[], double precision[]), halfvec_combine(double precision[], double precision[]) CASCADE;
  DROP SCHEMA winnow CASCADE;
  PERFORM set_config('client_min_messages', old_level, true);
END`)}`;
}
