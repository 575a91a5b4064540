-- Record that a data file was deleted (its manifest and this load record stay). Re-checks,
-- under the loader's per-file advisory lock held by the caller, that the file is still a
-- finished one past retention. Parameters: file_id, older_than.
UPDATE ops.extract_file
SET data_file_deleted_at = now()
WHERE file_id = %(file_id)s
  AND status IN ('loaded', 'refused', 'superseded', 'ignored_older')
  AND finished_at < %(older_than)s
RETURNING file_id
