-- The server answered the withdrawal: 200 (it held the referral, now deleted) -> withdrawn;
-- 404 for a referral never confirmed as delivered -> cancelled (it never had it).
UPDATE routing.referral
SET withdrawn_at = now(),
    status = CASE WHEN %(held)s OR status = 'delivered' THEN 'withdrawn' ELSE 'cancelled' END
WHERE referral_id = %(referral_id)s
