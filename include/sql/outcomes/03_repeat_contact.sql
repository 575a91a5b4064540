-- d. Repeat police contact after a non-charge call. Placeholders: {reference_date},
-- {launch_date}. Local days and calendar-day intervals: the rebuild sets TimeZone.
--
-- Index calls: calls whose current clearance is not cleared_by_charge. A repeat: a later call
-- of the same victim (victim_key), strictly after the index call and at most 182 / 365
-- calendar days after it; a charged repeat: such a call cleared by charge. An index call
-- counts for a window only when the window has fully elapsed by the reference date:
-- local date of (call + window) = local date of the call + window <= reference date.
--
-- Only victims with more than one call can have a repeat (about a third of the calls). They
-- are found in one ordered pass over the index call_victim_time (victim_key,
-- call_received_at), index-only where the visibility map allows (an ordered aggregate over the
-- index beats hashing millions of distinct keys); their calls then go through one window
-- pass. No per-call subquery. The index calls themselves are counted from the daily
-- aggregate and the referrals.
--
-- outcomes.work_repeat_victim is an UNLOGGED work table (003_outcomes.sql), not a temporary
-- one: a query that reads a temporary table may not use parallel workers, and the next one
-- scans all of core.call. Filled and emptied again inside the rebuild's transaction, so it
-- never holds anything once the rebuild has committed.

TRUNCATE outcomes.work_repeat_victim;
SELECT set_config('enable_hashagg', 'off', true);
INSERT INTO outcomes.work_repeat_victim (victim_key)
SELECT victim_key
FROM core.call
GROUP BY victim_key
HAVING count(*) > 1;
SELECT set_config('enable_hashagg', 'on', true);
ANALYZE outcomes.work_repeat_victim;

-- Per call of a repeat victim, in one window pass (newest first, so that "every later call"
-- is a frame that only grows: O(1) per row): the first later call, and the first later
-- charged one. The frame ends 1 microsecond after the call: same-instant records are not
-- repeats of each other. COLLATE "C": byte order, the same partitions, a much cheaper sort.
-- Kept: index calls with a repeat within 365 days and at least 182 days elapsed.
CREATE TEMP TABLE t_repeat_calls ON COMMIT DROP AS
SELECT w.agency_code,
       w.incident_id,
       w.day,
       w.consent_status,
       w.next_call <= w.call_received_at + interval '182 days' AS rep_182,
       coalesce(w.next_charged <= w.call_received_at + interval '182 days', false) AS chg_182,
       coalesce(w.next_charged <= w.call_received_at + interval '365 days', false) AS chg_365
FROM (
    SELECT c.agency_code, c.incident_id, c.call_received_at, c.clearance_status,
           c.consent_status, c.call_received_at::date AS day,
           last_value(c.call_received_at) OVER later AS next_call,
           min(c.call_received_at) FILTER (WHERE c.clearance_status = 'cleared_by_charge')
               OVER later AS next_charged
    FROM core.call AS c
    -- matched on a 64-bit hash of the pseudonym (cheaper to probe than the 64-character
    -- key); a collision only lets a one-call victim in, whose call then has no later call
    WHERE hashtextextended(c.victim_key, 0)
          IN (SELECT hashtextextended(victim_key, 0) FROM outcomes.work_repeat_victim)
    WINDOW later AS (PARTITION BY c.victim_key COLLATE "C" ORDER BY c.call_received_at DESC
                     RANGE BETWEEN UNBOUNDED PRECEDING AND interval '1 microsecond' PRECEDING)
) AS w
WHERE w.clearance_status <> 'cleared_by_charge'
  AND w.day + 182 <= {reference_date}::date
  AND w.next_call <= w.call_received_at + interval '365 days';

TRUNCATE outcomes.work_repeat_victim;

