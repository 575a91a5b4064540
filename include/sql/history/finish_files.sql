-- The nightly load's ingest/finish_file.sql for many files, in one statement.
UPDATE ops.extract_file AS e
SET status = %s, reason = u.reason, rows_in_file = u.rows_in_file,
    rows_loaded = u.rows_loaded, rows_quarantined = u.rows_quarantined,
    rows_stale = u.rows_stale,
    unknown_columns = ARRAY(SELECT jsonb_array_elements_text(u.unknown)),
    data_docs_path = u.docs, finished_at = now()
FROM unnest(%s::bigint[], %s::text[], %s::int[], %s::int[], %s::int[], %s::int[],
            %s::jsonb[], %s::text[])
     AS u (file_id, reason, rows_in_file, rows_loaded, rows_quarantined, rows_stale, unknown, docs)
WHERE e.file_id = u.file_id
