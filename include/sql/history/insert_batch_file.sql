INSERT INTO {files} (file_id, extract_date, generated_at, extract_year)
VALUES (%s, %s, %s, %s)
