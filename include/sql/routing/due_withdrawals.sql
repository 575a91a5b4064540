-- Withdrawals to send: any referral whose withdrawal was requested and not yet confirmed,
-- whatever its status (delivered, or sent without a confirmed answer).
SELECT r.referral_id, r.status, r.status_reason, c.consent_recorded_at, c.consent_officer_id
FROM routing.referral r
LEFT JOIN core.call c USING (agency_code, incident_id)
WHERE r.withdrawal_requested_at IS NOT NULL AND r.withdrawn_at IS NULL
ORDER BY r.withdrawal_requested_at, r.referral_id
