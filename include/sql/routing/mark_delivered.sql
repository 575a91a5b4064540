-- delivered_at: the routing clock's now in a replay (`extracts`, bound as %(delivered_at)s),
-- else (NULL: `wall`) the database's now().
UPDATE routing.referral
SET status = 'delivered', delivered_at = coalesce(%(delivered_at)s::timestamptz, now()),
    delivered_version = %(record_version)s, last_error = NULL, status_reason = NULL
WHERE referral_id = %(referral_id)s
