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
-- is a frame that only grows: O(1) per row): the first later call, the first later charged
-- one, and the number of calls in the 365 days before (the prior-call history the repeat
-- rates are standardised by; a frame of the same sort, counted with an inverse transition).
-- The frames stop 1 microsecond from the call: same-instant records are not repeats or
-- priors of each other. COLLATE "C": byte order, the same partitions, a much cheaper sort.
-- Kept: non-charge calls up to the reference date with a later call within 365 local days or
-- a prior call (every other call has no repeat and no prior history, like the calls of
-- one-call victims, and is counted from the daily aggregate).
CREATE TEMP TABLE t_followup ON COMMIT DROP AS
SELECT w.agency_code,
       w.incident_id,
       w.day,
       w.consent_status,
       w.next_call::date - w.day AS gap_days,          -- local days to the next call
       coalesce(w.next_call <= w.call_received_at + interval '182 days', false) AS rep_182,
       coalesce(w.next_call <= w.call_received_at + interval '365 days', false) AS rep_365,
       coalesce(w.next_charged <= w.call_received_at + interval '182 days', false) AS chg_182,
       coalesce(w.next_charged <= w.call_received_at + interval '365 days', false) AS chg_365,
       least(w.prior_365, 2)::int AS prior
FROM (
    SELECT c.agency_code, c.incident_id, c.call_received_at, c.clearance_status,
           c.consent_status, c.call_received_at::date AS day,
           last_value(c.call_received_at) OVER later AS next_call,
           min(c.call_received_at) FILTER (WHERE c.clearance_status = 'cleared_by_charge')
               OVER later AS next_charged,
           count(*) OVER earlier AS prior_365
    FROM core.call AS c
    -- matched on a 64-bit hash of the pseudonym (cheaper to probe than the 64-character
    -- key); a collision only lets a one-call victim in, whose call then has no other call
    WHERE hashtextextended(c.victim_key, 0)
          IN (SELECT hashtextextended(victim_key, 0) FROM outcomes.work_repeat_victim)
    WINDOW later AS (PARTITION BY c.victim_key COLLATE "C" ORDER BY c.call_received_at DESC
                     RANGE BETWEEN UNBOUNDED PRECEDING AND interval '1 microsecond' PRECEDING),
           earlier AS (PARTITION BY c.victim_key COLLATE "C" ORDER BY c.call_received_at DESC
                       RANGE BETWEEN interval '1 microsecond' FOLLOWING
                                 AND interval '365 days' FOLLOWING)
) AS w
WHERE w.clearance_status <> 'cleared_by_charge'
  AND w.day <= {reference_date}::date
  AND (w.prior_365 > 0 OR w.next_call::date - w.day <= 365);

TRUNCATE outcomes.work_repeat_victim;

-- Index calls (non-charge, up to the reference date) per agency, local day and cohort.
-- Cohorts, decided in this order: pre-launch calls are the baseline whatever happened to them;
-- after launch a delivered referral decides (engaged / referred_not_engaged), then the consent
-- answer; 'consent_given_not_delivered' is consent given (or withdrawn) without a delivered
-- referral. Counted from the daily aggregate by consent answer, then moved to the referral
-- cohorts by the referrals: no pass over core.call.
CREATE TEMP TABLE t_index_day ON COMMIT DROP AS
WITH by_consent AS (
    SELECT d.agency_code, d.day, v.cohort, v.n
    FROM t_calls_daily AS d
    CROSS JOIN LATERAL (VALUES
        ('baseline', CASE WHEN d.day < {launch_date}::date THEN d.non_charge ELSE 0 END),
        ('consent_declined', CASE WHEN d.day >= {launch_date}::date
                                  THEN d.consent_declined ELSE 0 END),
        ('consent_not_asked', CASE WHEN d.day >= {launch_date}::date
                                   THEN d.consent_not_asked + d.consent_unable_to_ask ELSE 0 END),
        ('consent_given_not_delivered', CASE WHEN d.day >= {launch_date}::date
                                             THEN d.consent_given + d.consent_withdrawn
                                             ELSE 0 END)
    ) AS v(cohort, n)
    WHERE d.patrol_zone = '(all)' AND d.day <= {reference_date}::date AND v.n <> 0
), moved AS (            -- delivered referrals of index calls: out of their consent cohort
    SELECT r.agency_code, r.day, k.cohort, k.delta AS n
    FROM t_referral AS r
    CROSS JOIN LATERAL (VALUES
        (CASE WHEN r.engaged THEN 'engaged' ELSE 'referred_not_engaged' END, 1),
        (CASE WHEN r.consent_status = 'declined' THEN 'consent_declined'
              WHEN r.consent_status IN ('not_asked', 'unable_to_ask') THEN 'consent_not_asked'
              ELSE 'consent_given_not_delivered' END, -1)
    ) AS k(cohort, delta)
    WHERE NOT r.charged AND r.day >= {launch_date}::date AND r.day <= {reference_date}::date
)
SELECT agency_code, day, cohort, sum(n)::int AS n
FROM (SELECT * FROM by_consent UNION ALL SELECT * FROM moved) AS u
GROUP BY agency_code, day, cohort;

-- The kept calls with their cohort (same rules as above, per call).
CREATE TEMP TABLE t_followup_cohort ON COMMIT DROP AS
SELECT f.agency_code,
       f.day,
       CASE WHEN f.day < {launch_date}::date THEN 'baseline'
            WHEN r.incident_id IS NOT NULL AND r.engaged THEN 'engaged'
            WHEN r.incident_id IS NOT NULL THEN 'referred_not_engaged'
            WHEN f.consent_status = 'declined' THEN 'consent_declined'
            WHEN f.consent_status IN ('not_asked', 'unable_to_ask') THEN 'consent_not_asked'
            ELSE 'consent_given_not_delivered' END AS cohort,
       f.gap_days, f.rep_182, f.rep_365, f.chg_182, f.chg_365, f.prior
