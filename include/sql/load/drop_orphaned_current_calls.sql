-- Incidents that no file in force mentions any more (a re-extract dropped them).
WITH gone AS (
    SELECT a.agency_code, a.incident_id FROM pg_temp.affected_incident a
    WHERE NOT EXISTS (SELECT 1 FROM core.call_version v
                      WHERE v.agency_code = a.agency_code AND v.incident_id = a.incident_id)
), no_contact AS (
    DELETE FROM contact.victim_contact vc USING gone g
    WHERE vc.agency_code = g.agency_code AND vc.incident_id = g.incident_id
)
DELETE FROM core.call c USING gone g
WHERE c.agency_code = g.agency_code AND c.incident_id = g.incident_id
