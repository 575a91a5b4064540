-- Outcome measures of the program (docs/measuring.md) and what analysts and the board may read.
--   outcomes   restricted: the tables rebuilt nightly by upstream.outcomes.rebuild_outcomes(),
--              with the exact (unsuppressed) counts and, per cell, whether it is published
--   published  the only schema role upstream_analyst can use: views that apply small-cell
--              suppression to the outcome tables. Owned by the migration owner, so they read
--              the outcome tables with the owner's rights; nothing underneath is granted.
--
-- The nightly rebuild replaces the CONTENTS of the outcome tables in one transaction
-- (DELETE + INSERT under REPEATABLE READ): the tables and these views keep their OIDs, owner
-- and grants, readers never block and see either the old or the new build. The rebuild needs
-- no DDL on published and never recreates a view. Large outcome tables carry no unique index
-- (their rows are unique by construction): re-inserting every key of a table in the
-- transaction that deleted it would cost a heap visit per row for the uniqueness check.

CREATE SCHEMA IF NOT EXISTS outcomes;
CREATE SCHEMA IF NOT EXISTS published;

-- ---------------------------------------------------------------------------------------------
-- The analyst role: LOGIN without a password (authentication is the server's pg_hba business),
-- NOINHERIT. Roles are cluster-wide: created only when missing (a DBA may pre-create it, then
-- the migrator needs no CREATEROLE).
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'upstream_analyst') THEN
    CREATE ROLE upstream_analyst LOGIN NOINHERIT;
  END IF;
END $$;

-- Nothing but published. These schemas grant nothing to PUBLIC; the revokes make the intent
-- explicit and undo anything granted to the role by hand before.
REVOKE ALL ON SCHEMA ops, core, contact, staging, routing, outcomes FROM upstream_analyst;
REVOKE ALL ON ALL TABLES IN SCHEMA ops, core, contact, staging, routing FROM upstream_analyst;
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM upstream_analyst;
REVOKE CREATE ON SCHEMA public FROM upstream_analyst;

-- ---------------------------------------------------------------------------------------------
-- 95% Wilson score interval for k successes out of n (NULL when n = 0). z = 1.959963984540054
-- is the two-sided 95% normal quantile. Unit-tested against a Python implementation.
CREATE FUNCTION outcomes.wilson_low(k bigint, n bigint, z double precision DEFAULT 1.959963984540054)
RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN n IS NULL OR n <= 0 OR k IS NULL OR k < 0 OR k > n THEN NULL
              WHEN k = 0 THEN 0.0
              ELSE greatest(0.0,
                ((k::float8 / n) + z * z / (2.0 * n)
                 - z * sqrt((k::float8 / n) * (1 - k::float8 / n) / n + z * z / (4.0 * n * n)))
                / (1 + z * z / n)) END
$$;

CREATE FUNCTION outcomes.wilson_high(k bigint, n bigint, z double precision DEFAULT 1.959963984540054)
RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN n IS NULL OR n <= 0 OR k IS NULL OR k < 0 OR k > n THEN NULL
              WHEN k = n THEN 1.0
              ELSE least(1.0,
                ((k::float8 / n) + z * z / (2.0 * n)
                 + z * sqrt((k::float8 / n) * (1 - k::float8 / n) / n + z * z / (4.0 * n * n)))
                / (1 + z * z / n)) END
$$;

-- ---------------------------------------------------------------------------------------------
-- Outcome tables (exact counts). `hidden` / `*_hidden` say which cells the published views
-- blank out (small-cell and complementary suppression, decided by the rebuild).

-- a. Calls by local day / month of call_received_at, agency and patrol zone; patrol_zone
--    '(all)' is the agency total. Days and months without calls are present (zeros) for the
--    agency total between the agency's first and last call.
CREATE TABLE outcomes.calls_daily (
    agency_code            text    NOT NULL,
    day                    date    NOT NULL,
    patrol_zone            text    NOT NULL,
    calls                  integer NOT NULL,
    cleared_by_charge      integer NOT NULL,
    non_charge             integer NOT NULL,
    consent_given          integer NOT NULL,
    consent_declined       integer NOT NULL,
    consent_withdrawn      integer NOT NULL,
    consent_not_asked      integer NOT NULL,
    consent_unable_to_ask  integer NOT NULL,
    hidden                 text[]  NOT NULL DEFAULT '{}'   -- suppressed measures (agency rows)
    -- unique on (agency_code, day, patrol_zone) by construction (GROUP BY); no index: the
    -- nightly DELETE + INSERT of ~250k rows would pay a uniqueness check per row
);

