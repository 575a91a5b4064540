-- Small-cell and complementary suppression (docs/measuring.md, "Suppression").
--
-- Every published count is a cell (grain, agency, period, zone, measure). A count the funnel
-- shares with calls_monthly (ipv_calls = calls, non_charge, consent_given) and the timeliness
-- n (= funnel referred / contacted) are the SAME cell, so one number is hidden everywhere or
-- nowhere. Primary suppression: 1..4 (sround = 0). Groups are the exact additive relations
-- between published cells (a total and its parts). A group with exactly one hidden cell would
-- give it away (total minus the others), so 06_suppression_step.sql hides one more cell there,
-- the smallest non-zero visible one, round after round (sround = 1, 2, ...) until no group has
-- exactly one hidden cell.
--
-- Totals over all months (grain 'all_months', period = the reference date, placeholder
-- {reference_date}): calls_monthly per zone and '(all)', every funnel step, and the counts
-- behind the service-level and timeliness shares. They join the row groups of their row and
-- one group per agency, zone and measure across months (total = sum of the monthly cells).

CREATE TEMP TABLE sup_cell ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY x.grain, x.agency_code, x.period, x.patrol_zone, x.ord)::int
           AS cell_id,
       x.grain, x.agency_code, x.period, x.patrol_zone, x.measure, x.ord, x.value,
       CASE WHEN x.value BETWEEN 1 AND 4 THEN 0 END AS sround
FROM (
    -- calls_monthly: every zone row and the agency total, seven published measures, per month
    -- and over all months (grain 'all_months', period = the reference date)
    SELECT m.grain, m.agency_code, m.period, m.patrol_zone, v.measure, v.ord, v.value
    FROM (SELECT 'month' AS grain, agency_code, month AS period, patrol_zone, calls,
                 cleared_by_charge, non_charge, consent_given, consent_declined,
                 consent_not_asked, consent_unable_to_ask
          FROM t_calls_monthly
          UNION ALL
          SELECT 'all_months', agency_code, {reference_date}::date, patrol_zone, calls,
                 cleared_by_charge, non_charge, consent_given, consent_declined,
                 consent_not_asked, consent_unable_to_ask
          FROM t_calls_months_total) AS m
    CROSS JOIN LATERAL (VALUES
        ('calls', 1, m.calls), ('cleared_by_charge', 2, m.cleared_by_charge),
        ('non_charge', 3, m.non_charge), ('consent_given', 4, m.consent_given),
        ('consent_declined', 5, m.consent_declined),
        ('consent_not_asked', 6, m.consent_not_asked),
        ('consent_unable_to_ask', 7, m.consent_unable_to_ask)
    ) AS v(measure, ord, value)
    UNION ALL
    -- calls_daily: agency totals, four published measures
    SELECT 'day', d.agency_code, d.day, '(all)', v.measure, v.ord, v.value
    FROM t_calls_daily AS d
    CROSS JOIN LATERAL (VALUES
        ('calls', 1, d.calls), ('cleared_by_charge', 2, d.cleared_by_charge),
        ('non_charge', 3, d.non_charge), ('consent_given', 4, d.consent_given)
    ) AS v(measure, ord, value)
    WHERE d.patrol_zone = '(all)'
    UNION ALL
    -- referral_funnel steps that calls_monthly does not already carry (agency totals)
    SELECT 'month', f.agency_code, f.month, '(all)', f.step, 10 + f.step_order, f.count
    FROM t_funnel AS f
    WHERE f.step NOT IN ('ipv_calls', 'non_charge', 'consent_given')
    UNION ALL
    SELECT 'all_months', f.agency_code, {reference_date}::date, '(all)', f.step,
           10 + f.step_order, f.count
    FROM t_funnel_total AS f
    WHERE f.step NOT IN ('ipv_calls', 'non_charge', 'consent_given')
    UNION ALL
    -- the counts behind the service-level shares (a visible share times its visible base
    -- gives the count back) and behind the timeliness shares: contacted within 24 h / 7 days
    -- of delivery are the same numbers in both tables (one cell); referred within 24 h / 7
    -- days of the call are the call_to_referral ones
    SELECT x.grain, x.agency_code, x.period, '(all)', v.measure, v.ord, v.value
    FROM (
        SELECT 'month' AS grain, agency_code, month AS period, contacted_24h, contacted_48h,
               contacted_7d, uncontacted_48h
        FROM t_service_level
        UNION ALL
        SELECT 'all_months', agency_code, {reference_date}::date, contacted_24h, contacted_48h,
               contacted_7d, uncontacted_48h
        FROM t_service_level_total
    ) AS x
    CROSS JOIN LATERAL (VALUES
        ('contacted_24h', 30, x.contacted_24h), ('contacted_48h', 31, x.contacted_48h),
        ('contacted_7d', 32, x.contacted_7d), ('uncontacted_48h', 33, x.uncontacted_48h)
    ) AS v(measure, ord, value)
    UNION ALL
    SELECT x.grain, x.agency_code, x.period, '(all)', v.measure, v.ord, v.value
    FROM (
        SELECT 'month' AS grain, agency_code, month AS period, within_24h, within_7d
        FROM t_timeliness
        WHERE measure = 'call_to_referral'
        UNION ALL
        SELECT 'all_months', agency_code, {reference_date}::date, within_24h, within_7d
        FROM t_timeliness_total
        WHERE measure = 'call_to_referral'
    ) AS x
    CROSS JOIN LATERAL (VALUES ('referred_24h', 34, x.within_24h),
                               ('referred_7d', 35, x.within_7d)) AS v(measure, ord, value)
) AS x;

