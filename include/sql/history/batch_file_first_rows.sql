-- Each file's first raw row: row numbers count from 1 per file, as in the nightly load.
UPDATE {files} AS h SET first_row = r.first_row
FROM (SELECT file_id, min(raw_row) AS first_row FROM {raw} GROUP BY file_id) AS r
WHERE r.file_id = h.file_id
