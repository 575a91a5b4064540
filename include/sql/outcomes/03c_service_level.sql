-- First contact against service levels, by month of the call. Placeholder: {reference_date}.
-- Of the delivered referrals (t_referral, 02): a first 'contacted' event within 24 h, 48 h,
-- 7 days of delivery; and those without one 48 h after delivery, counted once the 48 h have
-- passed by the end of the reference date (so the number does not depend on the build's
-- wall-clock time). Every agency-month with calls has a row.
CREATE TEMP TABLE t_service_level ON COMMIT DROP AS
WITH r AS (
    SELECT agency_code, month,
           count(*)::int AS referred,
           count(*) FILTER (WHERE first_contacted_at <= delivered_at + interval '24 hours')::int
               AS contacted_24h,
           count(*) FILTER (WHERE first_contacted_at <= delivered_at + interval '48 hours')::int
               AS contacted_48h,
           count(*) FILTER (WHERE first_contacted_at <= delivered_at + interval '7 days')::int
               AS contacted_7d,
           count(*) FILTER (
               WHERE delivered_at + interval '48 hours' <= ({reference_date}::date + 1)::timestamptz
                 AND (first_contacted_at IS NULL
                      OR first_contacted_at > delivered_at + interval '48 hours'))::int
               AS uncontacted_48h
    FROM t_referral
    GROUP BY agency_code, month
)
SELECT m.agency_code, m.month,
       coalesce(r.referred, 0) AS referred,
       coalesce(r.contacted_24h, 0) AS contacted_24h,
       coalesce(r.contacted_48h, 0) AS contacted_48h,
       coalesce(r.contacted_7d, 0) AS contacted_7d,
       coalesce(r.uncontacted_48h, 0) AS uncontacted_48h
FROM t_calls_monthly AS m
LEFT JOIN r USING (agency_code, month)
WHERE m.patrol_zone = '(all)';


-- Over all months, per agency: sums of the exact monthly counts (shares over every referral).
CREATE TEMP TABLE t_service_level_total ON COMMIT DROP AS
SELECT agency_code, sum(referred)::int AS referred, sum(contacted_24h)::int AS contacted_24h,
       sum(contacted_48h)::int AS contacted_48h, sum(contacted_7d)::int AS contacted_7d,
       sum(uncontacted_48h)::int AS uncontacted_48h
FROM t_service_level
GROUP BY agency_code;
