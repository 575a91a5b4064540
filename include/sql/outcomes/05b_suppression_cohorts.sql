-- More cells for the suppression rounds (05, 06): the repeat-contact counts and the survival
-- curve's counts at its published days, per cohort, with the total cohort 'all'. Every
-- index call is in exactly one cohort, so per window (or day) and measure the cohorts add up
-- to 'all': one group each, like zones adding up to '(all)'. Placeholder: {reference_date}
-- (the period of these cells: they are not by month).
-- The cells of this step come after every cell of 05 (cell ids above t_cohort_first.n0):
-- 07 and 08 read them back by that id range through the primary key, not by scanning all.
CREATE TEMP TABLE t_cohort_first ON COMMIT DROP AS
SELECT coalesce(max(cell_id), 0) AS n0 FROM sup_cell;

WITH added AS (
    INSERT INTO sup_cell (cell_id, grain, agency_code, period, patrol_zone, measure, ord, value,
                          sround)
    SELECT (SELECT n0 FROM t_cohort_first)
               + row_number() OVER (ORDER BY x.grain, x.agency_code, x.cohort, x.ord)::int,
           x.grain, x.agency_code, {reference_date}::date, x.cohort, x.measure, x.ord, x.value,
           CASE WHEN x.value BETWEEN 1 AND 4 THEN 0 END
    FROM (
        SELECT 'cohort_' || r.window_days AS grain, r.agency_code, r.cohort, v.measure, v.ord,
               v.value
        FROM t_repeat AS r
        CROSS JOIN LATERAL (VALUES ('index_calls', 1, r.index_calls),
                                   ('with_repeat', 2, r.with_repeat),
                                   ('with_charged_repeat', 3, r.with_charged_repeat))
            AS v(measure, ord, value)
        UNION ALL
        SELECT 'survival_' || lpad(p.day::text, 3, '0'), p.agency_code, p.cohort, v.measure,
               v.ord, v.value
        FROM t_km_points AS p
        CROSS JOIN LATERAL (VALUES ('at_risk', 1, p.at_risk), ('cum_events', 2, p.cum_events))
            AS v(measure, ord, value)
    ) AS x
    RETURNING cell_id, grain, agency_code, measure
)
INSERT INTO sup_member (grp, cell_id)
SELECT concat_ws('|', 'cohorts', grain, agency_code, measure), cell_id
FROM added;

ANALYZE sup_cell;
ANALYZE sup_member;
