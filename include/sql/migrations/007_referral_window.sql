-- Referral window (issue 14) and withdrawal of unconfirmed sends (issue 9).
--
-- 'expired': an eligible case that is outside the referral window (its call is before the
-- program's launch, or older than UPSTREAM_REFERRAL_MAX_AGE_DAYS when routing runs). It is
-- never sent; the funnel counts it as "not referred: outside the referral window".
ALTER TABLE routing.referral DROP CONSTRAINT referral_status_check;
ALTER TABLE routing.referral ADD CONSTRAINT referral_status_check CHECK (status IN
    ('pending', 'delivered', 'parked', 'cancelled', 'withdrawn', 'expired'));

-- The withdrawal queue is read by routing every run: keep it small to find.
CREATE INDEX referral_withdrawal_due ON routing.referral (withdrawal_requested_at)
    WHERE withdrawal_requested_at IS NOT NULL AND withdrawn_at IS NULL;
