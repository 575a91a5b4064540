-- A loaded extract of the same day generated at the same time or later: this one is older.
SELECT file_id FROM ops.extract_file
WHERE agency_code = %(agency)s AND extract_date = %(extract_date)s AND status = 'loaded'
  AND file_id <> %(file_id)s AND generated_at >= %(generated_at)s
