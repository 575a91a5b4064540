SELECT file_id, count(*) AS n FROM core.call_version
WHERE file_id = ANY(%(file_ids)s::bigint[]) GROUP BY file_id
