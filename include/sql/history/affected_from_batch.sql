-- The segment's valid rows (load/affected_from_file.sql for several files).
INSERT INTO affected_incident
SELECT DISTINCT agency_code, incident_id FROM {typed}
WHERE file_id = ANY(%(file_ids)s) AND cardinality(failed_rules) = 0
