-- Retention (dags/upstream_retention.py, src/upstream/retention.py).
--
-- What a purge leaves behind:
--   * a contact purge of an incident that has a referral: one row on routing.disclosure_audit
--     (action 'contact_purged', outcome 'closed' / 'withdrawn' / 'older than N days');
--   * every purge run that removed something: one row per kind on ops.retention_log, counts
--     only (no incident ids, no file names, no values), append-only like the disclosure audit.
-- A run that finds nothing to purge writes nothing.

CREATE TABLE ops.retention_log (
    purge_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text        NOT NULL CHECK (kind IN
                        ('victim_contact', 'quarantine_row', 'extract_file', 'task_log')),
    items           integer     NOT NULL CHECK (items >= 0),
    retention_days  integer     NOT NULL CHECK (retention_days >= 1),
    older_than      timestamptz NOT NULL,        -- the cutoff the run applied
    detail          text,                        -- counts by reason; never an id or a value
    occurred_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX retention_log_kind_time ON ops.retention_log (kind, occurred_at);

CREATE FUNCTION ops.refuse_log_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '%.% is append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER retention_log_append_only
  BEFORE UPDATE OR DELETE ON ops.retention_log
  FOR EACH ROW EXECUTE FUNCTION ops.refuse_log_change();
CREATE TRIGGER retention_log_no_truncate
  BEFORE TRUNCATE ON ops.retention_log
  FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_log_change();

-- The purges find their rows by age.
CREATE INDEX quarantine_row_recorded ON ops.quarantine_row (recorded_at);
CREATE INDEX victim_contact_stored ON contact.victim_contact (stored_at);
CREATE INDEX extract_file_finished ON ops.extract_file (finished_at)
  WHERE status <> 'loading';

-- Least-privilege roles (004): the retention tasks work as upstream_router (contact details:
-- the only role that reads them, and the one that writes the disclosure audit) and as
-- upstream_loader (quarantine rows, extract files, task logs). Both may append to the log and
-- nothing more: no SELECT, UPDATE or DELETE. Guarded, so this migration also runs where a DBA
-- manages roles differently.
DO $$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['upstream_router', 'upstream_loader'] LOOP
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('GRANT USAGE ON SCHEMA ops TO %I', r);
      EXECUTE format('GRANT INSERT ON ops.retention_log TO %I', r);
      EXECUTE format('GRANT USAGE ON SEQUENCE %s TO %I',
                     pg_get_serial_sequence('ops.retention_log', 'purge_id'), r);
    END IF;
  END LOOP;
END $$;
