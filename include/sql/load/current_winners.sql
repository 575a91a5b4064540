-- Re-derive core.call for the incidents in pg_temp.affected_incident, step 1: the winning
-- version of each: the highest record_version; among equal versions the earliest extract day
-- (a later equal version is ignored, as the contract says). Keys only, so the sort is narrow.
CREATE TEMP TABLE current_winner ON COMMIT DROP AS
SELECT DISTINCT ON (v.agency_code, v.incident_id) v.agency_code, v.incident_id, v.file_id
FROM core.call_version AS v
JOIN pg_temp.affected_incident AS a USING (agency_code, incident_id)
ORDER BY v.agency_code, v.incident_id, v.record_version DESC, v.extract_date ASC, v.file_id ASC
