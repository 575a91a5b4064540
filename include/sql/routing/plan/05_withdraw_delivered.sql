-- Delivered, then consent withdrawn: the outreach side must delete and stop contact.
UPDATE routing.referral r
SET withdrawal_requested_at = now()
FROM core.call c
WHERE r.status = 'delivered' AND r.withdrawal_requested_at IS NULL
  AND c.agency_code = r.agency_code AND c.incident_id = r.incident_id
  AND c.consent_status IN ('withdrawn', 'declined')
