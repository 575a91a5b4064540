SELECT count(*) AS n FROM {typed} WHERE {predicate}
