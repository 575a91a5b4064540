-- Quarantine every row of one typed staging table that breaks any of the listed rules, in one
-- pass. Only identifiers and rule names are kept; the incident id only when well-formed.
-- {typed}: identifier; {checks}: (rule, column, failing-predicate) rows built from upstream.rules.
INSERT INTO ops.quarantine_row (file_id, row_number, incident_id, rule, column_name)
SELECT %(file_id)s, t.row_number,
       CASE WHEN t.incident_id ~ '^[A-Z0-9-]+$' AND length(t.incident_id) <= 32
            THEN t.incident_id END,
       c.rule, c.column_name
FROM {typed} AS t
CROSS JOIN LATERAL (VALUES {checks}) AS c (rule, column_name, failed)
WHERE c.failed
ON CONFLICT (file_id, row_number, rule) DO NOTHING
