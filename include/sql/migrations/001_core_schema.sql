-- Upstream warehouse, first schema.
--   ops      run bookkeeping: which files arrived, what happened to them, quarantined rows
--   core     the calls, pseudonymised: no names, no contact details, no narrative
--   contact  the only place contact details live, and only for consent = 'given'
--   staging  per-load scratch tables holding a raw file while it is validated and loaded;
--            dropped before the load step ends

CREATE SCHEMA IF NOT EXISTS ops;
CREATE SCHEMA IF NOT EXISTS core;
CREATE SCHEMA IF NOT EXISTS contact;
CREATE SCHEMA IF NOT EXISTS staging;

-- HMAC-SHA-256 without pgcrypto (the embedded server does not ship it): the caller passes the
-- key already XOR-ed with the inner and outer pads, so the key itself never reaches SQL text.
CREATE FUNCTION core.hmac_sha256_hex(inner_key bytea, outer_key bytea, message text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN message IS NULL THEN NULL ELSE
    encode(sha256(outer_key || sha256(inner_key || convert_to(message, 'UTF8'))), 'hex') END
$$;

-- Strict ISO 8601 timestamp with a UTC offset -> timestamptz, NULL when it is not one.
-- Checks the calendar itself, so the cast can never raise (PostgreSQL 15 has no
-- pg_input_is_valid, and an exception block per row is far too slow).
CREATE FUNCTION staging.parse_timestamptz(raw text)
RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE AS $$
  -- Nested CASEs because AND does not promise to evaluate its left side first.
  SELECT CASE WHEN raw ~ '^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[T ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?(Z|[+-](0\d|1[0-4])(:?[0-5]\d)?)$'
  THEN CASE WHEN substr(raw, 1, 4)::int >= 1 THEN
       CASE WHEN substr(raw, 9, 2)::int <= extract(day from (
                   make_date(substr(raw, 1, 4)::int, substr(raw, 6, 2)::int, 1)
                   + interval '1 month - 1 day'))::int
       THEN raw::timestamptz END END END
$$;

CREATE FUNCTION staging.parse_int(raw text)
RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN raw ~ '^[+-]?\d{1,15}$' THEN raw::bigint END
$$;

CREATE FUNCTION staging.parse_bool(raw text)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE raw WHEN 'true' THEN true WHEN 'false' THEN false END
$$;

-- One row per delivered data file (identified by its bytes), whatever happened to it.
CREATE TABLE ops.extract_file (
    file_id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agency_code        text        NOT NULL,
    extract_date       date        NOT NULL,
    file_name          text        NOT NULL,
    sha256             text        NOT NULL,
    manifest_rows      integer,
    generated_at       timestamptz,
    status             text        NOT NULL
        CHECK (status IN ('loading', 'loaded', 'refused', 'superseded', 'ignored_older')),
    reason             text,
    rows_in_file       integer,
    rows_loaded        integer,
    rows_quarantined   integer,
    rows_stale         integer,
    unknown_columns    text[]      NOT NULL DEFAULT '{}',
    data_docs_path     text,
    first_seen_at      timestamptz NOT NULL DEFAULT now(),
    finished_at        timestamptz,
    superseded_by      bigint REFERENCES ops.extract_file (file_id),
    data_file_deleted_at timestamptz,
    UNIQUE (agency_code, extract_date, sha256)
);
CREATE INDEX extract_file_day ON ops.extract_file (agency_code, extract_date);

-- Rows that broke a rule. Identifiers and rule names only: never a value from the row.
CREATE TABLE ops.quarantine_row (
    file_id      bigint  NOT NULL REFERENCES ops.extract_file (file_id),
    row_number   integer NOT NULL,          -- 1 = first data row after the header
    incident_id  text,                       -- only when it is a well-formed incident id
    rule         text    NOT NULL,
    column_name  text    NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (file_id, row_number, rule)
);

-- Every version of every call that was loaded, from every file still in force.
CREATE TABLE core.call_version (
    agency_code              text        NOT NULL,
    incident_id              text        NOT NULL,
    file_id                  bigint      NOT NULL REFERENCES ops.extract_file (file_id),
    extract_date             date        NOT NULL,
    record_version           integer     NOT NULL CHECK (record_version >= 1),
    call_received_at         timestamptz NOT NULL,
    cleared_at               timestamptz,
    call_source              text        NOT NULL,
    call_type                text        NOT NULL,
    patrol_zone              text        NOT NULL,
    clearance_status         text        NOT NULL,
    charges_laid             integer     NOT NULL,
    relationship             text        NOT NULL,
    weapon                   text        NOT NULL,
    injury_level             text        NOT NULL,
    children_present         boolean     NOT NULL,
    substance_involved       boolean,
    consent_status           text        NOT NULL,
    consent_recorded_at      timestamptz,
    consent_officer_id       text,
    victim_key               text        NOT NULL,   -- HMAC pseudonym of victim_person_id
    accused_key              text,                   -- HMAC pseudonym of accused_person_id
    address_key              text        NOT NULL,   -- HMAC pseudonym of address_id
    responding_officer_id    text        NOT NULL,
    PRIMARY KEY (agency_code, incident_id, file_id)
);
CREATE INDEX call_version_file ON core.call_version (file_id);

-- The current truth per incident: highest record_version; among equal versions the earliest
-- extract day (a later equal version is ignored, as the contract says).
CREATE TABLE core.call (LIKE core.call_version INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
                        loaded_at timestamptz NOT NULL DEFAULT now(),
                        PRIMARY KEY (agency_code, incident_id));
CREATE INDEX call_victim_time ON core.call (victim_key, call_received_at);
CREATE INDEX call_received ON core.call (agency_code, call_received_at);

-- Contact details of consented cases only (current consent = 'given'); nothing else here.
CREATE TABLE contact.victim_contact (
    agency_code              text    NOT NULL,
    incident_id              text    NOT NULL,
    record_version           integer NOT NULL,
    file_id                  bigint  NOT NULL REFERENCES ops.extract_file (file_id),
    given_name               text,
    family_name              text,
    birth_year               integer,
    phone                    text,
    email                    text,
    preferred_contact        text,
    safe_contact_notes       text,
    language                 text    NOT NULL DEFAULT 'en',
    postal_code              text,
    stored_at                timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agency_code, incident_id),
    FOREIGN KEY (agency_code, incident_id) REFERENCES core.call (agency_code, incident_id)
);
