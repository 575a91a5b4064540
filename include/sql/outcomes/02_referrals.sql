-- b. Referral funnel and c. timeliness, both by month of call.

-- One row per referral that was delivered at least once (delivered_at is set on delivery and
-- never cleared: a referral withdrawn after delivery still counts as referred), with its call.
-- A referral whose call is no longer in core.call is left out. Separate statements: a query
-- that reads a temporary table runs without parallel workers, so the two big inputs are read
-- on their own first.
CREATE TEMP TABLE t_referral_call ON COMMIT DROP AS
SELECT c.agency_code,
       c.incident_id,
       r.referral_id,
       c.call_received_at::date AS day,
       date_trunc('month', c.call_received_at::date)::date AS month,
       c.call_received_at,
       c.clearance_status = 'cleared_by_charge' AS charged,
       c.consent_status,
       r.delivered_at
FROM routing.referral AS r
JOIN core.call AS c USING (agency_code, incident_id)
WHERE r.delivered_at IS NOT NULL;

-- What the outreach side reported, per referral: one bit per event type (one aggregate per
-- event row instead of six), and the first contact.
CREATE TEMP TABLE t_referral_outcome ON COMMIT DROP AS
SELECT referral_id,
       bit_or(CASE event_type WHEN 'contact_attempted' THEN 1 WHEN 'contacted' THEN 2
                              WHEN 'engaged' THEN 4 WHEN 'declined' THEN 8
                              WHEN 'unreachable' THEN 16 WHEN 'withdrawn' THEN 32 END) AS seen,
       min(occurred_at) FILTER (WHERE event_type = 'contacted') AS first_contacted_at
FROM routing.referral_event
WHERE event_type IN ('contact_attempted', 'contacted', 'engaged', 'declined', 'unreachable',
                     'withdrawn')
GROUP BY referral_id;

ANALYZE t_referral_call;
ANALYZE t_referral_outcome;

CREATE TEMP TABLE t_referral ON COMMIT DROP AS
SELECT c.agency_code, c.incident_id, c.day, c.month, c.call_received_at, c.charged,
       c.consent_status, c.delivered_at,
       -- a contact is also an attempt (a server need not report the attempt separately)
       coalesce(e.seen & 3 <> 0, false) AS attempted,
       coalesce(e.seen & 2 <> 0, false) AS contacted,
       coalesce(e.seen & 4 <> 0, false) AS engaged,
       coalesce(e.seen & 8 <> 0, false) AS declined,
       coalesce(e.seen & 16 <> 0, false) AS unreachable,
       coalesce(e.seen & 32 <> 0, false) AS withdrawn,
       e.first_contacted_at
FROM t_referral_call AS c
LEFT JOIN t_referral_outcome AS e USING (referral_id);

ANALYZE t_referral;

-- Funnel by month of call: steps 1-4 from the calls (current truth, the same numbers as
-- calls_monthly), steps 5-12 from the referrals of those calls. base_step: what the rate is
-- relative to.
CREATE TEMP TABLE t_funnel ON COMMIT DROP AS
WITH m AS (
    SELECT agency_code, month, calls, non_charge,
           consent_given + consent_declined + consent_withdrawn AS consent_asked, consent_given
    FROM t_calls_monthly
    WHERE patrol_zone = '(all)'
), r AS (
    SELECT agency_code, month,
           count(*)::int AS referred,
           count(*) FILTER (WHERE attempted)::int AS contact_attempted,
           count(*) FILTER (WHERE contacted)::int AS contacted,
           count(*) FILTER (WHERE engaged)::int AS engaged,
           count(*) FILTER (WHERE declined)::int AS declined,
           count(*) FILTER (WHERE unreachable)::int AS unreachable,
           count(*) FILTER (WHERE withdrawn)::int AS withdrawn
    FROM t_referral
    GROUP BY agency_code, month
), x AS (
    -- eligible but outside the referral window (before launch, or too old when routing ran):
    -- never sent; imported history lands here
    SELECT r.agency_code, date_trunc('month', c.call_received_at::date)::date AS month,
           count(*)::int AS outside_window
    FROM routing.referral AS r
    JOIN core.call AS c USING (agency_code, incident_id)
    WHERE r.status = 'expired'
    GROUP BY 1, 2
), j AS (
    SELECT m.*,
           coalesce(r.referred, 0) AS referred,
           coalesce(r.contact_attempted, 0) AS contact_attempted,
           coalesce(r.contacted, 0) AS contacted,
           coalesce(r.engaged, 0) AS engaged,
           coalesce(r.declined, 0) AS declined,
           coalesce(r.unreachable, 0) AS unreachable,
           coalesce(r.withdrawn, 0) AS withdrawn,
           coalesce(x.outside_window, 0) AS outside_window
    FROM m LEFT JOIN r USING (agency_code, month) LEFT JOIN x USING (agency_code, month)
)
SELECT j.agency_code, j.month, s.step_order, s.step, s.count, s.base_step, s.base_count,
       CASE WHEN s.base_count > 0 THEN round(s.count::numeric / s.base_count, 4) END AS rate
FROM j
CROSS JOIN LATERAL (VALUES
    (1,  'ipv_calls',         j.calls,             NULL,                NULL::int),
    (2,  'non_charge',        j.non_charge,        'ipv_calls',         j.calls),
    (3,  'consent_asked',     j.consent_asked,     'non_charge',        j.non_charge),
    (4,  'consent_given',     j.consent_given,     'consent_asked',     j.consent_asked),
    (5,  'referred',          j.referred,          'consent_given',     j.consent_given),
    (6,  'contact_attempted', j.contact_attempted, 'referred',          j.referred),
    (7,  'contacted',         j.contacted,         'contact_attempted', j.contact_attempted),
    (8,  'engaged',           j.engaged,           'contacted',         j.contacted),
    (9,  'declined',          j.declined,          'contacted',         j.contacted),
    (10, 'unreachable',       j.unreachable,       'referred',          j.referred),
    (11, 'withdrawn',         j.withdrawn,         'referred',          j.referred),
    (12, 'not_referred_outside_window', j.outside_window, 'consent_given', j.consent_given)
) AS s(step_order, step, count, base_step, base_count);

