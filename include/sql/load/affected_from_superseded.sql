-- The incidents of the extracts of the day this file replaces.
INSERT INTO affected_incident
SELECT DISTINCT v.agency_code, v.incident_id
FROM core.call_version v
WHERE v.file_id = ANY(%(superseded)s::bigint[])
  AND NOT EXISTS (SELECT 1 FROM affected_incident a
                  WHERE a.agency_code = v.agency_code AND a.incident_id = v.incident_id)
