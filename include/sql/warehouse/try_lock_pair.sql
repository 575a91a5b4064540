SELECT pg_try_advisory_lock(%s, %s) AS ok
