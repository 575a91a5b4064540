-- 2. store contact details for incidents whose current version comes from one of the files in
-- file_ids (the nightly load's one file, or a segment of a history batch) with consent 'given'.
-- Equal to merging a segment's files night by night: a segment adds versions only (a
-- re-extract that supersedes starts a segment and supersedes first), so a version current at
-- the end was current from its own file's merge on.
-- Delete-then-insert rather than ON CONFLICT DO UPDATE: the loader role may write contact
-- details but read only their key columns, and an upsert would need to read them.
-- {typed}: the typed staging table. Parameters: file_ids.
WITH fresh AS (
    SELECT t.* FROM {typed} AS t
    JOIN core.call AS c ON c.agency_code = t.agency_code AND c.incident_id = t.incident_id
    -- t.consent_status repeats c's (c comes from this very row): it lets the planner drop
    -- the other rows before the join instead of probing core.call for every row of the file
    WHERE t.file_id = ANY(%(file_ids)s::bigint[]) AND t.consent_status = 'given'
      AND c.file_id = ANY(%(file_ids)s::bigint[]) AND c.file_id = t.file_id
      AND c.consent_status = 'given' AND cardinality(t.failed_rules) = 0
), replaced AS (
    DELETE FROM contact.victim_contact vc USING fresh f
    WHERE vc.agency_code = f.agency_code AND vc.incident_id = f.incident_id
)
INSERT INTO contact.victim_contact (
    agency_code, incident_id, record_version, file_id, given_name, family_name, birth_year,
    phone, email, preferred_contact, safe_contact_notes, language, postal_code)
SELECT f.agency_code, f.incident_id, f.record_version_int, f.file_id, f.victim_given_name,
       f.victim_family_name, f.victim_birth_year_int, f.victim_phone, f.victim_email,
       f.victim_preferred_contact, f.victim_safe_contact_notes,
       coalesce(f.victim_language, 'en'), f.victim_postal_code
FROM fresh AS f
