-- Quarantine every row that broke a rule, from the one-pass evaluation (failed_rules). Only
-- identifiers and rule names are kept; the incident id only when well-formed.
-- {suspect}: identifier. Parameters: file_id, rule_names, rule_columns (parallel arrays).
INSERT INTO ops.quarantine_row (file_id, row_number, incident_id, rule, column_name)
SELECT %(file_id)s, s.row_number,
       CASE WHEN s.incident_id ~ '^[A-Z0-9-]+$' AND length(s.incident_id) <= 32
            THEN s.incident_id END,
       f.rule, c.column_name
FROM {suspect} AS s
CROSS JOIN LATERAL unnest(s.failed_rules) AS f (rule)
JOIN unnest(%(rule_names)s::text[], %(rule_columns)s::text[]) AS c (rule, column_name)
  ON c.rule = f.rule
ON CONFLICT (file_id, row_number, rule) DO NOTHING