-- The funnel over all months, per agency and step: sums of the exact monthly counts (every
-- agency-month with calls is in t_funnel), the rate from those sums.
CREATE TEMP TABLE t_funnel_total ON COMMIT DROP AS
SELECT agency_code, step_order, step, sum(count)::int AS count, base_step,
       sum(base_count)::int AS base_count,
       CASE WHEN sum(base_count) > 0 THEN round(sum(count)::numeric / sum(base_count), 4) END
           AS rate
FROM t_funnel
GROUP BY agency_code, step_order, step, base_step;

-- Timeliness: hours from call to delivery (measure 1), and from delivery to the first
-- 'contacted' event (measure 2); percentile_cont is interpolated. Every agency-month with
-- calls, both measures. The percentiles sort millions of rows: grouped on one integer key
-- (agency number, month, measure) that sorts much faster than the text and date columns.
CREATE TEMP TABLE t_timeliness ON COMMIT DROP AS
WITH agency AS (
    SELECT agency_code, row_number() OVER (ORDER BY agency_code COLLATE "C")::bigint AS a
    FROM (SELECT DISTINCT agency_code FROM t_calls_monthly) AS d
), x AS (
    SELECT g.a * 1000000 + (extract(year FROM r.month)::int * 12
                            + extract(month FROM r.month)::int) * 2 AS k,
           extract(epoch FROM r.delivered_at - r.call_received_at)::float8 / 3600.0 AS hours
    FROM t_referral AS r JOIN agency AS g USING (agency_code)
    UNION ALL
    SELECT g.a * 1000000 + (extract(year FROM r.month)::int * 12
                            + extract(month FROM r.month)::int) * 2 + 1,
           extract(epoch FROM r.first_contacted_at - r.delivered_at)::float8 / 3600.0
    FROM t_referral AS r JOIN agency AS g USING (agency_code)
    WHERE r.first_contacted_at IS NOT NULL
), a AS (
    SELECT k,
           count(*)::int AS n,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY hours) AS median_hours,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY hours) AS p90_hours,
           count(*) FILTER (WHERE hours <= 24)::int AS within_24h,
           count(*) FILTER (WHERE hours <= 168)::int AS within_7d
    FROM x
    GROUP BY k
), grid AS (
    SELECT mo.agency_code, mo.month, ms.measure,
           g.a * 1000000 + (extract(year FROM mo.month)::int * 12
                            + extract(month FROM mo.month)::int) * 2 + ms.m AS k
    FROM t_calls_monthly AS mo
    JOIN agency AS g USING (agency_code)
    CROSS JOIN (VALUES (0, 'call_to_referral'), (1, 'referral_to_first_contact'))
        AS ms(m, measure)
    WHERE mo.patrol_zone = '(all)'
)
SELECT grid.agency_code, grid.month, grid.measure,
       coalesce(a.n, 0) AS n,
       round(a.median_hours::numeric, 2) AS median_hours,
       round(a.p90_hours::numeric, 2) AS p90_hours,
       coalesce(a.within_24h, 0) AS within_24h,
       coalesce(a.within_7d, 0) AS within_7d,
       CASE WHEN a.n > 0 THEN round(a.within_24h::numeric / a.n, 4) END AS share_within_24h,
       CASE WHEN a.n > 0 THEN round(a.within_7d::numeric / a.n, 4) END AS share_within_7d
FROM grid
LEFT JOIN a USING (k);

-- Timeliness over all months, per agency and measure: the statistics of every referral of the
-- agency (the union of the months, not a combination of monthly medians). Every agency with
-- calls has both rows.
CREATE TEMP TABLE t_timeliness_total ON COMMIT DROP AS
WITH x AS (
    SELECT agency_code, 'call_to_referral' AS measure,
           extract(epoch FROM delivered_at - call_received_at)::float8 / 3600.0 AS hours
    FROM t_referral
    UNION ALL
    SELECT agency_code, 'referral_to_first_contact',
           extract(epoch FROM first_contacted_at - delivered_at)::float8 / 3600.0
    FROM t_referral
    WHERE first_contacted_at IS NOT NULL
), a AS (
    SELECT agency_code, measure,
           count(*)::int AS n,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY hours) AS median_hours,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY hours) AS p90_hours,
           count(*) FILTER (WHERE hours <= 24)::int AS within_24h,
           count(*) FILTER (WHERE hours <= 168)::int AS within_7d
    FROM x
    GROUP BY agency_code, measure
)
SELECT g.agency_code, ms.measure,
       coalesce(a.n, 0) AS n,
       round(a.median_hours::numeric, 2) AS median_hours,
       round(a.p90_hours::numeric, 2) AS p90_hours,
       coalesce(a.within_24h, 0) AS within_24h,
       coalesce(a.within_7d, 0) AS within_7d,
       CASE WHEN a.n > 0 THEN round(a.within_24h::numeric / a.n, 4) END AS share_within_24h,
       CASE WHEN a.n > 0 THEN round(a.within_7d::numeric / a.n, 4) END AS share_within_7d
FROM (SELECT DISTINCT agency_code FROM t_calls_monthly) AS g
CROSS JOIN (VALUES ('call_to_referral'), ('referral_to_first_contact')) AS ms(measure)
LEFT JOIN a ON a.agency_code = g.agency_code AND a.measure = ms.measure;
