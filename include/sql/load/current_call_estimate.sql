-- The planner's idea of core.call's size (-1: never analysed), for the merge's join choice.
SELECT reltuples AS n FROM pg_class WHERE oid = 'core.call'::regclass
