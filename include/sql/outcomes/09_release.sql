-- The release tier (schema release, role upstream_public): counts below {min_cell} hidden
-- (zero shown), every other count randomly rounded to base 5 with the database's secret key
-- (outcomes.round_base5: stable per cell, unbiased); rates computed from the ROUNDED counts
-- (an exact rate beside a rounded count would give the count back) and shown only when the
-- exact base is at least {min_cell} and the numerator is shown. Placeholder: {min_cell}.

CREATE TEMP TABLE t_release_key ON COMMIT DROP AS
SELECT secret FROM outcomes.release_key;

-- Calls and the referral steps per agency and quarter of the call, and over all quarters
-- (quarter NULL, all_quarters true: GROUPING SETS over the same exact monthly rows, never a sum
-- of released cells). A total is rounded on its own, under its own cell key ('all').
DELETE FROM outcomes.release_calls_quarterly;
INSERT INTO outcomes.release_calls_quarterly (agency_code, quarter, calls, cleared_by_charge,
                                              non_charge, consent_given, consent_declined,
                                              consent_other, referred, contacted, engaged,
                                              all_quarters)
WITH q AS (
    SELECT m.agency_code, date_trunc('quarter', m.month)::date AS quarter,
           grouping(date_trunc('quarter', m.month)::date) = 1 AS all_quarters,
           sum(m.calls) AS calls, sum(m.cleared_by_charge) AS cleared_by_charge,
           sum(m.non_charge) AS non_charge, sum(m.consent_given) AS consent_given,
           sum(m.consent_declined) AS consent_declined,
           sum(m.consent_not_asked + m.consent_unable_to_ask + m.consent_withdrawn)
               AS consent_other
    FROM t_calls_monthly AS m
    WHERE m.patrol_zone = '(all)'
    GROUP BY GROUPING SETS ((m.agency_code, date_trunc('quarter', m.month)::date),
                            (m.agency_code))
), f AS (
    SELECT agency_code, date_trunc('quarter', month)::date AS quarter,
           grouping(date_trunc('quarter', month)::date) = 1 AS all_quarters,
           sum(count) FILTER (WHERE step = 'referred') AS referred,
           sum(count) FILTER (WHERE step = 'contacted') AS contacted,
           sum(count) FILTER (WHERE step = 'engaged') AS engaged
    FROM t_funnel
    GROUP BY GROUPING SETS ((agency_code, date_trunc('quarter', month)::date), (agency_code))
)
SELECT q.agency_code, q.quarter,
       outcomes.release_count(v.calls, {min_cell}, k.secret, c || 'calls'),
       outcomes.release_count(v.cleared_by_charge, {min_cell}, k.secret, c || 'cleared_by_charge'),
       outcomes.release_count(v.non_charge, {min_cell}, k.secret, c || 'non_charge'),
       outcomes.release_count(v.consent_given, {min_cell}, k.secret, c || 'consent_given'),
       outcomes.release_count(v.consent_declined, {min_cell}, k.secret, c || 'consent_declined'),
       outcomes.release_count(v.consent_other, {min_cell}, k.secret, c || 'consent_other'),
       outcomes.release_count(v.referred, {min_cell}, k.secret, c || 'referred'),
       outcomes.release_count(v.contacted, {min_cell}, k.secret, c || 'contacted'),
       outcomes.release_count(v.engaged, {min_cell}, k.secret, c || 'engaged'),
       q.all_quarters
FROM q
LEFT JOIN f ON f.agency_code = q.agency_code AND f.all_quarters = q.all_quarters
           AND f.quarter IS NOT DISTINCT FROM q.quarter
CROSS JOIN t_release_key AS k
CROSS JOIN LATERAL (SELECT q.calls, q.cleared_by_charge, q.non_charge, q.consent_given,
                           q.consent_declined, q.consent_other, coalesce(f.referred, 0) AS referred,
                           coalesce(f.contacted, 0) AS contacted,
                           coalesce(f.engaged, 0) AS engaged) AS v
CROSS JOIN LATERAL (SELECT concat_ws('|', 'calls_quarterly', q.agency_code,
                                     coalesce(q.quarter::text, 'all'), '') AS c) AS ck;

-- First contact against service levels per quarter of the call, and over all quarters.
DELETE FROM outcomes.release_service_level_quarterly;
INSERT INTO outcomes.release_service_level_quarterly (agency_code, quarter, referred, share_24h,
                                                      share_48h, share_7d, uncontacted_48h,
                                                      all_quarters)
