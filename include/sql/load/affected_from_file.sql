-- This file's valid rows (unique: a repeated incident id is quarantined).
INSERT INTO affected_incident
SELECT agency_code, incident_id FROM {typed} WHERE cardinality(failed_rules) = 0
