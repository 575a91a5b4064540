-- One row per agency and extract day, for `upstream status`: every configured agency on every
-- day between the first and the last known day (within the window asked for), plus any other
-- agency that delivered. A day without any ops.extract_file row is 'missing'.
-- The file shown is the loaded one, else the latest; a later file that did not load is noted.
WITH bounds AS (
    SELECT min(extract_date) AS first_day, max(extract_date) AS last_day FROM ops.extract_file
), days AS (
    SELECT d::date AS extract_date
    FROM bounds,
         generate_series(greatest(first_day, last_day - (%(days)s - 1)), last_day,
                         interval '1 day') AS d
), ranked AS (
    SELECT f.*,
           count(*) OVER w AS files,
           row_number() OVER (w ORDER BY (f.status = 'loaded') DESC, f.file_id DESC) AS pick,
           row_number() OVER (w ORDER BY f.file_id DESC) AS newest
    FROM ops.extract_file f
    WHERE f.extract_date >= (SELECT min(extract_date) FROM days)
    WINDOW w AS (PARTITION BY f.agency_code, f.extract_date)
), grid AS (
    SELECT a.agency_code, d.extract_date
    FROM unnest(%(agencies)s::text[]) AS a (agency_code) CROSS JOIN days d
    UNION
    SELECT agency_code, extract_date FROM ranked
)
SELECT g.agency_code,
       g.extract_date,
       coalesce(f.status, 'missing') AS status,
       f.rows_in_file,
       f.rows_loaded,
       f.rows_quarantined,
       CASE
           WHEN f.file_id IS NULL THEN 'no file recorded (not delivered yet, or not run)'
           WHEN n.file_id <> f.file_id THEN
               concat_ws('; ', f.reason, 'a later file was ' || n.status || ': '
                                         || coalesce(n.reason, 'no reason recorded'))
           WHEN f.status = 'loading' THEN 'load did not finish (worker killed?)'
           ELSE f.reason
       END AS reason,
       coalesce(f.files, 0) AS files
FROM grid g
LEFT JOIN ranked f ON f.agency_code = g.agency_code AND f.extract_date = g.extract_date
                  AND f.pick = 1
LEFT JOIN ranked n ON n.agency_code = g.agency_code AND n.extract_date = g.extract_date
                  AND n.newest = 1
ORDER BY g.extract_date DESC, g.agency_code;
