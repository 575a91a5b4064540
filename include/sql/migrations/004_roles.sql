-- Least-privilege roles. Each DAG task works as the role it needs (upstream.db.connect(role=)
-- does SET ROLE; with UPSTREAM_USE_DB_ROLES=false it stays the login user):
--   upstream_loader    loads extracts: staging, ops, core; contact details write-only (it may
--                      read only the key columns it needs to replace or delete them)
--   upstream_router    routes referrals: the ONLY role that reads contact details
--   upstream_outcomes  rebuilds outcome tables and published views; no contact details
--   upstream_analyst   published views only (created in 003)
--   upstream_airflow   Airflow's metadata database (owner there); nothing in the warehouse
-- Roles are cluster-wide: created only when missing. LOGIN without a password: usable with
-- local trust authentication (development, tests); production sets passwords or uses SET ROLE.

DO $$
DECLARE r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['upstream_loader', 'upstream_router', 'upstream_outcomes',
                           'upstream_airflow'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('CREATE ROLE %I LOGIN NOINHERIT', r);
    END IF;
    -- the migrating login may SET ROLE to each (a superuser may anyway)
    BEGIN
      EXECUTE format('GRANT %I TO CURRENT_USER', r);
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
  END LOOP;
END $$;

-- upstream_loader
GRANT USAGE ON SCHEMA ops, core, contact, staging TO upstream_loader;
GRANT CREATE ON SCHEMA staging TO upstream_loader;
GRANT SELECT, INSERT, UPDATE, DELETE ON ops.extract_file, ops.quarantine_row TO upstream_loader;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA ops TO upstream_loader;
GRANT SELECT, INSERT, UPDATE, DELETE ON core.call_version, core.call TO upstream_loader;
GRANT INSERT, UPDATE, DELETE ON contact.victim_contact TO upstream_loader;
GRANT SELECT (agency_code, incident_id, record_version, file_id) ON contact.victim_contact
  TO upstream_loader;

-- upstream_router
GRANT USAGE ON SCHEMA core, contact, routing TO upstream_router;
GRANT SELECT ON core.call, core.eligible_case TO upstream_router;
GRANT SELECT, DELETE ON contact.victim_contact TO upstream_router;
GRANT SELECT, INSERT, UPDATE ON routing.referral, routing.referral_event, routing.sync_cursor
  TO upstream_router;
GRANT SELECT, INSERT ON routing.disclosure_audit TO upstream_router;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA routing TO upstream_router;

-- upstream_outcomes: owns what it rebuilds (the swap drops and renames tables)
GRANT USAGE ON SCHEMA core, routing, ops TO upstream_outcomes;
GRANT SELECT ON core.call, core.eligible_case, routing.referral, routing.referral_event,
  ops.extract_file, ops.quarantine_row TO upstream_outcomes;
ALTER SCHEMA outcomes OWNER TO upstream_outcomes;
ALTER SCHEMA published OWNER TO upstream_outcomes;
DO $$
DECLARE o record;
BEGIN
  FOR o IN SELECT n.nspname, c.relname, c.relkind FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname IN ('outcomes', 'published') AND c.relkind IN ('r', 'v', 'm', 'S')
  LOOP
    EXECUTE format('ALTER %s %I.%I OWNER TO upstream_outcomes',
                   CASE o.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                  WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
                   o.nspname, o.relname);
  END LOOP;
END $$;
-- keep published readable by analysts whatever the outcomes role creates there later
ALTER DEFAULT PRIVILEGES FOR ROLE upstream_outcomes IN SCHEMA published
  GRANT SELECT ON TABLES TO upstream_analyst;

-- nobody else (PUBLIC) reads the warehouse's own bookkeeping
REVOKE ALL ON public.schema_migration FROM PUBLIC;
