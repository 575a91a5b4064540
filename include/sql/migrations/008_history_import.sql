-- History import (issue 14): retention of GX validation results and Data Docs pages is
-- logged like the other purges (upstream.retention.purge_data_docs).
ALTER TABLE ops.retention_log DROP CONSTRAINT retention_log_kind_check;
ALTER TABLE ops.retention_log ADD CONSTRAINT retention_log_kind_check CHECK (kind IN
    ('victim_contact', 'quarantine_row', 'extract_file', 'task_log', 'data_docs'));

-- A nightly load's cost must not grow with history. core.analyze_for_load (006) analysed
-- core.call_version and core.call after every merge: with three years behind a nightly load
-- that became its largest cost (measured 0.7 s of a 1.3 s night; ANALYZE reads a sample of up
-- to 30,000 pages whatever a night adds). Statistics only need refreshing when a load changed
-- a sizeable share of the table: a first load, a large file, a history import. So analyse
-- when the rows changed since the last ANALYZE (this transaction's included) exceed 1,000 +
-- 10% of the table, autovacuum's own rule with a larger base; otherwise keep the statistics.
CREATE OR REPLACE FUNCTION core.analyze_for_load(target text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  rel regclass;
  tuples real;
  changed bigint;
BEGIN
  IF target = 'call_version' THEN
    rel := 'core.call_version'::regclass;
  ELSIF target = 'call' THEN
    rel := 'core.call'::regclass;
  ELSE
    RAISE EXCEPTION 'core.analyze_for_load: no such load table: %', target;
  END IF;
  SELECT c.reltuples INTO tuples FROM pg_class c WHERE c.oid = rel;
  changed := coalesce(pg_stat_get_mod_since_analyze(rel), 0)
           + pg_stat_get_xact_tuples_inserted(rel) + pg_stat_get_xact_tuples_updated(rel)
           + pg_stat_get_xact_tuples_deleted(rel);
  IF tuples < 0 OR changed > 1000 + 0.1 * tuples THEN
    IF rel = 'core.call_version'::regclass THEN
      ANALYZE core.call_version;
    ELSE
      ANALYZE core.call;
    END IF;
  END IF;
END
$$;
