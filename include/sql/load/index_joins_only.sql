-- Until the end of the merge's transaction: join by index probes only (no hash or merge
-- joins). For a segment that is small beside what core already stores: the planner otherwise
-- hashes the whole of core.call_version or core.call for every segment (their seq scans grow
-- with every agency a history import adds), where one index probe per affected incident
-- costs the same whatever is stored.
SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)
