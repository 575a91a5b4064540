UPDATE ops.extract_file SET status = 'superseded', superseded_by = %(file_id)s
WHERE agency_code = %(agency)s AND extract_date = %(extract_date)s
  AND status = 'loaded' AND file_id <> %(file_id)s
RETURNING file_id
