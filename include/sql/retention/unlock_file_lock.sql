SELECT pg_advisory_unlock(%(namespace)s, %(file_id)s)
