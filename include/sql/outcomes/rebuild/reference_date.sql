-- The local date of the latest call: per agency, the newest entry of index call_received.
SELECT max((SELECT max(c.call_received_at) FROM core.call AS c
            WHERE c.agency_code = a.agency_code))::date AS d
FROM (SELECT DISTINCT agency_code FROM ops.extract_file) AS a