WITH q AS (
    SELECT agency_code, date_trunc('quarter', month)::date AS quarter,
           grouping(date_trunc('quarter', month)::date) = 1 AS all_quarters,
           sum(referred) AS referred, sum(contacted_24h) AS c24, sum(contacted_48h) AS c48,
           sum(contacted_7d) AS c7, sum(uncontacted_48h) AS unc
    FROM t_service_level
    GROUP BY GROUPING SETS ((agency_code, date_trunc('quarter', month)::date), (agency_code))
), r AS (
    SELECT q.*,
           outcomes.release_count(q.referred, {min_cell}, k.secret, c || 'referred') AS r_ref,
           outcomes.release_count(q.c24, {min_cell}, k.secret, c || 'contacted_24h') AS r24,
           outcomes.release_count(q.c48, {min_cell}, k.secret, c || 'contacted_48h') AS r48,
           outcomes.release_count(q.c7, {min_cell}, k.secret, c || 'contacted_7d') AS r7,
           outcomes.release_count(q.unc, {min_cell}, k.secret, c || 'uncontacted_48h') AS r_unc
    FROM q
    CROSS JOIN t_release_key AS k
    CROSS JOIN LATERAL (SELECT concat_ws('|', 'service_level', q.agency_code,
                                         coalesce(q.quarter::text, 'all'), '') AS c) AS ck
)
SELECT agency_code, quarter, r_ref,
       CASE WHEN referred >= {min_cell} AND r24 IS NOT NULL AND r_ref > 0
            THEN least(1, round(r24::numeric / r_ref, 3)) END,
       CASE WHEN referred >= {min_cell} AND r48 IS NOT NULL AND r_ref > 0
            THEN least(1, round(r48::numeric / r_ref, 3)) END,
       CASE WHEN referred >= {min_cell} AND r7 IS NOT NULL AND r_ref > 0
            THEN least(1, round(r7::numeric / r_ref, 3)) END,
       r_unc, all_quarters
FROM r;

-- Repeat contact per cohort (and 'all') and window.
DELETE FROM outcomes.release_repeat_contact;
INSERT INTO outcomes.release_repeat_contact
WITH r AS (
    SELECT t.*,
           outcomes.release_count(t.index_calls, {min_cell}, k.secret, c || 'index_calls')
               AS r_index,
           outcomes.release_count(t.with_repeat, {min_cell}, k.secret, c || 'with_repeat')
               AS r_repeat
    FROM t_repeat AS t
    CROSS JOIN t_release_key AS k
    CROSS JOIN LATERAL (SELECT concat_ws('|', 'repeat_contact', t.agency_code, t.cohort,
                                         t.window_days, '') AS c) AS ck
)
SELECT agency_code, cohort, window_days, r_index, r_repeat,
       CASE WHEN index_calls >= {min_cell} AND r_repeat IS NOT NULL AND r_index > 0
            THEN least(1, round(r_repeat::numeric / r_index, 3)) END,
       CASE WHEN index_calls >= {min_cell} AND r_repeat IS NOT NULL
            THEN round(standardised_rate::numeric, 2) END
FROM r;

-- The survival curve at its published days: the estimate only where at least {min_cell}
-- index calls are still at risk.
DELETE FROM outcomes.release_repeat_survival;
INSERT INTO outcomes.release_repeat_survival
SELECT p.agency_code, p.cohort, p.day,
       outcomes.release_count(p.at_risk, {min_cell}, k.secret,
                              concat_ws('|', 'repeat_survival', p.agency_code, p.cohort, p.day,
                                        'at_risk')),
       CASE WHEN p.at_risk >= {min_cell} THEN round(p.survival::numeric, 3) END,
       CASE WHEN p.at_risk >= {min_cell} THEN round(p.ci_low::numeric, 3) END,
       CASE WHEN p.at_risk >= {min_cell} THEN round(p.ci_high::numeric, 3) END
FROM t_km_points AS p
CROSS JOIN t_release_key AS k;

DELETE FROM outcomes.release_logrank;
INSERT INTO outcomes.release_logrank
SELECT l.agency_code, l.cohort,
       CASE WHEN ok THEN round(l.chi_square::numeric, 2) END,
       CASE WHEN ok THEN round(l.p_value::numeric, 3) END
FROM outcomes.repeat_logrank AS l
LEFT JOIN t_km_points AS b
  ON b.agency_code = l.agency_code AND b.cohort = 'baseline' AND b.day = 0
CROSS JOIN LATERAL (SELECT l.index_calls >= {min_cell} AND coalesce(b.at_risk, 0) >= {min_cell}
                           AND NOT (l.observed BETWEEN 1 AND {min_cell} - 1)
                           AND l.chi_square IS NOT NULL AS ok) AS x;