CREATE TABLE outcomes.calls_monthly (
    agency_code            text    NOT NULL,
    month                  date    NOT NULL,                -- first day of the month
    patrol_zone            text    NOT NULL,
    calls                  integer NOT NULL,
    cleared_by_charge      integer NOT NULL,
    non_charge             integer NOT NULL,
    consent_given          integer NOT NULL,
    consent_declined       integer NOT NULL,
    consent_withdrawn      integer NOT NULL,
    consent_not_asked      integer NOT NULL,
    consent_unable_to_ask  integer NOT NULL,
    hidden                 text[]  NOT NULL DEFAULT '{}',
    PRIMARY KEY (agency_code, month, patrol_zone)
);

-- b. Referral funnel by month of call.
CREATE TABLE outcomes.referral_funnel (
    agency_code   text    NOT NULL,
    month         date    NOT NULL,
    step_order    integer NOT NULL,
    step          text    NOT NULL,
    count         integer NOT NULL,
    base_step     text,                 -- the step the rate is relative to
    base_count    integer,
    rate          numeric,              -- count / base_count, 4 decimals; NULL when base is 0
    hidden        boolean NOT NULL DEFAULT false,   -- count suppressed
    rate_hidden   boolean NOT NULL DEFAULT false,   -- count or base suppressed
    PRIMARY KEY (agency_code, month, step_order)
);

-- c. Timeliness by month of call.
CREATE TABLE outcomes.timeliness (
    agency_code        text    NOT NULL,
    month              date    NOT NULL,
    measure            text    NOT NULL CHECK (measure IN ('call_to_referral', 'referral_to_first_contact')),
    n                  integer NOT NULL,
    median_hours       numeric,
    p90_hours          numeric,
    within_24h         integer NOT NULL,
    within_7d          integer NOT NULL,
    share_within_24h   numeric,
    share_within_7d    numeric,
    n_hidden           boolean NOT NULL DEFAULT false,
    stats_hidden       boolean NOT NULL DEFAULT false,
    share_24h_hidden   boolean NOT NULL DEFAULT false,
    share_7d_hidden    boolean NOT NULL DEFAULT false,
    PRIMARY KEY (agency_code, month, measure)
);

-- d. Repeat police contact after a non-charge call, by cohort and window.
CREATE TABLE outcomes.repeat_contact (
    agency_code            text    NOT NULL,
    cohort                 text    NOT NULL,
    window_days            integer NOT NULL,
    index_calls            integer NOT NULL,
    with_repeat            integer NOT NULL,
    repeat_rate            numeric,
    ci_low                 numeric,
    ci_high                numeric,
    with_charged_repeat    integer NOT NULL,
    charged_repeat_rate    numeric,
    charged_ci_low         numeric,
    charged_ci_high        numeric,
    index_hidden           boolean NOT NULL DEFAULT false,
    repeat_hidden          boolean NOT NULL DEFAULT false,
    charged_hidden         boolean NOT NULL DEFAULT false,
    PRIMARY KEY (agency_code, cohort, window_days)
);

-- e. Data-quality history per agency and extract day, and quarantined rows by rule.
CREATE TABLE outcomes.data_quality_daily (
    agency_code       text    NOT NULL,
    extract_date      date    NOT NULL,
    files_received    integer NOT NULL,
    files_refused     integer NOT NULL,
    rows_in_files     integer NOT NULL,
    rows_loaded       integer NOT NULL,
    rows_quarantined  integer NOT NULL   -- one row per (agency_code, extract_date)
);

CREATE TABLE outcomes.quarantine_by_rule (
    agency_code   text    NOT NULL,
    extract_date  date    NOT NULL,
    rule          text    NOT NULL,
    rows          integer NOT NULL       -- one row per (agency_code, extract_date, rule)
);

-- Every suppressed cell of the last build and why (audit trail for the privacy officer).
CREATE TABLE outcomes.suppressed_cell (
    grain        text    NOT NULL,      -- 'month' | 'day'
    agency_code  text    NOT NULL,
    period       date    NOT NULL,
    patrol_zone  text    NOT NULL,
    measure      text    NOT NULL,
    value        integer NOT NULL,
    reason       text    NOT NULL CHECK (reason IN ('small_cell', 'complementary'))
);

-- Work table of the rebuild (victims with more than one call). UNLOGGED, not temporary, so
-- that the query joining it to core.call may use parallel workers; emptied before every
-- rebuild commits, so it never holds anything between rebuilds.
CREATE UNLOGGED TABLE outcomes.work_repeat_victim (
    victim_key   text    NOT NULL
);

-- What the last build was judged against (one row).
CREATE TABLE outcomes.build_info (
    singleton             boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    reference_date        date,
    program_launch_date   date    NOT NULL,
    repeat_windows_days   integer[] NOT NULL,
    time_zone             text    NOT NULL,
    calls                 bigint  NOT NULL
);

