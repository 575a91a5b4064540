DELETE FROM ops.quarantine_row WHERE file_id = ANY(%(file_ids)s::bigint[])
