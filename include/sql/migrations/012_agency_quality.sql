-- A province of agencies at a glance (monitoring page, data-quality section): one row per
-- agency with its latest extract day, what happened to it, and how far it is behind the
-- latest day any agency delivered. Operational counts about files and rows, not about people:
-- no suppression (like published.data_quality_daily, which it summarises).
CREATE VIEW published.agency_quality_latest AS
WITH latest AS (SELECT max(extract_date) AS day FROM outcomes.data_quality_daily)
SELECT d.agency_code,
       max(d.extract_date) AS last_extract_date,
       (array_agg(CASE WHEN d.files_refused >= d.files_received THEN 'refused' ELSE 'loaded' END
                  ORDER BY d.extract_date DESC))[1] AS last_outcome,
       ((SELECT day FROM latest) - max(d.extract_date))::int AS days_behind,
       count(*)::int AS days_received,
       sum(d.files_refused)::int AS files_refused,
       sum(d.rows_loaded)::int AS rows_loaded,
       sum(d.rows_quarantined)::int AS rows_quarantined
FROM outcomes.data_quality_daily AS d
WHERE d.files_received > 0
GROUP BY d.agency_code;

ALTER VIEW published.agency_quality_latest OWNER TO upstream_outcomes;
GRANT SELECT ON published.agency_quality_latest TO upstream_analyst;
