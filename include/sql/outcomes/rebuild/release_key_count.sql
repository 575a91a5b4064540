SELECT count(*) AS n FROM outcomes.release_key