-- ---------------------------------------------------------------------------------------------
-- Published views. Suppressed cells are NULL (no separate flag column): counts 1..4, the
-- complementary cells chosen so that no hidden cell can be recovered from a published total,
-- and every rate, interval or statistic built on a hidden count. See docs/measuring.md.
-- No view exposes victim_key, address_key, incident ids or anything below agency x zone x day.

CREATE VIEW published.calls_monthly AS
SELECT agency_code,
       month,
       patrol_zone,
       CASE WHEN 'calls' = ANY (hidden) THEN NULL ELSE calls END AS calls,
       CASE WHEN 'cleared_by_charge' = ANY (hidden) THEN NULL ELSE cleared_by_charge END AS cleared_by_charge,
       CASE WHEN 'non_charge' = ANY (hidden) THEN NULL ELSE non_charge END AS non_charge,
       CASE WHEN 'consent_given' = ANY (hidden) THEN NULL ELSE consent_given END AS consent_given,
       CASE WHEN 'consent_declined' = ANY (hidden) THEN NULL ELSE consent_declined END AS consent_declined,
       CASE WHEN 'consent_not_asked' = ANY (hidden) THEN NULL ELSE consent_not_asked END AS consent_not_asked,
       CASE WHEN 'consent_unable_to_ask' = ANY (hidden) THEN NULL ELSE consent_unable_to_ask END AS consent_unable_to_ask
FROM outcomes.calls_monthly;

CREATE VIEW published.calls_daily AS
SELECT agency_code,
       day,
       CASE WHEN 'calls' = ANY (hidden) THEN NULL ELSE calls END AS calls,
       CASE WHEN 'cleared_by_charge' = ANY (hidden) THEN NULL ELSE cleared_by_charge END AS cleared_by_charge,
       CASE WHEN 'non_charge' = ANY (hidden) THEN NULL ELSE non_charge END AS non_charge,
       CASE WHEN 'consent_given' = ANY (hidden) THEN NULL ELSE consent_given END AS consent_given
FROM outcomes.calls_daily
WHERE patrol_zone = '(all)';

CREATE VIEW published.referral_funnel AS
SELECT agency_code,
       month,
       step_order,
       step,
       CASE WHEN hidden THEN NULL ELSE count END AS count,
       CASE WHEN rate_hidden THEN NULL ELSE rate END AS rate
FROM outcomes.referral_funnel;

CREATE VIEW published.timeliness AS
SELECT agency_code,
       month,
       measure,
       CASE WHEN n_hidden THEN NULL ELSE n END AS n,
       CASE WHEN stats_hidden THEN NULL ELSE median_hours END AS median_hours,
       CASE WHEN stats_hidden THEN NULL ELSE p90_hours END AS p90_hours,
       CASE WHEN share_24h_hidden THEN NULL ELSE share_within_24h END AS share_within_24h,
       CASE WHEN share_7d_hidden THEN NULL ELSE share_within_7d END AS share_within_7d
FROM outcomes.timeliness;

CREATE VIEW published.repeat_contact AS
SELECT agency_code,
       cohort,
       window_days,
       CASE WHEN index_hidden THEN NULL ELSE index_calls END AS index_calls,
       CASE WHEN repeat_hidden THEN NULL ELSE with_repeat END AS with_repeat,
       CASE WHEN repeat_hidden THEN NULL ELSE repeat_rate END AS repeat_rate,
       CASE WHEN repeat_hidden THEN NULL ELSE ci_low END AS ci_low,
       CASE WHEN repeat_hidden THEN NULL ELSE ci_high END AS ci_high,
       CASE WHEN charged_hidden THEN NULL ELSE with_charged_repeat END AS with_charged_repeat,
       CASE WHEN charged_hidden THEN NULL ELSE charged_repeat_rate END AS charged_repeat_rate
FROM outcomes.repeat_contact
WHERE cohort IN ('engaged', 'referred_not_engaged', 'consent_declined', 'consent_not_asked',
                 'baseline');

-- Operational counts about files and rows, not about people: no suppression (docs/measuring.md).
CREATE VIEW published.data_quality_daily AS
SELECT agency_code, extract_date, files_received, files_refused, rows_in_files, rows_loaded,
       rows_quarantined
FROM outcomes.data_quality_daily;

CREATE VIEW published.quarantine_by_rule AS
SELECT agency_code, extract_date, rule, rows
FROM outcomes.quarantine_by_rule;

-- Beyond the seven: what the measures were judged against (no counts of people).
CREATE VIEW published.build_info AS
SELECT reference_date, program_launch_date, repeat_windows_days, time_zone
FROM outcomes.build_info;

GRANT USAGE ON SCHEMA published TO upstream_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA published TO upstream_analyst;
-- Views added to published later by the same owner are readable too.
ALTER DEFAULT PRIVILEGES IN SCHEMA published GRANT SELECT ON TABLES TO upstream_analyst;
