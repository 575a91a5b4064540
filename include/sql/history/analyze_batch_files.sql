-- Statistics for the typed pass's planner: the row counts decide its parallel workers, and
-- file_id / incident_id its duplicate check. Those two columns only: all of them cost 0.8 s
-- an agency (200k rows) under a parallel import.
ANALYZE {files};
ANALYZE {raw} (file_id, incident_id)
