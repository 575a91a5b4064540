-- Totals over all months (issue 13, "Totals that add up"; docs/measuring.md). Every monthly
-- breakdown gets, per agency, one row over ALL months: calls_monthly (per patrol zone and for
-- '(all)'), referral_funnel, timeliness and contact_service_level; the release tier's
-- quarterly tables get a row over all quarters.
--
-- Representation: an explicit marker column, `all_months` (release: `all_quarters`), true on
-- the total row and false on every monthly row. A total row has no month: its `month`
-- (`quarter`) is NULL, so a query for one month never picks it up, and the marker says what
-- the row is. Totals are computed by the rebuild from the same exact rows as the months
-- (timeliness: percentiles over every referral), never from published cells, and their counts
-- take part in complementary suppression (total over months = sum of the monthly cells).

-- ---------------------------------------------------------------------------------------------
-- outcomes: month becomes optional, one total row per key
ALTER TABLE outcomes.calls_monthly DROP CONSTRAINT calls_monthly_pkey;
ALTER TABLE outcomes.calls_monthly
    ALTER COLUMN month DROP NOT NULL,
    ADD COLUMN all_months boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT calls_monthly_total_has_no_month CHECK ((month IS NULL) = all_months);
CREATE UNIQUE INDEX calls_monthly_month_key ON outcomes.calls_monthly
    (agency_code, month, patrol_zone) WHERE NOT all_months;
CREATE UNIQUE INDEX calls_monthly_total_key ON outcomes.calls_monthly
    (agency_code, patrol_zone) WHERE all_months;

ALTER TABLE outcomes.referral_funnel DROP CONSTRAINT referral_funnel_pkey;
ALTER TABLE outcomes.referral_funnel
    ALTER COLUMN month DROP NOT NULL,
    ADD COLUMN all_months boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT referral_funnel_total_has_no_month CHECK ((month IS NULL) = all_months);
CREATE UNIQUE INDEX referral_funnel_month_key ON outcomes.referral_funnel
    (agency_code, month, step_order) WHERE NOT all_months;
CREATE UNIQUE INDEX referral_funnel_total_key ON outcomes.referral_funnel
    (agency_code, step_order) WHERE all_months;

ALTER TABLE outcomes.timeliness DROP CONSTRAINT timeliness_pkey;
ALTER TABLE outcomes.timeliness
    ALTER COLUMN month DROP NOT NULL,
    ADD COLUMN all_months boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT timeliness_total_has_no_month CHECK ((month IS NULL) = all_months);
CREATE UNIQUE INDEX timeliness_month_key ON outcomes.timeliness
    (agency_code, month, measure) WHERE NOT all_months;
CREATE UNIQUE INDEX timeliness_total_key ON outcomes.timeliness
    (agency_code, measure) WHERE all_months;

ALTER TABLE outcomes.contact_service_level DROP CONSTRAINT contact_service_level_pkey;
ALTER TABLE outcomes.contact_service_level
    ALTER COLUMN month DROP NOT NULL,
    ADD COLUMN all_months boolean NOT NULL DEFAULT false,
    ADD COLUMN contacted_24h_hidden boolean NOT NULL DEFAULT false,
    ADD COLUMN contacted_48h_hidden boolean NOT NULL DEFAULT false,
    ADD COLUMN contacted_7d_hidden boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT contact_service_level_total_has_no_month CHECK ((month IS NULL) = all_months);
CREATE UNIQUE INDEX contact_service_level_month_key ON outcomes.contact_service_level
    (agency_code, month) WHERE NOT all_months;
CREATE UNIQUE INDEX contact_service_level_total_key ON outcomes.contact_service_level
    (agency_code) WHERE all_months;

ALTER TABLE outcomes.release_calls_quarterly DROP CONSTRAINT release_calls_quarterly_pkey;
ALTER TABLE outcomes.release_calls_quarterly
    ALTER COLUMN quarter DROP NOT NULL,
    ADD COLUMN all_quarters boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT release_calls_quarterly_total_has_no_quarter
        CHECK ((quarter IS NULL) = all_quarters);
CREATE UNIQUE INDEX release_calls_quarterly_quarter_key ON outcomes.release_calls_quarterly
    (agency_code, quarter) WHERE NOT all_quarters;
CREATE UNIQUE INDEX release_calls_quarterly_total_key ON outcomes.release_calls_quarterly
    (agency_code) WHERE all_quarters;

ALTER TABLE outcomes.release_service_level_quarterly
    DROP CONSTRAINT release_service_level_quarterly_pkey;
ALTER TABLE outcomes.release_service_level_quarterly
    ALTER COLUMN quarter DROP NOT NULL,
    ADD COLUMN all_quarters boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT release_service_level_quarterly_total_has_no_quarter
        CHECK ((quarter IS NULL) = all_quarters);
