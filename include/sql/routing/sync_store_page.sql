-- One page of events, idempotently (delivered at least once; event_id is unique), and the
-- cursor after it, in one statement.
WITH stored AS (
    INSERT INTO routing.referral_event (event_id, referral_id, event_type, occurred_at)
    SELECT * FROM unnest(%(event_ids)s::text[], %(referral_ids)s::text[], %(types)s::text[],
                         %(occurred)s::timestamptz[])
    ON CONFLICT (event_id) DO NOTHING
    RETURNING 1
), moved AS (
    INSERT INTO routing.sync_cursor (feed, cursor) SELECT %(feed)s, %(cursor)s
    WHERE %(cursor)s::text IS NOT NULL
    ON CONFLICT (feed) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = now()
    RETURNING 1
)
SELECT (SELECT count(*) FROM stored) AS stored
