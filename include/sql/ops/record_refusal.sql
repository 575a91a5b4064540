-- A file refused before the loader registered it still belongs in the data-quality history
-- (upstream.airflow.tasks.nightly). reason is the refusal's public message: no values.
INSERT INTO ops.extract_file (agency_code, extract_date, file_name, sha256, status, reason,
                              finished_at)
VALUES (%(agency)s, %(extract_date)s, %(file_name)s, %(sha256)s, 'refused', %(reason)s, now())
ON CONFLICT (agency_code, extract_date, sha256)
DO UPDATE SET reason = EXCLUDED.reason, finished_at = EXCLUDED.finished_at
