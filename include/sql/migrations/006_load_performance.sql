-- What the nightly load needs to stay set-based at 1M rows (measured with
-- benchmarks/bench_ingest.py; figures in benchmarks/README.md).

-- 1. Statistics. The loader must refresh the planner's statistics of the core tables it has
-- just rewritten: with stale ones, a large load's next statements are planned as nested loops
-- (minutes instead of seconds at 1M rows). ANALYZE needs the table's owner (or, from
-- PostgreSQL 17, the MAINTAIN privilege), which upstream_loader is not. It gets this function
-- instead, owned by the warehouse owner, which analyses the two tables and nothing else.
CREATE FUNCTION core.analyze_for_load(target text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF target = 'call_version' THEN
    ANALYZE core.call_version;
  ELSIF target = 'call' THEN
    ANALYZE core.call;
  ELSE
    RAISE EXCEPTION 'core.analyze_for_load: no such load table: %', target;
  END IF;
END
$$;
REVOKE ALL ON FUNCTION core.analyze_for_load(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION core.analyze_for_load(text) TO upstream_loader;

-- 2. Referential integrity of the loaded rows, checked once per load instead of row by row.
-- A foreign key is checked by a trigger per inserted row: at 1M rows these triggers took
-- about 40% of the merge (call versions -> file, contact details -> current call -> file).
-- The load is the only writer of these tables; it now checks the same references set-based,
-- in the merge's transaction, and rolls the whole merge back if one is broken
-- (include/sql/load/check_integrity.sql). No other role may delete calls or files
-- (004_roles.sql), so nothing else can break them.
ALTER TABLE core.call_version DROP CONSTRAINT IF EXISTS call_version_file_id_fkey;
ALTER TABLE contact.victim_contact DROP CONSTRAINT IF EXISTS victim_contact_file_id_fkey;
ALTER TABLE contact.victim_contact DROP CONSTRAINT IF EXISTS victim_contact_agency_code_incident_id_fkey;
