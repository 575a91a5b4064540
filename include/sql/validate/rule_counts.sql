SELECT f.rule, count(*) AS n FROM {suspect}, unnest(failed_rules) AS f (rule) GROUP BY f.rule
