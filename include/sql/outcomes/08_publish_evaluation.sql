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

-- referred is the funnel's 'referred' cell (hidden together); a share is also hidden when the
-- count behind it is 1..4.
DELETE FROM outcomes.contact_service_level;
INSERT INTO outcomes.contact_service_level
SELECT t.agency_code, t.month, t.referred, t.contacted_24h, t.contacted_48h, t.contacted_7d,
       t.uncontacted_48h,
       CASE WHEN t.referred > 0 THEN round(t.contacted_24h::numeric / t.referred, 4) END,
       CASE WHEN t.referred > 0 THEN round(t.contacted_48h::numeric / t.referred, 4) END,
       CASE WHEN t.referred > 0 THEN round(t.contacted_7d::numeric / t.referred, 4) END,
       s.sround IS NOT NULL,
       s.sround IS NOT NULL OR t.contacted_24h BETWEEN 1 AND 4,
       s.sround IS NOT NULL OR t.contacted_48h BETWEEN 1 AND 4,
       s.sround IS NOT NULL OR t.contacted_7d BETWEEN 1 AND 4,
       t.uncontacted_48h BETWEEN 1 AND 4
FROM t_service_level AS t
LEFT JOIN sup_cell AS s
  ON s.grain = 'month' AND s.agency_code = t.agency_code AND s.period = t.month
 AND s.patrol_zone = '(all)' AND s.measure = 'referred';
