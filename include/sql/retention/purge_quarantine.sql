-- Quarantine records (file, row number, incident id, rule) older than the retention period.
-- The per-file totals stay on ops.extract_file (rows_quarantined).
-- Parameters: older_than (now - retention period).
DELETE FROM ops.quarantine_row
WHERE recorded_at < %(older_than)s
