-- Whether anything in Airflow's metadata database is not yet owned by %(role)s (false: nothing to do).
SELECT (SELECT count(*) FROM pg_roles WHERE rolname = %(role)s) = 0
    OR EXISTS (SELECT 1 FROM pg_database
               WHERE datname = current_database() AND datdba::regrole::text <> %(role)s)
    OR EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'm', 'p', 'S')
                 AND c.relowner::regrole::text <> %(role)s)
