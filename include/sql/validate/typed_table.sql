-- Typed copy of one staged extract: every raw text column, the parsed values next to them,
-- the file-level constants the rules compare against, and `failed_rules`: the names of every
-- contract rule (upstream.rules) the row breaks, evaluated in this ONE pass over the file.
-- {raw}, {typed}: identifiers; {expected_agency}, {latest_allowed_at}, {extract_year}:
-- literals; {failed_rules}: the array expression built from the rule predicates.
CREATE UNLOGGED TABLE {typed} AS
SELECT t.*, {failed_rules} AS failed_rules
FROM (
    SELECT r.*,
           staging.parse_int(r.record_version)              AS record_version_int,
           staging.parse_timestamptz(r.call_received_at)    AS call_received_ts,
           staging.parse_timestamptz(r.cleared_at)          AS cleared_ts,
           staging.parse_timestamptz(r.consent_recorded_at) AS consent_recorded_ts,
           staging.parse_int(r.charges_laid)                AS charges_laid_int,
           staging.parse_bool(r.children_present)           AS children_present_bool,
           staging.parse_bool(r.substance_involved)         AS substance_involved_bool,
           staging.parse_int(r.victim_birth_year)           AS victim_birth_year_int,
           coalesce(d.occurrences, 1)                       AS incident_occurrences,
           {expected_agency}::text                          AS expected_agency,
           LEAST({latest_allowed_at}::timestamptz, now())   AS latest_allowed_at,
           {extract_year}::int                              AS extract_year
    FROM {raw} AS r
    -- duplicates by a grouped join, not a window: no sort of the whole file
    LEFT JOIN (SELECT incident_id, count(*) AS occurrences FROM {raw}
               WHERE incident_id IS NOT NULL GROUP BY incident_id HAVING count(*) > 1) AS d
           ON d.incident_id = r.incident_id
) AS t
