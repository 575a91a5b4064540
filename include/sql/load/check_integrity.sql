-- The references the merge must leave intact, checked set-based in its transaction (they
-- replace per-row foreign-key triggers, see migration 006). Every count must be 0; the merge
-- rolls back otherwise. Parameters: file_id.
SELECT
    -- the file this load wrote versions for is registered
    CASE WHEN EXISTS (SELECT 1 FROM ops.extract_file WHERE file_id = %(file_id)s) THEN 0
         ELSE (SELECT count(*) FROM core.call_version WHERE file_id = %(file_id)s) END AS versions_without_file,
    -- contact details belong to a current call with consent 'given', from the same file
    (SELECT count(*) FROM pg_temp.affected_incident a
     JOIN contact.victim_contact vc USING (agency_code, incident_id)
     WHERE NOT EXISTS (SELECT 1 FROM core.call c
                       WHERE c.agency_code = vc.agency_code AND c.incident_id = vc.incident_id
                         AND c.file_id = vc.file_id AND c.consent_status = 'given'))
        AS contacts_without_current_call
