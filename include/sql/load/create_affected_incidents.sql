-- The incidents whose current call may change. No key on this table: a 1M-row key build
-- cost more than every join that reads it.
CREATE TEMP TABLE affected_incident (agency_code text, incident_id text) ON COMMIT DROP
