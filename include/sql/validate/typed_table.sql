-- Typed copy of staged extracts of ONE agency, for the nightly load (one file) and the history
-- import (a batch of files): every raw text column, the parsed values next to them, the
-- file-level constants the rules compare against, and `failed_rules`: the names of every
-- contract rule (upstream.rules) the row breaks, evaluated in this ONE pass.
-- Each raw row carries its file_id; {files} gives per file the constants (extract day,
-- generated_at, extract year) and its first raw row, so row_number counts from 1 in each file.
-- {files} is a plain staging table, not a temp one: a query that reads a temp table gets no
-- parallel workers. {raw}, {typed}, {files}: identifiers; {expected_agency}: literal;
-- {failed_rules}: the array expression built from the rule predicates; {inner_key},
-- {outer_key}: scalar subqueries reading the HMAC pads (evaluated once).
-- The pseudonyms (victim_key, accused_key, address_key) are computed here too, so that they
-- run in the parallel workers of this CREATE TABLE AS rather than in the serial merge. The
-- HMAC pads come from transaction-local settings set with bind parameters
-- (upstream.pseudonyms.set_pads): the key never appears in SQL text.
CREATE UNLOGGED TABLE {typed} AS
SELECT t.*, {failed_rules} AS failed_rules
FROM (
    SELECT r.*,
           (r.raw_row - f.first_row + 1)::integer           AS row_number,
           f.extract_date                                   AS extract_date,
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
           LEAST(f.generated_at, now())                     AS latest_allowed_at,
           f.extract_year                                   AS extract_year,
           -- core.hmac_sha256_hex written out: a SQL function whose arguments hold a
           -- sub-select (the pads) is not inlined, and the call per row cost as much again as
           -- the two hashes (200k rows: 0.69 s an HMAC column called, 0.33 s written out).
           -- NULL in, NULL out, as the function (every step is strict).
           encode(sha256({outer_key} || sha256({inner_key} || convert_to(
               'person:' || r.agency_code || ':' || r.victim_person_id, 'UTF8'))), 'hex')  AS victim_key,
           encode(sha256({outer_key} || sha256({inner_key} || convert_to(
               'person:' || r.agency_code || ':' || r.accused_person_id, 'UTF8'))), 'hex') AS accused_key,
           encode(sha256({outer_key} || sha256({inner_key} || convert_to(
               'address:' || r.agency_code || ':' || r.address_id, 'UTF8'))), 'hex')       AS address_key
    FROM {raw} AS r
    JOIN {files} AS f USING (file_id)
    -- "unique within the file": duplicates per file by a grouped join, not a window (no sort
    -- of the whole file)
    LEFT JOIN (SELECT file_id, incident_id, count(*) AS occurrences FROM {raw}
               WHERE incident_id IS NOT NULL GROUP BY file_id, incident_id
               HAVING count(*) > 1) AS d
           ON d.file_id = r.file_id AND d.incident_id = r.incident_id
    -- OFFSET 0 keeps this subquery from being flattened into the outer one. Flattened, every
    -- rule that mentions a parsed column would parse it again (six timestamp parses a row
    -- instead of one): measured 2.5x slower for the whole statement.
    OFFSET 0
) AS t
