-- Delivered data files whose load finished longer ago than the file retention period, for the
-- caller to delete from the landing area if they are still there. Every finished row is a
-- candidate, also one already marked deleted: the same bytes delivered again after the first
-- deletion are just as old and go too. Parameters: older_than.
SELECT file_id, agency_code, extract_date, file_name, sha256
FROM ops.extract_file
WHERE status IN ('loaded', 'refused', 'superseded', 'ignored_older')
  AND finished_at < %(older_than)s
ORDER BY agency_code, extract_date, file_id
