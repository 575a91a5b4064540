-- Re-derive core.call for the incidents in pg_temp.affected_incident: the highest
-- record_version wins; among equal versions the earliest extract day (a later equal version
-- is ignored). Rows whose winner did not change are not touched, so a rerun writes nothing.
INSERT INTO core.call AS c (
    agency_code, incident_id, file_id, extract_date, record_version, call_received_at,
    cleared_at, call_source, call_type, patrol_zone, clearance_status, charges_laid,
    relationship, weapon, injury_level, children_present, substance_involved, consent_status,
    consent_recorded_at, consent_officer_id, victim_key, accused_key, address_key,
    responding_officer_id)
SELECT DISTINCT ON (v.agency_code, v.incident_id)
    v.agency_code, v.incident_id, v.file_id, v.extract_date, v.record_version,
    v.call_received_at, v.cleared_at, v.call_source, v.call_type, v.patrol_zone,
    v.clearance_status, v.charges_laid, v.relationship, v.weapon, v.injury_level,
    v.children_present, v.substance_involved, v.consent_status, v.consent_recorded_at,
    v.consent_officer_id, v.victim_key, v.accused_key, v.address_key, v.responding_officer_id
FROM core.call_version AS v
JOIN pg_temp.affected_incident AS a USING (agency_code, incident_id)
ORDER BY v.agency_code, v.incident_id, v.record_version DESC, v.extract_date ASC, v.file_id ASC
ON CONFLICT (agency_code, incident_id) DO UPDATE SET
    file_id = EXCLUDED.file_id, extract_date = EXCLUDED.extract_date,
    record_version = EXCLUDED.record_version, call_received_at = EXCLUDED.call_received_at,
    cleared_at = EXCLUDED.cleared_at, call_source = EXCLUDED.call_source,
    call_type = EXCLUDED.call_type, patrol_zone = EXCLUDED.patrol_zone,
    clearance_status = EXCLUDED.clearance_status, charges_laid = EXCLUDED.charges_laid,
    relationship = EXCLUDED.relationship, weapon = EXCLUDED.weapon,
    injury_level = EXCLUDED.injury_level, children_present = EXCLUDED.children_present,
    substance_involved = EXCLUDED.substance_involved, consent_status = EXCLUDED.consent_status,
    consent_recorded_at = EXCLUDED.consent_recorded_at,
    consent_officer_id = EXCLUDED.consent_officer_id, victim_key = EXCLUDED.victim_key,
    accused_key = EXCLUDED.accused_key, address_key = EXCLUDED.address_key,
    responding_officer_id = EXCLUDED.responding_officer_id, loaded_at = now()
WHERE c.file_id IS DISTINCT FROM EXCLUDED.file_id
