SELECT core.analyze_for_load('call')  -- see migration 006
