-- t_logrank (03b_survival.sql): the chi-square of each cohort against the baseline.
SELECT agency_code, cohort, (observed - expected) ^ 2 / variance AS chi
FROM t_logrank
WHERE variance > 0