CREATE UNIQUE INDEX release_service_level_quarterly_quarter_key
    ON outcomes.release_service_level_quarterly (agency_code, quarter) WHERE NOT all_quarters;
CREATE UNIQUE INDEX release_service_level_quarterly_total_key
    ON outcomes.release_service_level_quarterly (agency_code) WHERE all_quarters;

-- ---------------------------------------------------------------------------------------------
-- Published and release views: the marker right after the month (quarter). Recreated (a
-- column cannot be inserted by CREATE OR REPLACE); owner and grants as before.
DROP VIEW published.calls_monthly;
CREATE VIEW published.calls_monthly AS
SELECT agency_code,
       month,
       all_months,
       patrol_zone,
       CASE WHEN 'calls' = ANY (hidden) THEN NULL ELSE calls END AS calls,
       CASE WHEN 'cleared_by_charge' = ANY (hidden) THEN NULL ELSE cleared_by_charge END AS cleared_by_charge,
       CASE WHEN 'non_charge' = ANY (hidden) THEN NULL ELSE non_charge END AS non_charge,
       CASE WHEN 'consent_given' = ANY (hidden) THEN NULL ELSE consent_given END AS consent_given,
       CASE WHEN 'consent_declined' = ANY (hidden) THEN NULL ELSE consent_declined END AS consent_declined,
       CASE WHEN 'consent_not_asked' = ANY (hidden) THEN NULL ELSE consent_not_asked END AS consent_not_asked,
       CASE WHEN 'consent_unable_to_ask' = ANY (hidden) THEN NULL ELSE consent_unable_to_ask END AS consent_unable_to_ask
FROM outcomes.calls_monthly;

DROP VIEW published.referral_funnel;
CREATE VIEW published.referral_funnel AS
SELECT agency_code,
       month,
       all_months,
       step_order,
       step,
       CASE WHEN hidden THEN NULL ELSE count END AS count,
       CASE WHEN rate_hidden THEN NULL ELSE rate END AS rate
FROM outcomes.referral_funnel;

DROP VIEW published.timeliness;
CREATE VIEW published.timeliness AS
SELECT agency_code,
       month,
       all_months,
       measure,
       CASE WHEN n_hidden THEN NULL ELSE n END AS n,
       CASE WHEN stats_hidden THEN NULL ELSE median_hours END AS median_hours,
       CASE WHEN stats_hidden THEN NULL ELSE p90_hours END AS p90_hours,
       CASE WHEN share_24h_hidden THEN NULL ELSE share_within_24h END AS share_within_24h,
       CASE WHEN share_7d_hidden THEN NULL ELSE share_within_7d END AS share_within_7d
FROM outcomes.timeliness;

DROP VIEW published.contact_service_level;
CREATE VIEW published.contact_service_level AS
SELECT agency_code,
       month,
       all_months,
       CASE WHEN referred_hidden THEN NULL ELSE referred END AS referred,
       CASE WHEN share_24h_hidden THEN NULL ELSE share_24h END AS share_24h,
       CASE WHEN share_48h_hidden THEN NULL ELSE share_48h END AS share_48h,
       CASE WHEN share_7d_hidden THEN NULL ELSE share_7d END AS share_7d,
       CASE WHEN uncontacted_hidden THEN NULL ELSE uncontacted_48h END AS uncontacted_48h
FROM outcomes.contact_service_level;

DROP VIEW release.calls_quarterly;
CREATE VIEW release.calls_quarterly AS
SELECT agency_code, quarter, all_quarters, calls, cleared_by_charge, non_charge, consent_given,
       consent_declined, consent_other, referred, contacted, engaged
FROM outcomes.release_calls_quarterly;

DROP VIEW release.service_level_quarterly;
CREATE VIEW release.service_level_quarterly AS
SELECT agency_code, quarter, all_quarters, referred, share_24h, share_48h, share_7d,
       uncontacted_48h
FROM outcomes.release_service_level_quarterly;

ALTER VIEW published.calls_monthly OWNER TO upstream_outcomes;
ALTER VIEW published.referral_funnel OWNER TO upstream_outcomes;
ALTER VIEW published.timeliness OWNER TO upstream_outcomes;
ALTER VIEW published.contact_service_level OWNER TO upstream_outcomes;
ALTER VIEW release.calls_quarterly OWNER TO upstream_outcomes;
ALTER VIEW release.service_level_quarterly OWNER TO upstream_outcomes;
GRANT SELECT ON published.calls_monthly, published.referral_funnel, published.timeliness,
                published.contact_service_level TO upstream_analyst;
GRANT SELECT ON release.calls_quarterly, release.service_level_quarterly TO upstream_public;
