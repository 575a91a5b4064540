-- The incidents of the valid rows of the files in file_ids (the nightly load's one file, or a
-- segment of a history batch). {typed}: identifier. Parameters: file_ids.
-- Every file-id list is cast to bigint[]: psycopg sends small Python ints as int2[], and
-- bigint = ANY(int2[]) is not hashed. Measured at 200k rows x 3,650 file ids: 1.0 s a
-- statement without the cast, 0.036 s with it (each history merge statement filters so).
-- No DISTINCT: within a file an incident id is unique (a repeat is quarantined); an incident
-- corrected in several files of a history segment is listed once per file, which every
-- statement reading affected_incident tolerates (current_winners takes DISTINCT ON). DISTINCT
-- cost the nightly load 1.35 s at 1M rows.
INSERT INTO affected_incident
SELECT agency_code, incident_id FROM {typed}
WHERE file_id = ANY(%(file_ids)s::bigint[]) AND cardinality(failed_rules) = 0
