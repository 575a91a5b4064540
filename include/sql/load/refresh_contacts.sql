-- Contact details: kept only while the incident's current consent is 'given'.
-- 1. drop them for affected incidents whose current consent is anything else (e.g. withdrawn),
--    or whose details came from another version than the current one (a re-extract fell back
--    to an older file whose details are no longer at hand: deleting is the safe side)
DELETE FROM contact.victim_contact vc
USING pg_temp.affected_incident a, core.call c
WHERE vc.agency_code = a.agency_code AND vc.incident_id = a.incident_id
  AND c.agency_code = a.agency_code AND c.incident_id = a.incident_id
  AND (c.consent_status <> 'given' OR vc.file_id <> c.file_id);
