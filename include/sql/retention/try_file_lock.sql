-- The loader's per-file lock (upstream.warehouse.locks): a file being (re)loaded is skipped.
SELECT pg_try_advisory_lock(%(namespace)s, %(file_id)s) AS ok
