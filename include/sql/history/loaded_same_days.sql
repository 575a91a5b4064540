SELECT file_id, extract_date, generated_at FROM ops.extract_file
WHERE agency_code = %s AND status = 'loaded' AND extract_date = ANY(%s::date[])
