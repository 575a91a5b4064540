-- No definitive answer this run: stays pending, tried again after a pause.
UPDATE routing.referral
SET last_error = %(error)s, next_attempt_at = now() + make_interval(secs => %(pause_seconds)s)
WHERE referral_id = %(referral_id)s
