-- One append-only line per purge that removed something: kind, how many, the cutoff.
-- Counts only: never an incident id, a file name or a value.
-- Parameters: kind, items, retention_days, older_than, detail.
INSERT INTO ops.retention_log (kind, items, retention_days, older_than, detail)
VALUES (%(kind)s, %(items)s, %(retention_days)s, %(older_than)s, %(detail)s)