ALTER TABLE sup_cell ADD PRIMARY KEY (cell_id);
CREATE INDEX ON sup_cell (sround) WHERE sround IS NOT NULL;

CREATE TEMP TABLE sup_member ON COMMIT DROP AS
-- calls = cleared_by_charge + non_charge, in every monthly, total and daily row
SELECT concat_ws('|', 'row-charge', grain, agency_code, period, patrol_zone) AS grp, cell_id
FROM sup_cell
WHERE measure IN ('calls', 'cleared_by_charge', 'non_charge')
UNION ALL
-- non_charge = given + declined + not_asked + unable_to_ask (+ withdrawn, unpublished: taken
-- as known, which errs on the side of hiding more)
SELECT concat_ws('|', 'row-consent', grain, agency_code, period, patrol_zone), cell_id
FROM sup_cell
WHERE grain IN ('month', 'all_months')
  AND measure IN ('non_charge', 'consent_given', 'consent_declined', 'consent_not_asked',
                  'consent_unable_to_ask')
UNION ALL
-- agency total = sum of its zones, per month (and over all months) and measure
SELECT concat_ws('|', 'zones', grain, agency_code, period, measure), cell_id
FROM sup_cell
WHERE grain IN ('month', 'all_months')
  AND measure IN ('calls', 'cleared_by_charge', 'non_charge', 'consent_given',
                  'consent_declined', 'consent_not_asked', 'consent_unable_to_ask')
UNION ALL
-- monthly agency total = sum of the month's days, per measure
SELECT concat_ws('|', 'days', agency_code, date_trunc('month', period)::date, measure), cell_id
FROM sup_cell
WHERE grain = 'day'
   OR (grain = 'month' AND patrol_zone = '(all)'
       AND measure IN ('calls', 'cleared_by_charge', 'non_charge', 'consent_given'))
UNION ALL
-- total over all months = sum of the monthly cells, per agency, zone and measure (calls,
-- funnel steps, service-level and timeliness counts)
SELECT concat_ws('|', 'months', agency_code, patrol_zone, measure), cell_id
FROM sup_cell
WHERE grain IN ('month', 'all_months')
UNION ALL
-- funnel: non_charge = consent_asked + not_asked + unable_to_ask
SELECT concat_ws('|', 'asked', grain, agency_code, period), cell_id
FROM sup_cell
WHERE grain IN ('month', 'all_months') AND patrol_zone = '(all)'
  AND measure IN ('non_charge', 'consent_asked', 'consent_not_asked', 'consent_unable_to_ask')
UNION ALL
-- funnel: consent_asked = given + declined (+ withdrawn, taken as known)
SELECT concat_ws('|', 'answered', grain, agency_code, period), cell_id
FROM sup_cell
WHERE grain IN ('month', 'all_months') AND patrol_zone = '(all)'
  AND measure IN ('consent_asked', 'consent_given', 'consent_declined')
UNION ALL
-- service levels: referred = contacted within 48 h + no contact after 48 h (+ those delivered
-- less than 48 h before the end of the reference date, not yet contacted: taken as known)
SELECT concat_ws('|', 'within-48h', grain, agency_code, period), cell_id
FROM sup_cell
WHERE grain IN ('month', 'all_months') AND patrol_zone = '(all)'
  AND measure IN ('referred', 'contacted_48h', 'uncontacted_48h');

ANALYZE sup_cell;
ANALYZE sup_member;
