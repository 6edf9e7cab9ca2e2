-- Winnow 0004: catalog of Winnow's native vector indexes (issue 5/6).
-- One row per CREATE INDEX … USING winnow|hnsw|ivfflat. The Postgres side also has a real, empty
-- placeholder btree index with the same name (partial, WHERE false) so \di, pg_indexes, DROP TABLE
-- and name clashes behave like Postgres; this table holds what Winnow needs to build and plan.
CREATE TABLE winnow.indexes (
  name text NOT NULL,
  schema_name text NOT NULL,
  table_name text NOT NULL,
  relid oid NOT NULL,
  column_name text NOT NULL,
  key_column text NOT NULL,
  metric text NOT NULL CHECK (metric IN ('l2', 'ip', 'cos')),
  access_method text NOT NULL,
  options jsonb NOT NULL DEFAULT '{}',
  dim integer NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (schema_name, name)
);
