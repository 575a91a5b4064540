-- Routing of consented non-charge cases to the outreach organisation (outreach-api-v1).
CREATE SCHEMA IF NOT EXISTS routing;

-- THE eligibility rule, in one place: routing, outcome tables and tests read this view.
-- Current clearance anything but cleared_by_charge, current consent 'given'.
CREATE VIEW core.eligible_case AS
SELECT c.agency_code, c.incident_id, c.record_version, c.call_received_at, c.call_type,
       c.consent_recorded_at, c.consent_officer_id, c.victim_key
FROM core.call c
WHERE c.clearance_status <> 'cleared_by_charge'
  AND c.consent_status = 'given';

-- Transactional outbox: one row per referral, keyed by a stable keyed-hash referral_id.
CREATE TABLE routing.referral (
    referral_id        text PRIMARY KEY,
    agency_code        text NOT NULL,
    incident_id        text NOT NULL,
    status             text NOT NULL CHECK (status IN
                        ('pending', 'delivered', 'parked', 'cancelled', 'withdrawn')),
    -- why: cancelled_charged / cancelled_consent / 409 conflict / 422 field ... (no values)
    status_reason      text,
    attempts           integer NOT NULL DEFAULT 0,
    next_attempt_at    timestamptz NOT NULL DEFAULT now(),
    last_error         text,
    planned_at         timestamptz NOT NULL DEFAULT now(),
    delivered_at       timestamptz,
    delivered_version  integer,
    charged_after_delivery boolean NOT NULL DEFAULT false,
    withdrawal_requested_at timestamptz,
    withdrawn_at       timestamptz,
    UNIQUE (agency_code, incident_id)
);
CREATE INDEX referral_due ON routing.referral (status, next_attempt_at);

-- Append-only record of every disclosure attempt and withdrawal. Field NAMES only.
CREATE TABLE routing.disclosure_audit (
    audit_id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    referral_id        text NOT NULL,
    action             text NOT NULL CHECK (action IN
                        ('disclosure_attempt', 'disclosure', 'withdrawal', 'contact_purged')),
    fields_disclosed   text[] NOT NULL DEFAULT '{}',
    recipient          text NOT NULL,
    legal_basis        text NOT NULL,           -- e.g. consent
    consent_recorded_at timestamptz,
    consent_officer_id text,
    outcome            text NOT NULL,           -- e.g. sending / 201 received / 200 replay / 422
    occurred_at        timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX disclosure_audit_referral ON routing.disclosure_audit (referral_id);

CREATE FUNCTION routing.refuse_audit_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'routing.disclosure_audit is append-only: % refused', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER disclosure_audit_append_only
  BEFORE UPDATE OR DELETE ON routing.disclosure_audit
  FOR EACH ROW EXECUTE FUNCTION routing.refuse_audit_change();
CREATE TRIGGER disclosure_audit_no_truncate
  BEFORE TRUNCATE ON routing.disclosure_audit
  FOR EACH STATEMENT EXECUTE FUNCTION routing.refuse_audit_change();

-- What happened to referrals at the outreach side (at-least-once delivery -> idempotent).
CREATE TABLE routing.referral_event (
    event_id     text PRIMARY KEY,
    referral_id  text NOT NULL,
    event_type   text NOT NULL CHECK (event_type IN ('received', 'contact_attempted', 'contacted',
                  'engaged', 'declined', 'unreachable', 'withdrawn', 'closed')),
    occurred_at  timestamptz NOT NULL,
    synced_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX referral_event_referral ON routing.referral_event (referral_id, occurred_at);

CREATE TABLE routing.sync_cursor (
    feed        text PRIMARY KEY,
    cursor      text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Coarse severity of one call, for the escalation flag (see README, "Routing").
CREATE FUNCTION core.call_severity(weapon text, injury_level text)
RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE injury_level WHEN 'death' THEN 3 WHEN 'major' THEN 2 WHEN 'minor' THEN 1 ELSE 0 END
       + CASE WHEN weapon IN ('firearm', 'knife', 'other_weapon') THEN 2 ELSE 0 END
$$;
