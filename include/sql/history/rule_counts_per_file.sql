SELECT file_id, f.rule, count(*) AS n FROM {suspect}, unnest(failed_rules) AS f (rule)
GROUP BY file_id, f.rule
