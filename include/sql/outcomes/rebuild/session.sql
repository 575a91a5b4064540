-- Inside the rebuild's transaction: local time zone and memory for its statements.
-- temp_buffers must be set before the session's first temporary table.
SELECT set_config('temp_buffers', '256MB', true),
       set_config('work_mem', %(work_mem)s, true),
       set_config('TimeZone', %(tz)s, true)
