-- validate/quarantine_rows.sql for a batch: every file's failing rows, in one pass.
-- {suspect}: identifier. Parameters: rule_names, rule_columns (parallel arrays).
INSERT INTO ops.quarantine_row (file_id, row_number, incident_id, rule, column_name)
SELECT s.file_id, s.row_number,
       CASE WHEN s.incident_id ~ '^[A-Z0-9-]+$' AND length(s.incident_id) <= 32
            THEN s.incident_id END,
       f.rule, c.column_name
FROM {suspect} AS s
CROSS JOIN LATERAL unnest(s.failed_rules) AS f (rule)
JOIN unnest(%(rule_names)s::text[], %(rule_columns)s::text[]) AS c (rule, column_name)
  ON c.rule = f.rule
ON CONFLICT (file_id, row_number, rule) DO NOTHING
