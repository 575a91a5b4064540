-- Step 3: incidents new to core.call. A plain insert: an upsert (INSERT ... ON CONFLICT) of a
-- 1M-row file cost half as much again as the insert itself.
INSERT INTO core.call (
    agency_code, incident_id, file_id, extract_date, record_version, call_received_at,
    cleared_at, call_source, call_type, patrol_zone, clearance_status, charges_laid,
    relationship, weapon, injury_level, children_present, substance_involved, consent_status,
    consent_recorded_at, consent_officer_id, victim_key, accused_key, address_key,
    responding_officer_id)
SELECT v.agency_code, v.incident_id, v.file_id, v.extract_date, v.record_version,
       v.call_received_at, v.cleared_at, v.call_source, v.call_type, v.patrol_zone,
       v.clearance_status, v.charges_laid, v.relationship, v.weapon, v.injury_level,
       v.children_present, v.substance_involved, v.consent_status, v.consent_recorded_at,
       v.consent_officer_id, v.victim_key, v.accused_key, v.address_key, v.responding_officer_id
FROM pg_temp.current_winner AS w
JOIN core.call_version AS v USING (agency_code, incident_id, file_id)
WHERE NOT EXISTS (SELECT 1 FROM core.call AS c
                  WHERE c.agency_code = w.agency_code AND c.incident_id = w.incident_id)
