-- The reason of the agency's latest refusal of the day since a run began (upstream.airflow.run).
SELECT reason
FROM ops.extract_file
WHERE agency_code = %(agency)s
  AND extract_date = %(extract_date)s
  AND status = 'refused'
  AND finished_at >= %(since)s
ORDER BY finished_at DESC
LIMIT 1
