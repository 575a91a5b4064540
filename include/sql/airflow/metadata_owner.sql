-- Run by the superuser in Airflow's metadata database at every bootstrap (idempotent):
-- everything there belongs to the least-privilege login upstream_airflow, which Airflow then
-- uses. A database created before this (owned by the superuser) is handed over in place.
-- The role itself is created as in migrations/004_roles.sql (that migration skips it then).
DO $$
DECLARE o record;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'upstream_airflow') THEN
    CREATE ROLE upstream_airflow LOGIN NOINHERIT;
  END IF;
  EXECUTE format('ALTER DATABASE %I OWNER TO upstream_airflow', current_database());
  EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
  -- tables, views, sequences, materialized views and partitioned tables of Airflow's schema
  FOR o IN SELECT c.relname, c.relkind FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'm', 'p', 'S')
             AND c.relowner <> 'upstream_airflow'::regrole
             -- sequences owned by a table column follow their table
             AND NOT (c.relkind = 'S' AND EXISTS (
                 SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')))
  LOOP
    EXECUTE format('ALTER %s public.%I OWNER TO upstream_airflow',
                   CASE o.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                  WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, o.relname);
  END LOOP;
  -- enum and composite types Airflow's migrations created (not the tables' own row types)
  FOR o IN SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
           WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd')
             AND t.typowner <> 'upstream_airflow'::regrole
  LOOP
    EXECUTE format('ALTER TYPE public.%I OWNER TO upstream_airflow', o.typname);
  END LOOP;
  FOR o IN SELECT p.oid::regprocedure AS fn FROM pg_proc p
           JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = 'public' AND p.proowner <> 'upstream_airflow'::regrole
  LOOP
    EXECUTE format('ALTER ROUTINE %s OWNER TO upstream_airflow', o.fn);
  END LOOP;
END $$;
