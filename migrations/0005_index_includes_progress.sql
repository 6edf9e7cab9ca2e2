-- Winnow 0005 (issues 5/6): INCLUDE columns of Winnow indexes, and build progress.
--
-- winnow.indexes.include_columns: [{"name": …, "type": typname}, …] of CREATE INDEX … INCLUDE (…);
-- the native index mirrors those columns' values for every indexed row (sync/include-store.ts).
ALTER TABLE winnow.indexes ADD COLUMN include_columns jsonb NOT NULL DEFAULT '[]';

-- One row per running build (CREATE INDEX, REINDEX, rebuild at start, background retrain), written by
-- Winnow's sync connection at most about once a second and deleted when the build ends. Unlogged: it
-- is scratch state (no WAL, emptied by crash recovery).
CREATE UNLOGGED TABLE winnow.index_build_progress (
  schema_name text NOT NULL,
  index_name text NOT NULL,
  relid oid NOT NULL,
  pid integer NOT NULL,
  command text NOT NULL,
  phase text NOT NULL,
  blocks_total bigint NOT NULL DEFAULT 0,
  tuples_total bigint NOT NULL DEFAULT 0,
  tuples_done bigint NOT NULL DEFAULT 0,
  started_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (schema_name, index_name)
);

-- Shaped like pg_stat_progress_create_index. pid is the backend scanning the table (its row vanishes
-- with it, so a build whose Winnow process died is not shown); index_relid is the placeholder index;
-- blocks_done is estimated from tuples_done (the scan reads in key order, not block order).
CREATE VIEW winnow.index_progress AS
SELECT p.pid,
       d.oid AS datid,
       d.datname,
       p.relid,
       to_regclass(quote_ident(p.schema_name) || '.' || quote_ident(p.index_name))::oid AS index_relid,
       p.schema_name,
       p.index_name,
       p.command,
       p.phase,
       p.blocks_total,
       CASE WHEN p.tuples_total > 0 THEN (p.blocks_total * least(p.tuples_done, p.tuples_total) / p.tuples_total) ELSE 0 END AS blocks_done,
       p.tuples_total,
       p.tuples_done,
       p.started_at,
       p.updated_at
  FROM winnow.index_build_progress p
  JOIN pg_catalog.pg_database d ON d.datname = current_database()
 WHERE EXISTS (SELECT FROM pg_catalog.pg_stat_activity a WHERE a.pid = p.pid);

GRANT USAGE ON SCHEMA winnow TO PUBLIC;
GRANT SELECT ON winnow.index_progress TO PUBLIC;
