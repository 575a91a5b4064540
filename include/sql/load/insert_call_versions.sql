-- Valid rows of the files in file_ids (the nightly load's one file, or a segment of a history
-- batch) -> core.call_version, each with its own file_id and extract day, pseudonymised,
-- contact fields and narrative left behind (the pseudonyms were computed with the typed
-- table). {typed}: the typed staging table (identifier). Parameters: file_ids.
-- No ON CONFLICT: a file is merged once (its status and advisory lock guard that), so a
-- conflict would be a bug and must fail the merge; the speculative insert cost a third of this
-- statement.
INSERT INTO core.call_version (
    agency_code, incident_id, file_id, extract_date, record_version, call_received_at,
    cleared_at, call_source, call_type, patrol_zone, clearance_status, charges_laid,
    relationship, weapon, injury_level, children_present, substance_involved, consent_status,
    consent_recorded_at, consent_officer_id, victim_key, accused_key, address_key,
    responding_officer_id)
SELECT t.agency_code, t.incident_id, t.file_id, t.extract_date, t.record_version_int,
       t.call_received_ts, t.cleared_ts, t.call_source, t.call_type, t.patrol_zone,
       t.clearance_status, t.charges_laid_int, t.relationship, t.weapon, t.injury_level,
       t.children_present_bool, t.substance_involved_bool, t.consent_status,
       t.consent_recorded_ts, t.consent_officer_id,
       t.victim_key, t.accused_key, t.address_key,
       t.responding_officer_id
FROM {typed} AS t
WHERE t.file_id = ANY(%(file_ids)s::bigint[]) AND cardinality(t.failed_rules) = 0
