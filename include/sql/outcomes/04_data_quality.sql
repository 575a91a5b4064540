-- e. Data-quality history per agency and extract day: every delivery registered in
-- ops.extract_file, whatever happened to it, and quarantined rows by rule (a row that broke
-- several rules counts once per rule).
CREATE TEMP TABLE t_data_quality_daily ON COMMIT DROP AS
SELECT agency_code,
       extract_date,
       count(*)::int AS files_received,
       count(*) FILTER (WHERE status = 'refused')::int AS files_refused,
       coalesce(sum(rows_in_file), 0)::int AS rows_in_files,
       coalesce(sum(rows_loaded), 0)::int AS rows_loaded,
       coalesce(sum(rows_quarantined), 0)::int AS rows_quarantined
FROM ops.extract_file
GROUP BY agency_code, extract_date;

CREATE TEMP TABLE t_quarantine_by_rule ON COMMIT DROP AS
SELECT f.agency_code, f.extract_date, q.rule, count(*)::int AS rows
FROM ops.quarantine_row AS q
JOIN ops.extract_file AS f USING (file_id)
GROUP BY f.agency_code, f.extract_date, q.rule;
