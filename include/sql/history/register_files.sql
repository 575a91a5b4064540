-- The nightly load's ingest/register_file.sql for a batch of files, in one statement.
INSERT INTO ops.extract_file (agency_code, extract_date, file_name, sha256, manifest_rows,
                              generated_at, status)
SELECT %s, d, n, s, r, g, 'loading'
FROM unnest(%s::date[], %s::text[], %s::text[], %s::int[], %s::timestamptz[])
     WITH ORDINALITY AS u (d, n, s, r, g, o)
ORDER BY o
ON CONFLICT (agency_code, extract_date, sha256) DO UPDATE SET manifest_rows = EXCLUDED.manifest_rows
RETURNING file_id, extract_date, sha256, status, (xmax <> 0) AS existed
