-- d. Repeat police contact after a non-charge call. Placeholders: {tz}, {reference_date},
-- {launch_date}.
--
-- For every call, how many later calls of the same victim (victim_key) came within 182 and
-- within 365 days, and how many of those ended in a charge: one ordered pass over core.call
-- (window frames over (victim_key, call_received_at), the order of index call_victim_time),
-- no per-call subquery. "Later" is strictly later: (t, t + window]. Windows are calendar days
-- in the agencies' time zone (the rebuild sets TimeZone).
--
-- An index call counts for a window only when the window has fully elapsed by the reference
-- date (the local date of the last call received, unless given):
-- local date of (t + window) <= reference date.
CREATE TEMP TABLE t_repeat_calls ON COMMIT DROP AS
SELECT w.agency_code,
       w.incident_id,
       w.call_received_at,
       w.consent_status,
       w.rep_182 > 0 AS rep_182,
       w.chg_182 > 0 AS chg_182,
       w.rep_365 > 0 AS rep_365,
       w.chg_365 > 0 AS chg_365,
       ((w.call_received_at + interval '365 days') AT TIME ZONE {tz})::date
           <= {reference_date}::date AS elapsed_365
FROM (
    SELECT c.agency_code, c.incident_id, c.call_received_at, c.clearance_status,
           c.consent_status,
           count(*) OVER w182 AS rep_182,
           count(*) FILTER (WHERE c.clearance_status = 'cleared_by_charge') OVER w182 AS chg_182,
           count(*) OVER w365 AS rep_365,
           count(*) FILTER (WHERE c.clearance_status = 'cleared_by_charge') OVER w365 AS chg_365
    FROM core.call AS c
    WINDOW w182 AS (PARTITION BY c.victim_key ORDER BY c.call_received_at
                    RANGE BETWEEN interval '1 microsecond' FOLLOWING
                              AND interval '182 days' FOLLOWING),
           w365 AS (PARTITION BY c.victim_key ORDER BY c.call_received_at
                    RANGE BETWEEN interval '1 microsecond' FOLLOWING
                              AND interval '365 days' FOLLOWING)
) AS w
WHERE w.clearance_status <> 'cleared_by_charge'
  AND ((w.call_received_at + interval '182 days') AT TIME ZONE {tz})::date <= {reference_date}::date;

-- Cohorts. Pre-launch calls are the baseline whatever happened to them; after launch, a
-- delivered referral decides (engaged / referred_not_engaged), then the consent answer.
-- 'other' (consent given but never delivered, consent withdrawn before delivery) is kept in
-- the restricted table only.
CREATE TEMP TABLE t_repeat ON COMMIT DROP AS
WITH idx AS (
    SELECT i.agency_code,
           CASE WHEN i.call_received_at < ({launch_date}::date::timestamp AT TIME ZONE {tz})
                     THEN 'baseline'
                WHEN r.incident_id IS NOT NULL AND r.engaged THEN 'engaged'
                WHEN r.incident_id IS NOT NULL THEN 'referred_not_engaged'
                WHEN i.consent_status = 'declined' THEN 'consent_declined'
                WHEN i.consent_status IN ('not_asked', 'unable_to_ask') THEN 'consent_not_asked'
                ELSE 'other' END AS cohort,
           i.rep_182, i.chg_182, i.rep_365, i.chg_365, i.elapsed_365
    FROM t_repeat_calls AS i
    LEFT JOIN t_referral AS r USING (agency_code, incident_id)
), per_window AS (
    SELECT agency_code, cohort, 182 AS window_days, rep_182 AS rep, chg_182 AS chg FROM idx
    UNION ALL
    SELECT agency_code, cohort, 365, rep_365, chg_365 FROM idx WHERE elapsed_365
), agg AS (
    SELECT agency_code, cohort, window_days,
           count(*)::int AS index_calls,
           count(*) FILTER (WHERE rep)::int AS with_repeat,
           count(*) FILTER (WHERE chg)::int AS with_charged_repeat
    FROM per_window
    GROUP BY agency_code, cohort, window_days
), grid AS (
    SELECT a.agency_code, k.cohort, w.window_days
    FROM (SELECT DISTINCT agency_code FROM t_calls_monthly) AS a
    CROSS JOIN (VALUES ('engaged'), ('referred_not_engaged'), ('consent_declined'),
                       ('consent_not_asked'), ('baseline'), ('other')) AS k(cohort)
    CROSS JOIN (VALUES (182), (365)) AS w(window_days)
)
SELECT g.agency_code, g.cohort, g.window_days,
       coalesce(a.index_calls, 0) AS index_calls,
       coalesce(a.with_repeat, 0) AS with_repeat,
       coalesce(a.with_charged_repeat, 0) AS with_charged_repeat
FROM grid AS g
LEFT JOIN agg AS a USING (agency_code, cohort, window_days);
