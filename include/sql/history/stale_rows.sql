-- Per file of a segment, the rows_stale the nightly load records: the file's versions that
-- were not current right after its own merge, i.e. that a version merged before it (an
-- earlier file, or one loaded before this import) beats by the winner order of
-- load/current_winners.sql. Parameters: file_ids, seg_start (first extract day of the segment).
-- A LATERAL probe with LIMIT 1 rather than EXISTS: the planner turned EXISTS into a hash
-- semi-join over the whole of core.call_version, which grows with every agency imported
-- (measured with 4.8M versions: 5.2 s; per-row index probes on its key: 1.5 s).
SELECT v.file_id, count(*) AS n
FROM core.call_version AS v
CROSS JOIN LATERAL (
    SELECT 1 FROM core.call_version AS u
    WHERE u.agency_code = v.agency_code AND u.incident_id = v.incident_id
      AND u.file_id <> v.file_id
      AND (u.file_id <> ALL(%(file_ids)s::bigint[]) OR u.extract_date < v.extract_date)
      AND (u.record_version > v.record_version
           OR (u.record_version = v.record_version
               AND (u.extract_date < v.extract_date
                    OR (u.extract_date = v.extract_date AND u.file_id < v.file_id))))
    LIMIT 1) AS better
WHERE v.file_id = ANY(%(file_ids)s::bigint[])
GROUP BY v.file_id
