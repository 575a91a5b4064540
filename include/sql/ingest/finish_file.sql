UPDATE ops.extract_file
SET status = %(status)s, reason = %(reason)s, rows_in_file = %(rows_in_file)s,
    rows_loaded = %(rows_loaded)s, rows_quarantined = %(rows_quarantined)s,
    rows_stale = %(rows_stale)s, unknown_columns = %(unknown_columns)s,
    data_docs_path = %(data_docs_path)s, finished_at = now()
WHERE file_id = %(file_id)s
