-- Register a delivered file (or find it again: same agency, day and sha256).
INSERT INTO ops.extract_file (agency_code, extract_date, file_name, sha256, manifest_rows,
                              generated_at, status)
VALUES (%(agency)s, %(extract_date)s, %(file_name)s, %(sha256)s, %(rows)s, %(generated_at)s,
        'loading')
ON CONFLICT (agency_code, extract_date, sha256) DO UPDATE SET manifest_rows = EXCLUDED.manifest_rows
RETURNING file_id, (xmax <> 0) AS existed
