-- Measures evaluations report (docs/measuring.md, issue 13) and a public release tier.
--   outcomes  time to repeat contact (Kaplan-Meier, log-rank), repeat rates standardised by
--             prior-call history, contact against service levels, release tables
--   published the analyst views of the new tables (suppressed like the others), and every
--             cohort plus a total row in repeat_contact
--   release   what a public or board release may show: counts randomly rounded to base 5,
--             cells below a minimum suppressed; role upstream_public reads this schema only
-- The rebuild (upstream.outcomes) fills every table; nothing here holds data.

-- ---------------------------------------------------------------------------------------------
-- Standardised repeat rates beside the crude ones (direct standardisation to the baseline
-- cohort's mix of prior-call history; NULL when a stratum the baseline has is empty here).
ALTER TABLE outcomes.repeat_contact
    ADD COLUMN standardised_rate  numeric,
    ADD COLUMN std_ci_low         numeric,
    ADD COLUMN std_ci_high        numeric;

-- Index calls and repeats per prior-call stratum (0, 1, 2+ calls of the same victim in the 365
-- days before the index call): the inputs of the standardisation. Restricted.
CREATE TABLE outcomes.repeat_by_prior (
    agency_code   text    NOT NULL,
    cohort        text    NOT NULL,
    window_days   integer NOT NULL,
    prior_calls   text    NOT NULL CHECK (prior_calls IN ('0', '1', '2+')),
    index_calls   integer NOT NULL,
    with_repeat   integer NOT NULL,
    PRIMARY KEY (agency_code, cohort, window_days, prior_calls)
);

-- Kaplan-Meier estimate of time to the next police-reported IPV call of the same victim, by
-- cohort ('all' = every index call), in whole local days since the index call, censored at
-- the reference date and at 365 days. One row per day with an event or a censoring. Restricted.
CREATE TABLE outcomes.repeat_survival (
    agency_code   text    NOT NULL,
    cohort        text    NOT NULL,
    day           integer NOT NULL,
    at_risk       integer NOT NULL,
    events        integer NOT NULL,
    censored      integer NOT NULL,
    survival      double precision NOT NULL,
    ci_low        double precision,      -- 95%, Greenwood variance on the log(-log) scale
    ci_high       double precision,
    PRIMARY KEY (agency_code, cohort, day)
);

-- The curve at fixed days (0, 7, 30, ..., 365): what is published.
CREATE TABLE outcomes.repeat_survival_points (
    agency_code      text    NOT NULL,
    cohort           text    NOT NULL,
    day              integer NOT NULL,
    at_risk          integer NOT NULL,    -- followed for at least `day` days, no repeat before
    cum_events       integer NOT NULL,    -- repeats on days 0..day
    survival         double precision NOT NULL,
    ci_low           double precision,
    ci_high          double precision,
    at_risk_hidden   boolean NOT NULL DEFAULT false,
    events_hidden    boolean NOT NULL DEFAULT false,
    PRIMARY KEY (agency_code, cohort, day)
);

-- Log-rank test of each cohort against the baseline (days 0..365).
CREATE TABLE outcomes.repeat_logrank (
    agency_code   text    NOT NULL,
    cohort        text    NOT NULL,
    index_calls   integer NOT NULL,
    observed      integer NOT NULL,       -- repeats in the cohort
    expected      double precision,       -- expected under equal hazards
    chi_square    double precision,
    p_value       double precision,
    hidden        boolean NOT NULL DEFAULT false,
    PRIMARY KEY (agency_code, cohort)
);

-- First contact against service levels, by month of the call: of the delivered referrals, how
-- many had a 'contacted' event within 24 h, 48 h, 7 days of delivery, and how many had none
-- 48 h after delivery (counted once 48 h have passed by the end of the reference date).
CREATE TABLE outcomes.contact_service_level (
    agency_code       text    NOT NULL,
    month             date    NOT NULL,
    referred          integer NOT NULL,
    contacted_24h     integer NOT NULL,
    contacted_48h     integer NOT NULL,
    contacted_7d      integer NOT NULL,
    uncontacted_48h   integer NOT NULL,
    share_24h         numeric,
    share_48h         numeric,
    share_7d          numeric,
    referred_hidden   boolean NOT NULL DEFAULT false,
    share_24h_hidden  boolean NOT NULL DEFAULT false,
    share_48h_hidden  boolean NOT NULL DEFAULT false,
    share_7d_hidden   boolean NOT NULL DEFAULT false,
    uncontacted_hidden boolean NOT NULL DEFAULT false,
    PRIMARY KEY (agency_code, month)
);

-- ---------------------------------------------------------------------------------------------
-- Release tier. The rounding key is a secret of this database: with it anyone could tell which
-- way a cell was rounded. Readable by the outcomes role only (schema outcomes).
CREATE TABLE outcomes.release_key (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    secret     text    NOT NULL
);
INSERT INTO outcomes.release_key (secret)
SELECT replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');

-- Random rounding to base 5, unbiased and stable: x = 5q + r rounds up with probability r/5;
-- the "random" draw u in [0, 1) is a keyed hash of the cell's key, so the same cell rounds the
-- same way in every build while cells are independent of each other. E[rounded] = x.
CREATE FUNCTION outcomes.round_base5(x bigint, secret text, cell text)
RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN x IS NULL THEN NULL
              WHEN x % 5 = 0 THEN x::int
              ELSE (x - x % 5 + CASE WHEN
                  ('x' || substr(encode(sha256(convert_to(secret || '|' || cell, 'UTF8')), 'hex'),
                                 1, 8))::bit(32)::bigint / 4294967296.0 < (x % 5) / 5.0
                  THEN 5 ELSE 0 END)::int END
$$;

-- A released count: NULL below the minimum (1 .. min_cell - 1; zero is shown), else rounded.
CREATE FUNCTION outcomes.release_count(x bigint, min_cell integer, secret text, cell text)
RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN x IS NULL OR (x > 0 AND x < min_cell) THEN NULL
              ELSE outcomes.round_base5(x, secret, cell) END
$$;

CREATE TABLE outcomes.release_calls_quarterly (
    agency_code        text    NOT NULL,
    quarter            date    NOT NULL,   -- first day of the quarter
    calls              integer,
    cleared_by_charge  integer,
    non_charge         integer,
    consent_given      integer,
    consent_declined   integer,
    consent_other      integer,            -- not asked, unable to ask, withdrawn
    referred           integer,
    contacted          integer,
    engaged            integer,
    PRIMARY KEY (agency_code, quarter)
);

CREATE TABLE outcomes.release_service_level_quarterly (
    agency_code       text    NOT NULL,
    quarter           date    NOT NULL,
    referred          integer,
    share_24h         numeric,
    share_48h         numeric,
    share_7d          numeric,
    uncontacted_48h   integer,
    PRIMARY KEY (agency_code, quarter)
);

CREATE TABLE outcomes.release_repeat_contact (
    agency_code        text    NOT NULL,
    cohort             text    NOT NULL,
    window_days        integer NOT NULL,
    index_calls        integer,
    with_repeat        integer,
    repeat_rate        numeric,
    standardised_rate  numeric,
    PRIMARY KEY (agency_code, cohort, window_days)
);

CREATE TABLE outcomes.release_repeat_survival (
    agency_code   text    NOT NULL,
    cohort        text    NOT NULL,
    day           integer NOT NULL,
    at_risk       integer,
    survival      numeric,
    ci_low        numeric,
    ci_high       numeric,
    PRIMARY KEY (agency_code, cohort, day)
);

CREATE TABLE outcomes.release_logrank (
    agency_code   text    NOT NULL,
    cohort        text    NOT NULL,
    chi_square    numeric,
    p_value       numeric,
    PRIMARY KEY (agency_code, cohort)
);

-- ---------------------------------------------------------------------------------------------
-- Published (analyst) views of the new tables. NULL = suppressed, as in 003_outcomes.sql.

-- repeat_contact: every cohort (also 'consent_given_not_delivered') and the total 'all', with
-- complementary suppression across cohorts; the standardised rate beside the crude one.
CREATE OR REPLACE VIEW published.repeat_contact AS
SELECT agency_code,
       cohort,
       window_days,
       CASE WHEN index_hidden THEN NULL ELSE index_calls END AS index_calls,
       CASE WHEN repeat_hidden THEN NULL ELSE with_repeat END AS with_repeat,
       CASE WHEN repeat_hidden OR index_hidden THEN NULL ELSE repeat_rate END AS repeat_rate,
       CASE WHEN repeat_hidden OR index_hidden THEN NULL ELSE ci_low END AS ci_low,
       CASE WHEN repeat_hidden OR index_hidden THEN NULL ELSE ci_high END AS ci_high,
       CASE WHEN charged_hidden THEN NULL ELSE with_charged_repeat END AS with_charged_repeat,
       CASE WHEN charged_hidden OR index_hidden THEN NULL ELSE charged_repeat_rate END
           AS charged_repeat_rate,
       CASE WHEN repeat_hidden OR index_hidden THEN NULL ELSE standardised_rate END
           AS standardised_rate,
       CASE WHEN repeat_hidden OR index_hidden THEN NULL ELSE std_ci_low END AS std_ci_low,
       CASE WHEN repeat_hidden OR index_hidden THEN NULL ELSE std_ci_high END AS std_ci_high
FROM outcomes.repeat_contact;

CREATE VIEW published.repeat_survival AS
SELECT agency_code,
       cohort,
       day,
       CASE WHEN at_risk_hidden THEN NULL ELSE at_risk END AS at_risk,
       CASE WHEN events_hidden THEN NULL ELSE cum_events END AS cum_events,
       CASE WHEN at_risk_hidden OR events_hidden THEN NULL ELSE round(survival::numeric, 4) END
           AS survival,
       CASE WHEN at_risk_hidden OR events_hidden THEN NULL ELSE round(ci_low::numeric, 4) END
           AS ci_low,
       CASE WHEN at_risk_hidden OR events_hidden THEN NULL ELSE round(ci_high::numeric, 4) END
           AS ci_high
FROM outcomes.repeat_survival_points;

CREATE VIEW published.repeat_logrank AS
SELECT agency_code,
       cohort,
       CASE WHEN hidden THEN NULL ELSE observed END AS observed,
       CASE WHEN hidden THEN NULL ELSE round(expected::numeric, 2) END AS expected,
       CASE WHEN hidden THEN NULL ELSE round(chi_square::numeric, 3) END AS chi_square,
       CASE WHEN hidden THEN NULL ELSE round(p_value::numeric, 4) END AS p_value
FROM outcomes.repeat_logrank;

CREATE VIEW published.contact_service_level AS
SELECT agency_code,
       month,
       CASE WHEN referred_hidden THEN NULL ELSE referred END AS referred,
       CASE WHEN share_24h_hidden THEN NULL ELSE share_24h END AS share_24h,
       CASE WHEN share_48h_hidden THEN NULL ELSE share_48h END AS share_48h,
       CASE WHEN share_7d_hidden THEN NULL ELSE share_7d END AS share_7d,
       CASE WHEN uncontacted_hidden THEN NULL ELSE uncontacted_48h END AS uncontacted_48h
FROM outcomes.contact_service_level;

-- ---------------------------------------------------------------------------------------------
-- The release schema and its reader.
CREATE SCHEMA IF NOT EXISTS release;

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'upstream_public') THEN
    CREATE ROLE upstream_public LOGIN NOINHERIT;
  END IF;
  BEGIN
    GRANT upstream_public TO CURRENT_USER;   -- the monitoring page may SET ROLE to it
  EXCEPTION WHEN OTHERS THEN NULL;
  END;
