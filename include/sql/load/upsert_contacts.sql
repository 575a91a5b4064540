-- 2. store them for incidents whose current version comes from this file with consent 'given'.
-- {typed}: the typed staging table. Parameters: file_id.
INSERT INTO contact.victim_contact AS vc (
    agency_code, incident_id, record_version, file_id, given_name, family_name, birth_year,
    phone, email, preferred_contact, safe_contact_notes, language, postal_code)
SELECT t.agency_code, t.incident_id, t.record_version_int, %(file_id)s, t.victim_given_name,
       t.victim_family_name, t.victim_birth_year_int, t.victim_phone, t.victim_email,
       t.victim_preferred_contact, t.victim_safe_contact_notes,
       coalesce(t.victim_language, 'en'), t.victim_postal_code
FROM {typed} AS t
JOIN core.call AS c ON c.agency_code = t.agency_code AND c.incident_id = t.incident_id
WHERE c.file_id = %(file_id)s AND c.consent_status = 'given'
  AND cardinality(t.failed_rules) = 0
ON CONFLICT (agency_code, incident_id) DO UPDATE SET
    record_version = EXCLUDED.record_version, file_id = EXCLUDED.file_id,
    given_name = EXCLUDED.given_name, family_name = EXCLUDED.family_name,
    birth_year = EXCLUDED.birth_year, phone = EXCLUDED.phone, email = EXCLUDED.email,
    preferred_contact = EXCLUDED.preferred_contact,
    safe_contact_notes = EXCLUDED.safe_contact_notes, language = EXCLUDED.language,
    postal_code = EXCLUDED.postal_code, stored_at = now()
WHERE vc.file_id IS DISTINCT FROM EXCLUDED.file_id
