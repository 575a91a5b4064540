SELECT core.analyze_for_load('call_version')  -- see migration 006
