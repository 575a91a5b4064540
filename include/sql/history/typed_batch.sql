-- Typed copy of a batch of staged extracts of ONE agency (bulk history import): the same
-- parses, file-level constants, pseudonyms and one-pass `failed_rules` as
-- validate/typed_table.sql, per file. Each raw row carries its file_id; pg_temp.hist_file
-- gives per file the constants the nightly load binds as literals (generated_at, extract
-- year) and its first raw row, so row_number counts from 1 in each file as it does nightly.
-- {raw}, {typed}, {files} (history/copy_batch_files.sql): identifiers; {expected_agency}: literal; {failed_rules}, {inner_key},
-- {outer_key}: as in validate/typed_table.sql.
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
           core.hmac_sha256_hex({inner_key}, {outer_key},
                                'person:' || r.agency_code || ':' || r.victim_person_id)  AS victim_key,
           core.hmac_sha256_hex({inner_key}, {outer_key},
                                'person:' || r.agency_code || ':' || r.accused_person_id) AS accused_key,
           core.hmac_sha256_hex({inner_key}, {outer_key},
                                'address:' || r.agency_code || ':' || r.address_id)       AS address_key
    FROM {raw} AS r
    JOIN {files} AS f USING (file_id)
    -- "unique within the file": duplicates per file, by a grouped join as nightly
    LEFT JOIN (SELECT file_id, incident_id, count(*) AS occurrences FROM {raw}
               WHERE incident_id IS NOT NULL GROUP BY file_id, incident_id
               HAVING count(*) > 1) AS d
           ON d.file_id = r.file_id AND d.incident_id = r.incident_id
    OFFSET 0  -- parse once per row (see validate/typed_table.sql)
) AS t