END $$;

CREATE VIEW release.calls_quarterly AS
SELECT agency_code, quarter, calls, cleared_by_charge, non_charge, consent_given,
       consent_declined, consent_other, referred, contacted, engaged
FROM outcomes.release_calls_quarterly;

CREATE VIEW release.service_level_quarterly AS
SELECT agency_code, quarter, referred, share_24h, share_48h, share_7d, uncontacted_48h
FROM outcomes.release_service_level_quarterly;

CREATE VIEW release.repeat_contact AS
SELECT agency_code, cohort, window_days, index_calls, with_repeat, repeat_rate,
       standardised_rate
FROM outcomes.release_repeat_contact;

CREATE VIEW release.repeat_survival AS
SELECT agency_code, cohort, day, at_risk, survival, ci_low, ci_high
FROM outcomes.release_repeat_survival;

CREATE VIEW release.repeat_logrank AS
SELECT agency_code, cohort, chi_square, p_value
FROM outcomes.release_logrank;

CREATE VIEW release.build_info AS
SELECT reference_date, program_launch_date, repeat_windows_days, time_zone
FROM outcomes.build_info;

-- upstream_public: USAGE on release and SELECT on its views; nothing else anywhere.
REVOKE ALL ON SCHEMA ops, core, contact, staging, routing, outcomes, published FROM upstream_public;
REVOKE ALL ON ALL TABLES IN SCHEMA ops, core, contact, staging, routing, outcomes, published
  FROM upstream_public;
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM upstream_public;
REVOKE CREATE ON SCHEMA public FROM upstream_public;
GRANT USAGE ON SCHEMA release TO upstream_public;
GRANT SELECT ON ALL TABLES IN SCHEMA release TO upstream_public;