-- Repeat contact by cohort. Pre-launch calls are the baseline whatever happened to them;
-- after launch, a delivered referral decides (engaged / referred_not_engaged), then the
-- consent answer. 'other' (consent given but never delivered, consent withdrawn before
-- delivery) is kept in the restricted table only. Index calls are counted from the daily
-- aggregate (by consent answer) and moved to the referral cohorts by the referrals; repeats
-- come from t_repeat_calls.
CREATE TEMP TABLE t_repeat ON COMMIT DROP AS
WITH w AS (
    SELECT * FROM (VALUES (182), (365)) AS w(window_days)
), program_referral AS (    -- delivered referrals of calls that are index calls
    SELECT r.agency_code, r.day, r.engaged,
           CASE WHEN r.consent_status = 'declined' THEN 'consent_declined'
                WHEN r.consent_status IN ('not_asked', 'unable_to_ask') THEN 'consent_not_asked'
                ELSE 'other' END AS consent_cohort
    FROM t_referral AS r
    WHERE NOT r.charged AND r.day >= {launch_date}::date
), index_by_consent AS (    -- index calls by the cohort their consent answer gives
    SELECT d.agency_code, w.window_days, v.cohort, sum(v.n)::int AS n
    FROM t_calls_daily AS d
    CROSS JOIN w
    CROSS JOIN LATERAL (VALUES
        ('baseline', CASE WHEN d.day < {launch_date}::date THEN d.non_charge ELSE 0 END),
        ('consent_declined', CASE WHEN d.day >= {launch_date}::date
                                  THEN d.consent_declined ELSE 0 END),
        ('consent_not_asked', CASE WHEN d.day >= {launch_date}::date
                                   THEN d.consent_not_asked + d.consent_unable_to_ask ELSE 0 END),
        ('other', CASE WHEN d.day >= {launch_date}::date
                       THEN d.consent_given + d.consent_withdrawn ELSE 0 END)
    ) AS v(cohort, n)
    WHERE d.patrol_zone = '(all)' AND d.day + w.window_days <= {reference_date}::date
    GROUP BY d.agency_code, w.window_days, v.cohort
), referred AS (            -- moved from their consent cohort to a referral cohort
    SELECT p.agency_code, w.window_days, k.cohort, k.delta
    FROM program_referral AS p
    CROSS JOIN w
    CROSS JOIN LATERAL (VALUES
        (CASE WHEN p.engaged THEN 'engaged' ELSE 'referred_not_engaged' END, 1),
        (p.consent_cohort, -1)
    ) AS k(cohort, delta)
    WHERE p.day + w.window_days <= {reference_date}::date
), index_calls AS (
    SELECT agency_code, window_days, cohort, sum(n)::int AS index_calls
    FROM (SELECT agency_code, window_days, cohort, n FROM index_by_consent
          UNION ALL
          SELECT agency_code, window_days, cohort, delta FROM referred) AS u
    GROUP BY agency_code, window_days, cohort
), repeat_by_call AS (    -- every row of t_repeat_calls had a repeat within 365 days
    SELECT x.agency_code,
           CASE WHEN x.day < {launch_date}::date THEN 'baseline'
                WHEN r.incident_id IS NOT NULL AND r.engaged THEN 'engaged'
                WHEN r.incident_id IS NOT NULL THEN 'referred_not_engaged'
                WHEN x.consent_status = 'declined' THEN 'consent_declined'
                WHEN x.consent_status IN ('not_asked', 'unable_to_ask') THEN 'consent_not_asked'
                ELSE 'other' END AS cohort,
           x.rep_182, x.chg_182, x.chg_365,
           x.day + 365 <= {reference_date}::date AS elapsed_365
    FROM t_repeat_calls AS x
    LEFT JOIN t_referral AS r USING (agency_code, incident_id)
), repeat_by_cohort AS (
    SELECT agency_code, cohort,
           count(*) FILTER (WHERE rep_182)::int AS rep_182,
           count(*) FILTER (WHERE chg_182)::int AS chg_182,
           count(*) FILTER (WHERE elapsed_365)::int AS rep_365,
           count(*) FILTER (WHERE elapsed_365 AND chg_365)::int AS chg_365
    FROM repeat_by_call
    GROUP BY agency_code, cohort
), repeat_counts AS (
    SELECT c.agency_code, k.window_days, c.cohort, k.with_repeat, k.with_charged_repeat
    FROM repeat_by_cohort AS c
    CROSS JOIN LATERAL (VALUES (182, c.rep_182, c.chg_182), (365, c.rep_365, c.chg_365))
        AS k(window_days, with_repeat, with_charged_repeat)
), grid AS (
    SELECT a.agency_code, k.cohort, w.window_days
    FROM (SELECT DISTINCT agency_code FROM t_calls_monthly) AS a
    CROSS JOIN (VALUES ('engaged'), ('referred_not_engaged'), ('consent_declined'),
                       ('consent_not_asked'), ('baseline'), ('other')) AS k(cohort)
    CROSS JOIN w
)
SELECT g.agency_code, g.cohort, g.window_days,
       coalesce(i.index_calls, 0) AS index_calls,
       coalesce(c.with_repeat, 0) AS with_repeat,
       coalesce(c.with_charged_repeat, 0) AS with_charged_repeat
FROM grid AS g
LEFT JOIN index_calls AS i USING (agency_code, cohort, window_days)
LEFT JOIN repeat_counts AS c USING (agency_code, cohort, window_days);
