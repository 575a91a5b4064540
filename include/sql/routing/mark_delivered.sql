UPDATE routing.referral
SET status = 'delivered', delivered_at = now(), delivered_version = %(record_version)s,
    last_error = NULL, status_reason = NULL
WHERE referral_id = %(referral_id)s
