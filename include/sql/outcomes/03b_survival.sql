-- Time to repeat contact: Kaplan-Meier by cohort and the log-rank test against the baseline.
-- Placeholders: {reference_date}. Needs t_index_day and t_followup_cohort (03).
--
-- Time is counted in local days from the index call (0 = a repeat later the same day). Every
-- index call up to the reference date counts: one with a repeat by the reference date and
-- within 365 days is an event on the repeat's day; every other one is censored at
-- min(365, reference date - call day). Follow-up stops at 365 days so that a 2019 baseline
-- call and a 2025 program call are compared over the same span.

-- Per agency, cohort ('all' = every index call) and day 0..365: events, censorings, and the
-- number at risk (still followed and without a repeat at the start of the day). Dense: a day
-- without events is a row of zeros (366 rows per cohort), which makes the log-rank a join.
CREATE TEMP TABLE t_km ON COMMIT DROP AS
WITH removed AS (
    SELECT agency_code, cohort, gap_days AS t, 1 AS events, 0 AS censored
    FROM t_followup_cohort
    WHERE gap_days <= least(365, {reference_date}::date - day)
    UNION ALL    -- an event is not censored: take it off its censoring day
    SELECT agency_code, cohort, least(365, {reference_date}::date - day), 0, -1
    FROM t_followup_cohort
    WHERE gap_days <= least(365, {reference_date}::date - day)
    UNION ALL
    SELECT agency_code, cohort, least(365, {reference_date}::date - day), 0, n
    FROM t_index_day
), per_day AS (
    SELECT agency_code, coalesce(cohort, 'all') AS cohort, t,
           sum(events)::int AS events, sum(censored)::int AS censored
    FROM removed
    GROUP BY GROUPING SETS ((agency_code, cohort, t), (agency_code, t))
), grid AS (
    SELECT a.agency_code, k.cohort, d.t
    FROM (SELECT DISTINCT agency_code FROM t_calls_monthly) AS a
    CROSS JOIN (VALUES ('engaged'), ('referred_not_engaged'), ('consent_declined'),
                       ('consent_not_asked'), ('consent_given_not_delivered'), ('baseline'),
                       ('all')) AS k(cohort)
    CROSS JOIN generate_series(0, 365) AS d(t)
)
SELECT g.agency_code, g.cohort, g.t AS day,
       coalesce(p.events, 0) AS events,
       coalesce(p.censored, 0) AS censored,
       sum(coalesce(p.events, 0) + coalesce(p.censored, 0))
           OVER (PARTITION BY g.agency_code, g.cohort ORDER BY g.t DESC
                 ROWS UNBOUNDED PRECEDING)::int AS at_risk
FROM grid AS g
LEFT JOIN per_day AS p USING (agency_code, cohort, t);

-- S(t) = prod over days <= t of (1 - d/n), as exp(sum(ln(...))) (0 once d = n). 95% interval
-- on the log(-log S) scale with Greenwood's sum g = sum d / (n (n - d)):
-- S ^ exp(+-1.96 sqrt(g) / |ln S|), i.e. exp(-exp(ln(-ln S) +- 1.96 sqrt(g) / |ln S|)).
CREATE TEMP TABLE t_km_curve ON COMMIT DROP AS
WITH s AS (
    SELECT k.*,
           sum(CASE WHEN k.events > 0 AND k.events < k.at_risk
                    THEN ln(1 - k.events::float8 / k.at_risk) ELSE 0 END) OVER w AS log_s,
           bool_or(k.events > 0 AND k.events = k.at_risk) OVER w AS reached_zero,
           sum(CASE WHEN k.events > 0 AND k.events < k.at_risk
                    THEN k.events::float8 / (k.at_risk::float8 * (k.at_risk - k.events))
                    ELSE 0 END) OVER w AS greenwood,
           sum(k.events) OVER w AS cum_events
    FROM t_km AS k
    WINDOW w AS (PARTITION BY k.agency_code, k.cohort ORDER BY k.day ROWS UNBOUNDED PRECEDING)
)
SELECT agency_code, cohort, day, at_risk, events, censored, cum_events::int AS cum_events,
       CASE WHEN reached_zero THEN 0.0 ELSE exp(log_s) END AS survival,
       CASE WHEN reached_zero THEN NULL
            WHEN log_s = 0 THEN 1.0
            ELSE exp(-exp(ln(-log_s) + 1.959963984540054 * sqrt(greenwood) / -log_s)) END
           AS ci_low,
       CASE WHEN reached_zero THEN NULL
            WHEN log_s = 0 THEN 1.0
            ELSE exp(-exp(ln(-log_s) - 1.959963984540054 * sqrt(greenwood) / -log_s)) END
           AS ci_high
FROM s;

CREATE TEMP TABLE t_km_points ON COMMIT DROP AS
SELECT agency_code, cohort, day, at_risk, cum_events, survival, ci_low, ci_high
FROM t_km_curve
WHERE day IN (0, 7, 30, 60, 90, 120, 150, 182, 210, 240, 270, 300, 330, 365);

-- Log-rank (Mantel-Haenszel) of each cohort against the baseline over days 0..365:
-- O = the cohort's events, E = sum d n1 / n, V = sum n1 n0 d (n - d) / (n^2 (n - 1)),
-- chi-square = (O - E)^2 / V with 1 degree of freedom (p-value: upstream.outcomes).
CREATE TEMP TABLE t_logrank ON COMMIT DROP AS
WITH j AS (
    SELECT c.agency_code, c.cohort, c.day, c.events AS d1, c.at_risk AS n1,
           c.events + b.events AS d, c.at_risk + b.at_risk AS n, b.at_risk AS n0
    FROM t_km AS c
    JOIN t_km AS b ON b.agency_code = c.agency_code AND b.day = c.day AND b.cohort = 'baseline'
    WHERE c.cohort NOT IN ('baseline', 'all')
)
SELECT agency_code, cohort,
       max(n1) FILTER (WHERE day = 0) AS index_calls,
       sum(d1)::int AS observed,
       sum(CASE WHEN n > 0 THEN d::float8 * n1 / n ELSE 0 END) AS expected,
       sum(CASE WHEN n > 1 THEN n1::float8 * n0 * d * (n - d) / (n::float8 * n * (n - 1))
                ELSE 0 END) AS variance
FROM j
GROUP BY agency_code, cohort;
