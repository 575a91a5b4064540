-- A file refused before it was registered (its manifest failed), as the nightly DAG records it.
INSERT INTO ops.extract_file (agency_code, extract_date, file_name, sha256, status, reason,
                              finished_at)
VALUES (%(agency)s, %(extract_date)s, %(file_name)s, %(sha256)s, 'refused', %(reason)s, now())
ON CONFLICT (agency_code, extract_date, sha256) DO UPDATE SET reason = EXCLUDED.reason
