DELETE FROM core.call_version WHERE file_id = ANY(%(superseded)s::bigint[])
