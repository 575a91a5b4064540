SELECT DISTINCT agency_code FROM release.calls_quarterly ORDER BY 1