FROM t_followup AS f
LEFT JOIN t_referral AS r USING (agency_code, incident_id);
ANALYZE t_followup_cohort;

-- Fixed windows, per cohort and prior-call stratum (0, 1, 2 = "2 or more"). An index call
-- counts for a window only when the window has fully elapsed by the reference date (local
-- date of the call + window <= reference date). Stratum 0 is every index call minus those
-- with a prior call (only kept calls can have one).
CREATE TEMP TABLE t_repeat_strata ON COMMIT DROP AS
WITH w AS (
    SELECT * FROM (VALUES (182), (365)) AS w(window_days)
), total AS (
    SELECT i.agency_code, i.cohort, w.window_days, sum(i.n)::int AS n
    FROM t_index_day AS i
    CROSS JOIN w
    WHERE i.day + w.window_days <= {reference_date}::date
    GROUP BY i.agency_code, i.cohort, w.window_days
), strata AS (
    SELECT f.agency_code, f.cohort, w.window_days, f.prior,
           count(*)::int AS n,
           count(*) FILTER (WHERE CASE w.window_days WHEN 182 THEN f.rep_182
                                                     ELSE f.rep_365 END)::int AS rep,
           count(*) FILTER (WHERE CASE w.window_days WHEN 182 THEN f.chg_182
                                                     ELSE f.chg_365 END)::int AS chg
    FROM t_followup_cohort AS f
    CROSS JOIN w
    WHERE f.day + w.window_days <= {reference_date}::date
    GROUP BY f.agency_code, f.cohort, w.window_days, f.prior
), grid AS (
    SELECT a.agency_code, k.cohort, w.window_days, p.prior
    FROM (SELECT DISTINCT agency_code FROM t_calls_monthly) AS a
    CROSS JOIN (VALUES ('engaged'), ('referred_not_engaged'), ('consent_declined'),
                       ('consent_not_asked'), ('consent_given_not_delivered'), ('baseline'))
        AS k(cohort)
    CROSS JOIN w
    CROSS JOIN (VALUES (0), (1), (2)) AS p(prior)
), j AS (
    SELECT g.agency_code, g.cohort, g.window_days, g.prior, coalesce(t.n, 0) AS total,
           coalesce(s.n, 0) AS n, coalesce(s.rep, 0) AS rep, coalesce(s.chg, 0) AS chg
    FROM grid AS g
    LEFT JOIN total AS t USING (agency_code, cohort, window_days)
    LEFT JOIN strata AS s USING (agency_code, cohort, window_days, prior)
)
SELECT agency_code, cohort, window_days, prior,
       CASE WHEN prior = 0
            THEN total - coalesce(sum(n) FILTER (WHERE prior > 0)
                                  OVER (PARTITION BY agency_code, cohort, window_days), 0)
            ELSE n END::int AS index_calls,
       rep AS with_repeat,
       chg AS with_charged_repeat
FROM j;

-- Per cohort and the total 'all': crude counts, and the rate directly standardised to the
-- baseline cohort's prior-call mix: sum over strata of w_k * p_k, w_k the baseline's share of
-- index calls in stratum k, p_k the cohort's repeat rate there. Undefined (NULL) when the
-- cohort has no index call in a stratum the baseline has. Its 95% interval is normal:
-- var = sum w_k^2 p_k (1 - p_k) / n_k.
CREATE TEMP TABLE t_repeat ON COMMIT DROP AS
WITH strata AS (
    SELECT agency_code, coalesce(cohort, 'all') AS cohort, window_days, prior,
           sum(index_calls)::int AS n, sum(with_repeat)::int AS k,
           sum(with_charged_repeat)::int AS chg
    FROM t_repeat_strata
    GROUP BY GROUPING SETS ((agency_code, cohort, window_days, prior),
                            (agency_code, window_days, prior))
), base AS (
    SELECT agency_code, window_days, prior,
           n::float8 / nullif(sum(n) OVER (PARTITION BY agency_code, window_days), 0) AS weight
    FROM strata
    WHERE cohort = 'baseline'
), std AS (
    SELECT s.agency_code, s.cohort, s.window_days,
           sum(s.n)::int AS index_calls, sum(s.k)::int AS with_repeat,
           sum(s.chg)::int AS with_charged_repeat,
           bool_and(s.n > 0 OR coalesce(b.weight, 0) = 0) AS complete,
           sum(b.weight * s.k::float8 / s.n) FILTER (WHERE s.n > 0) AS rate,
           sum(b.weight ^ 2 * (s.k::float8 / s.n) * (1 - s.k::float8 / s.n) / s.n)
               FILTER (WHERE s.n > 0) AS variance
    FROM strata AS s
    JOIN base AS b USING (agency_code, window_days, prior)
    GROUP BY s.agency_code, s.cohort, s.window_days
)
SELECT agency_code, cohort, window_days, index_calls, with_repeat, with_charged_repeat,
       CASE WHEN complete THEN rate END AS standardised_rate,
       CASE WHEN complete THEN greatest(0.0, rate - 1.959963984540054 * sqrt(variance)) END
           AS std_ci_low,
       CASE WHEN complete THEN least(1.0, rate + 1.959963984540054 * sqrt(variance)) END
           AS std_ci_high
FROM std;
