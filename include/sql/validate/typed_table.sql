-- Typed copy of one staged extract: every raw text column, the parsed values next to them, and
-- the file-level constants the rules compare against. Built once so that the rule queries
-- (GX and quarantine) do not parse the same text again and again.
-- {raw}, {typed}: identifiers; {expected_agency}, {latest_allowed_at}, {extract_year}: literals.
CREATE UNLOGGED TABLE {typed} AS
SELECT r.*,
       staging.parse_int(r.record_version)              AS record_version_int,
       staging.parse_timestamptz(r.call_received_at)    AS call_received_ts,
       staging.parse_timestamptz(r.cleared_at)          AS cleared_ts,
       staging.parse_timestamptz(r.consent_recorded_at) AS consent_recorded_ts,
       staging.parse_int(r.charges_laid)                AS charges_laid_int,
       staging.parse_bool(r.children_present)           AS children_present_bool,
       staging.parse_bool(r.substance_involved)         AS substance_involved_bool,
       staging.parse_int(r.victim_birth_year)           AS victim_birth_year_int,
       CASE WHEN r.incident_id IS NULL THEN 1
            ELSE count(*) OVER (PARTITION BY r.incident_id) END AS incident_occurrences,
       {expected_agency}::text                          AS expected_agency,
       LEAST({latest_allowed_at}::timestamptz, now())   AS latest_allowed_at,
       {extract_year}::int                              AS extract_year
FROM {raw} AS r
