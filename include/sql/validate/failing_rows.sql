-- predicate: one rule's failing predicate (upstream.rules), a constant, never data.
SELECT count(*) OVER () AS n, row_number FROM {typed} WHERE {predicate}
ORDER BY row_number LIMIT %(limit)s
