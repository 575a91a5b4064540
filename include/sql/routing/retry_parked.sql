-- The data team's re-try of parked referrals (all when ids is NULL): back to pending.
-- Not those whose withdrawal is requested: those are final. `attempts` is kept: it records
-- that the server may hold the referral.
UPDATE routing.referral
SET status = 'pending', next_attempt_at = now(), status_reason = NULL
WHERE status = 'parked' AND withdrawal_requested_at IS NULL
  AND (%(ids)s::text[] IS NULL OR referral_id = ANY(%(ids)s::text[]))
