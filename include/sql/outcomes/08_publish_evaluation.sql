-- Replace the contents of the evaluation tables (010_evaluation.sql), in the rebuild's one
-- transaction like 07. Suppression flags come from the cells of 05 / 05b.

DELETE FROM outcomes.repeat_by_prior;
INSERT INTO outcomes.repeat_by_prior
SELECT agency_code, cohort, window_days, CASE prior WHEN 2 THEN '2+' ELSE prior::text END,
       index_calls, with_repeat
FROM t_repeat_strata;

DELETE FROM outcomes.repeat_survival;
INSERT INTO outcomes.repeat_survival
SELECT agency_code, cohort, day, at_risk, events, censored, survival, ci_low, ci_high
FROM t_km_curve
WHERE events > 0 OR censored > 0;

DELETE FROM outcomes.repeat_survival_points;
INSERT INTO outcomes.repeat_survival_points
SELECT p.agency_code, p.cohort, p.day, p.at_risk, p.cum_events, p.survival, p.ci_low, p.ci_high,
       h.first_hidden, h.second_hidden
FROM t_km_points AS p
JOIN t_cohort_hidden AS h
  ON h.grain = 'survival_' || lpad(p.day::text, 3, '0') AND h.agency_code = p.agency_code
 AND h.cohort = p.cohort;

-- A test result is hidden with the cohort's index calls (the day-0 number at risk) or its
-- repeats: `observed` is the same number as the curve's repeats by day 365, so it is hidden
-- whenever that cell is, small or complementary.
DELETE FROM outcomes.repeat_logrank;
INSERT INTO outcomes.repeat_logrank
SELECT l.agency_code, l.cohort, l.index_calls, l.observed, l.expected,
       CASE WHEN l.variance > 0 THEN (l.observed - l.expected) ^ 2 / l.variance END,
       l.p_value,
       l.observed BETWEEN 1 AND 4 OR coalesce(h0.first_hidden, true)
           OR coalesce(h365.second_hidden, true) OR l.variance IS NULL OR l.variance <= 0
FROM t_logrank AS l
LEFT JOIN t_cohort_hidden AS h0
  ON h0.grain = 'survival_000' AND h0.agency_code = l.agency_code AND h0.cohort = l.cohort
LEFT JOIN t_cohort_hidden AS h365
  ON h365.grain = 'survival_365' AND h365.agency_code = l.agency_code
 AND h365.cohort = l.cohort;

-- referred is the funnel's 'referred' cell (hidden together); the counts behind the shares and
-- uncontacted_48h are cells of their own (05): a share is hidden with its base or its count.
-- Monthly rows and the total over all months (month NULL, all_months true).
DELETE FROM outcomes.contact_service_level;
INSERT INTO outcomes.contact_service_level (agency_code, month, referred, contacted_24h,
                                            contacted_48h, contacted_7d, uncontacted_48h,
                                            share_24h, share_48h, share_7d, referred_hidden,
                                            share_24h_hidden, share_48h_hidden, share_7d_hidden,
                                            uncontacted_hidden, all_months,
                                            contacted_24h_hidden, contacted_48h_hidden,
                                            contacted_7d_hidden)
WITH c AS (
    SELECT grain, agency_code, period,
           bool_or(sround IS NOT NULL) FILTER (WHERE measure = 'referred') AS referred,
           bool_or(sround IS NOT NULL) FILTER (WHERE measure = 'contacted_24h') AS contacted_24h,
           bool_or(sround IS NOT NULL) FILTER (WHERE measure = 'contacted_48h') AS contacted_48h,
           bool_or(sround IS NOT NULL) FILTER (WHERE measure = 'contacted_7d') AS contacted_7d,
           bool_or(sround IS NOT NULL) FILTER (WHERE measure = 'uncontacted_48h')
               AS uncontacted_48h
    FROM sup_cell
    WHERE grain IN ('month', 'all_months') AND patrol_zone = '(all)'
      AND measure IN ('referred', 'contacted_24h', 'contacted_48h', 'contacted_7d',
                      'uncontacted_48h')
    GROUP BY grain, agency_code, period
)
SELECT t.agency_code, t.month, t.referred, t.contacted_24h, t.contacted_48h, t.contacted_7d,
       t.uncontacted_48h,
       CASE WHEN t.referred > 0 THEN round(t.contacted_24h::numeric / t.referred, 4) END,
       CASE WHEN t.referred > 0 THEN round(t.contacted_48h::numeric / t.referred, 4) END,
       CASE WHEN t.referred > 0 THEN round(t.contacted_7d::numeric / t.referred, 4) END,
       c.referred,
       c.referred OR c.contacted_24h,
       c.referred OR c.contacted_48h,
       c.referred OR c.contacted_7d,
       c.uncontacted_48h,
       t.month IS NULL,
       c.contacted_24h, c.contacted_48h, c.contacted_7d
FROM (SELECT 'month' AS grain, x.month AS period, x.* FROM t_service_level AS x
      UNION ALL
      SELECT 'all_months', {reference_date}::date, x.agency_code, NULL::date, x.referred,
             x.contacted_24h, x.contacted_48h, x.contacted_7d, x.uncontacted_48h
      FROM t_service_level_total AS x) AS t
JOIN c ON c.grain = t.grain AND c.agency_code = t.agency_code AND c.period = t.period;
