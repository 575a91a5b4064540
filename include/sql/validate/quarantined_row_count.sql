SELECT count(DISTINCT row_number) AS n FROM ops.quarantine_row WHERE file_id = %(file_id)s
