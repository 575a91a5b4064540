-- Replace the outcome tables' contents with this build, inside the rebuild's one transaction:
-- readers see the old build until COMMIT, then the new one (MVCC; nobody waits on a lock).
-- Placeholders: {tz}, {reference_date}, {launch_date}.

CREATE TEMP TABLE t_hidden ON COMMIT DROP AS
SELECT grain, agency_code, period, patrol_zone,
       array_agg(measure ORDER BY ord) AS hidden
FROM sup_cell
WHERE sround IS NOT NULL
GROUP BY grain, agency_code, period, patrol_zone;
ANALYZE t_hidden;

-- Zone rows of the daily table are not published: nothing hidden in them.
DELETE FROM outcomes.calls_daily;
INSERT INTO outcomes.calls_daily
SELECT d.agency_code, d.day, d.patrol_zone, d.calls, d.cleared_by_charge, d.non_charge,
       d.consent_given, d.consent_declined, d.consent_withdrawn, d.consent_not_asked,
       d.consent_unable_to_ask,
       CASE WHEN d.patrol_zone = '(all)' THEN coalesce(h.hidden, ARRAY[]::text[])
            ELSE ARRAY[]::text[] END
FROM t_calls_daily AS d
LEFT JOIN t_hidden AS h
  ON d.patrol_zone = '(all)' AND h.grain = 'day' AND h.agency_code = d.agency_code
 AND h.period = d.day AND h.patrol_zone = '(all)';

-- Monthly rows (grain 'month', the month as period) and the total over all months (grain
-- 'all_months', period = the reference date; month NULL, all_months true).
DELETE FROM outcomes.calls_monthly;
INSERT INTO outcomes.calls_monthly (agency_code, month, patrol_zone, calls, cleared_by_charge,
                                    non_charge, consent_given, consent_declined,
                                    consent_withdrawn, consent_not_asked, consent_unable_to_ask,
                                    hidden, all_months)
SELECT m.agency_code, m.month, m.patrol_zone, m.calls, m.cleared_by_charge, m.non_charge,
       m.consent_given, m.consent_declined, m.consent_withdrawn, m.consent_not_asked,
       m.consent_unable_to_ask,
       -- only the calls_monthly measures (funnel cells share the agency-total key)
       coalesce(ARRAY(SELECT x FROM unnest(h.hidden) AS x
                      WHERE x IN ('calls', 'cleared_by_charge', 'non_charge', 'consent_given',
                                  'consent_declined', 'consent_not_asked',
                                  'consent_unable_to_ask')), ARRAY[]::text[]),
       m.month IS NULL
FROM (SELECT 'month' AS grain, month AS period, t.* FROM t_calls_monthly AS t
      UNION ALL
      SELECT 'all_months', {reference_date}::date, t.agency_code, NULL::date, t.patrol_zone,
             t.calls, t.cleared_by_charge, t.non_charge, t.consent_given, t.consent_declined,
             t.consent_withdrawn, t.consent_not_asked, t.consent_unable_to_ask
      FROM t_calls_months_total AS t) AS m
LEFT JOIN t_hidden AS h
  ON h.grain = m.grain AND h.agency_code = m.agency_code AND h.period = m.period
 AND h.patrol_zone = m.patrol_zone;

DELETE FROM outcomes.referral_funnel;
INSERT INTO outcomes.referral_funnel (agency_code, month, step_order, step, count, base_step,
                                      base_count, rate, hidden, rate_hidden, all_months)
SELECT f.agency_code, f.month, f.step_order, f.step, f.count, f.base_step, f.base_count, f.rate,
       s.sround IS NOT NULL,
       s.sround IS NOT NULL OR b.sround IS NOT NULL OR f.rate IS NULL,
       f.month IS NULL
FROM (SELECT 'month' AS grain, t.month AS period, t.agency_code, t.month, t.step_order, t.step,
             t.count, t.base_step, t.base_count, t.rate
      FROM t_funnel AS t
      UNION ALL
      SELECT 'all_months', {reference_date}::date, t.agency_code, NULL::date, t.step_order,
             t.step, t.count, t.base_step, t.base_count, t.rate
      FROM t_funnel_total AS t) AS f
LEFT JOIN sup_cell AS s
  ON s.grain = f.grain AND s.agency_code = f.agency_code AND s.period = f.period
 AND s.patrol_zone = '(all)'
 AND s.measure = CASE f.step WHEN 'ipv_calls' THEN 'calls' ELSE f.step END
LEFT JOIN sup_cell AS b
  ON b.grain = f.grain AND b.agency_code = f.agency_code AND b.period = f.period
 AND b.patrol_zone = '(all)'
 AND b.measure = CASE f.base_step WHEN 'ipv_calls' THEN 'calls' ELSE f.base_step END;

-- n is the funnel's referred (call_to_referral) or contacted (referral_to_first_contact) cell.
-- Statistics need n >= 5 and a visible n; a share is hidden with n or with the count behind
-- it (within 24 h / within 7 days: cells of their own, 05).
DELETE FROM outcomes.timeliness;
INSERT INTO outcomes.timeliness (agency_code, month, measure, n, median_hours, p90_hours,
                                 within_24h, within_7d, share_within_24h, share_within_7d,
                                 n_hidden, stats_hidden, share_24h_hidden, share_7d_hidden,
                                 all_months)
