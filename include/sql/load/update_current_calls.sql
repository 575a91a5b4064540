-- Step 2: incidents already in core.call whose winner changed take the winning version.
-- Rows whose winner did not change are not touched, so a rerun writes nothing.
UPDATE core.call AS c SET
    file_id = v.file_id, extract_date = v.extract_date, record_version = v.record_version,
    call_received_at = v.call_received_at, cleared_at = v.cleared_at,
    call_source = v.call_source, call_type = v.call_type, patrol_zone = v.patrol_zone,
    clearance_status = v.clearance_status, charges_laid = v.charges_laid,
    relationship = v.relationship, weapon = v.weapon, injury_level = v.injury_level,
    children_present = v.children_present, substance_involved = v.substance_involved,
    consent_status = v.consent_status, consent_recorded_at = v.consent_recorded_at,
    consent_officer_id = v.consent_officer_id, victim_key = v.victim_key,
    accused_key = v.accused_key, address_key = v.address_key,
    responding_officer_id = v.responding_officer_id, loaded_at = now()
FROM pg_temp.current_winner AS w
JOIN core.call_version AS v USING (agency_code, incident_id, file_id)
WHERE c.agency_code = w.agency_code AND c.incident_id = w.incident_id
  AND c.file_id <> w.file_id
