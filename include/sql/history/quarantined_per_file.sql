SELECT file_id, count(DISTINCT row_number) AS n FROM ops.quarantine_row
WHERE file_id = ANY(%(file_ids)s::bigint[]) GROUP BY file_id
