-- a. Calls by local day and month of call_received_at, agency and patrol zone. Temp tables
-- live until the rebuild commits. Local time: the rebuild sets TimeZone to UPSTREAM_TIMEZONE
-- for its transaction, so call_received_at::date is the local day (five times cheaper than
-- AT TIME ZONE '<zone>', which looks the zone up for every row).

-- Day x zone: one pass over core.call. One count per (day, zone, clearance x consent class),
-- pivoted afterwards: a single aggregate per row instead of nine filtered ones.
CREATE TEMP TABLE t_calls_zone ON COMMIT DROP AS
WITH k AS (
    SELECT c.agency_code, c.call_received_at::date AS day, c.patrol_zone,
           CASE WHEN c.clearance_status = 'cleared_by_charge' THEN 0
                ELSE CASE c.consent_status WHEN 'given' THEN 1 WHEN 'declined' THEN 2
                                           WHEN 'withdrawn' THEN 3 WHEN 'not_asked' THEN 4
                                           WHEN 'unable_to_ask' THEN 5 ELSE 6 END
           END AS class,
           count(*)::int AS n
    FROM core.call AS c
    GROUP BY 1, 2, 3, 4
)
SELECT agency_code, day, patrol_zone,
       sum(n)::int AS calls,
       coalesce(sum(n) FILTER (WHERE class = 0), 0)::int AS cleared_by_charge,
       coalesce(sum(n) FILTER (WHERE class > 0), 0)::int AS non_charge,
       coalesce(sum(n) FILTER (WHERE class = 1), 0)::int AS consent_given,
       coalesce(sum(n) FILTER (WHERE class = 2), 0)::int AS consent_declined,
       coalesce(sum(n) FILTER (WHERE class = 3), 0)::int AS consent_withdrawn,
       coalesce(sum(n) FILTER (WHERE class = 4), 0)::int AS consent_not_asked,
       coalesce(sum(n) FILTER (WHERE class = 5), 0)::int AS consent_unable_to_ask
FROM k
GROUP BY agency_code, day, patrol_zone;

-- Zone rows plus agency totals ('(all)'). Agency totals are dense: a day without calls
-- between an agency's first and last call is a row of zeros, not a gap.
CREATE TEMP TABLE t_calls_daily ON COMMIT DROP AS
WITH agency_day AS (
    SELECT agency_code, day, sum(calls)::int AS calls,
           sum(cleared_by_charge)::int AS cleared_by_charge, sum(non_charge)::int AS non_charge,
           sum(consent_given)::int AS consent_given, sum(consent_declined)::int AS consent_declined,
           sum(consent_withdrawn)::int AS consent_withdrawn,
           sum(consent_not_asked)::int AS consent_not_asked,
           sum(consent_unable_to_ask)::int AS consent_unable_to_ask
    FROM t_calls_zone
    GROUP BY agency_code, day
), span AS (
    SELECT agency_code, min(day) AS lo, max(day) AS hi FROM agency_day GROUP BY agency_code
)
SELECT agency_code, day, patrol_zone, calls, cleared_by_charge, non_charge, consent_given,
       consent_declined, consent_withdrawn, consent_not_asked, consent_unable_to_ask
FROM t_calls_zone
UNION ALL
SELECT s.agency_code, d.day::date, '(all)',
       coalesce(a.calls, 0), coalesce(a.cleared_by_charge, 0), coalesce(a.non_charge, 0),
       coalesce(a.consent_given, 0), coalesce(a.consent_declined, 0),
       coalesce(a.consent_withdrawn, 0), coalesce(a.consent_not_asked, 0),
       coalesce(a.consent_unable_to_ask, 0)
FROM span AS s
CROSS JOIN LATERAL generate_series(s.lo::timestamp, s.hi::timestamp, interval '1 day') AS d(day)
LEFT JOIN agency_day AS a ON a.agency_code = s.agency_code AND a.day = d.day::date;

CREATE TEMP TABLE t_calls_monthly ON COMMIT DROP AS
SELECT agency_code,
       date_trunc('month', day)::date AS month,
       patrol_zone,
       sum(calls)::int AS calls,
       sum(cleared_by_charge)::int AS cleared_by_charge,
       sum(non_charge)::int AS non_charge,
       sum(consent_given)::int AS consent_given,
       sum(consent_declined)::int AS consent_declined,
       sum(consent_withdrawn)::int AS consent_withdrawn,
       sum(consent_not_asked)::int AS consent_not_asked,
       sum(consent_unable_to_ask)::int AS consent_unable_to_ask
FROM t_calls_daily
GROUP BY agency_code, date_trunc('month', day)::date, patrol_zone;

ANALYZE t_calls_daily;
ANALYZE t_calls_monthly;

-- Totals over all months, per agency and zone (and '(all)'): the sums of the exact monthly
-- counts (never of published cells). Published as the row with all_months (docs/measuring.md).
CREATE TEMP TABLE t_calls_months_total ON COMMIT DROP AS
SELECT agency_code, patrol_zone,
       sum(calls)::int AS calls,
       sum(cleared_by_charge)::int AS cleared_by_charge,
       sum(non_charge)::int AS non_charge,
       sum(consent_given)::int AS consent_given,
       sum(consent_declined)::int AS consent_declined,
       sum(consent_withdrawn)::int AS consent_withdrawn,
       sum(consent_not_asked)::int AS consent_not_asked,
       sum(consent_unable_to_ask)::int AS consent_unable_to_ask
FROM t_calls_monthly
GROUP BY agency_code, patrol_zone;
