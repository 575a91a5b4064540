-- The local day of the newest call loaded: the demo's "today" is the day after it.
-- Parameter: tz (IANA name of the program's time zone).
SELECT (max(call_received_at) AT TIME ZONE %(tz)s)::date AS day FROM core.call