SELECT t.agency_code, t.month, t.measure, t.n, t.median_hours, t.p90_hours, t.within_24h,
       t.within_7d, t.share_within_24h, t.share_within_7d,
       s.sround IS NOT NULL AS n_hidden,
       s.sround IS NOT NULL OR t.n < 5 AS stats_hidden,
       s.sround IS NOT NULL OR t.n < 5 OR w24.sround IS NOT NULL,
       s.sround IS NOT NULL OR t.n < 5 OR w7.sround IS NOT NULL,
       t.month IS NULL
FROM (SELECT 'month' AS grain, x.month AS period, x.agency_code, x.month, x.measure, x.n,
             x.median_hours, x.p90_hours, x.within_24h, x.within_7d, x.share_within_24h,
             x.share_within_7d
      FROM t_timeliness AS x
      UNION ALL
      SELECT 'all_months', {reference_date}::date, x.agency_code, NULL::date, x.measure, x.n,
             x.median_hours, x.p90_hours, x.within_24h, x.within_7d, x.share_within_24h,
             x.share_within_7d
      FROM t_timeliness_total AS x) AS t
CROSS JOIN LATERAL (SELECT CASE t.measure WHEN 'call_to_referral' THEN 'referred'
                                          ELSE 'contacted' END AS base) AS k
LEFT JOIN sup_cell AS s
  ON s.grain = t.grain AND s.agency_code = t.agency_code AND s.period = t.period
 AND s.patrol_zone = '(all)' AND s.measure = k.base
LEFT JOIN sup_cell AS w24
  ON w24.grain = t.grain AND w24.agency_code = t.agency_code AND w24.period = t.period
 AND w24.patrol_zone = '(all)' AND w24.measure = k.base || '_24h'
LEFT JOIN sup_cell AS w7
  ON w7.grain = t.grain AND w7.agency_code = t.agency_code AND w7.period = t.period
 AND w7.patrol_zone = '(all)' AND w7.measure = k.base || '_7d';

-- The cohort cells of 05b, whether hidden, one row per cohort / window or cohort / day
-- (read by cell id range: they follow every cell of 05).
CREATE TEMP TABLE t_cohort_hidden ON COMMIT DROP AS
SELECT c.grain, c.agency_code, c.patrol_zone AS cohort,
       bool_or(c.sround IS NOT NULL) FILTER (WHERE c.measure IN ('index_calls', 'at_risk'))
           AS first_hidden,
       bool_or(c.sround IS NOT NULL) FILTER (WHERE c.measure IN ('with_repeat', 'cum_events'))
           AS second_hidden,
       bool_or(c.sround IS NOT NULL) FILTER (WHERE c.measure = 'with_charged_repeat')
           AS third_hidden
FROM sup_cell AS c
WHERE c.cell_id > (SELECT n0 FROM t_cohort_first)
GROUP BY c.grain, c.agency_code, c.patrol_zone;
ANALYZE t_cohort_hidden;

-- Rates with 95% Wilson intervals, and the standardised rate (03). Every cohort and the total
-- 'all' are published; their counts are cells of the suppression (05b), hidden with the
-- rates built on them.
DELETE FROM outcomes.repeat_contact;
INSERT INTO outcomes.repeat_contact
SELECT r.agency_code, r.cohort, r.window_days, r.index_calls,
       r.with_repeat,
       CASE WHEN r.index_calls > 0 THEN round(r.with_repeat::numeric / r.index_calls, 4) END,
       round(outcomes.wilson_low(r.with_repeat, r.index_calls)::numeric, 4),
       round(outcomes.wilson_high(r.with_repeat, r.index_calls)::numeric, 4),
       r.with_charged_repeat,
       CASE WHEN r.index_calls > 0
            THEN round(r.with_charged_repeat::numeric / r.index_calls, 4) END,
       round(outcomes.wilson_low(r.with_charged_repeat, r.index_calls)::numeric, 4),
       round(outcomes.wilson_high(r.with_charged_repeat, r.index_calls)::numeric, 4),
       h.first_hidden,
       h.second_hidden,
       h.third_hidden,
       round(r.standardised_rate::numeric, 4),
       round(r.std_ci_low::numeric, 4),
       round(r.std_ci_high::numeric, 4)
FROM t_repeat AS r
JOIN t_cohort_hidden AS h
  ON h.grain = 'cohort_' || r.window_days AND h.agency_code = r.agency_code
 AND h.cohort = r.cohort;

DELETE FROM outcomes.data_quality_daily;
INSERT INTO outcomes.data_quality_daily
SELECT agency_code, extract_date, files_received, files_refused, rows_in_files, rows_loaded,
       rows_quarantined
FROM t_data_quality_daily;

DELETE FROM outcomes.quarantine_by_rule;
INSERT INTO outcomes.quarantine_by_rule
SELECT agency_code, extract_date, rule, rows FROM t_quarantine_by_rule;

DELETE FROM outcomes.suppressed_cell;
INSERT INTO outcomes.suppressed_cell
SELECT grain, agency_code, period, patrol_zone, measure, value,
       CASE WHEN sround = 0 THEN 'small_cell' ELSE 'complementary' END
FROM sup_cell
WHERE sround IS NOT NULL;

DELETE FROM outcomes.build_info;
INSERT INTO outcomes.build_info (reference_date, program_launch_date, repeat_windows_days,
                                 time_zone, calls)
SELECT {reference_date}::date, {launch_date}::date, ARRAY[182, 365], {tz},
       (SELECT coalesce(sum(calls), 0) FROM t_calls_monthly WHERE patrol_zone = '(all)');
