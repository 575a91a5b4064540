-- Rows of this file that are not the current version of their call.
SELECT count(*) AS n
FROM core.call_version v
JOIN core.call c USING (agency_code, incident_id)
WHERE v.file_id = %(file_id)s AND c.file_id <> %(file_id)s