-- Owned by the outcomes role like everything it rebuilds (004_roles.sql); published views
-- created here are readable by analysts through that migration's default privileges only when
-- created by upstream_outcomes, so grant explicitly.
GRANT SELECT ON ALL TABLES IN SCHEMA published TO upstream_analyst;
ALTER SCHEMA release OWNER TO upstream_outcomes;
DO $$
DECLARE o record;
BEGIN
  FOR o IN SELECT n.nspname, c.relname, c.relkind FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname IN ('outcomes', 'published', 'release') AND c.relkind IN ('r', 'v')
             AND pg_get_userbyid(c.relowner) <> 'upstream_outcomes'
  LOOP
    EXECUTE format('ALTER %s %I.%I OWNER TO upstream_outcomes',
                   CASE o.relkind WHEN 'v' THEN 'VIEW' ELSE 'TABLE' END, o.nspname, o.relname);
  END LOOP;
END $$;
ALTER FUNCTION outcomes.round_base5(bigint, text, text) OWNER TO upstream_outcomes;
ALTER FUNCTION outcomes.release_count(bigint, integer, text, text) OWNER TO upstream_outcomes;
ALTER DEFAULT PRIVILEGES FOR ROLE upstream_outcomes IN SCHEMA release
  GRANT SELECT ON TABLES TO upstream_public;
