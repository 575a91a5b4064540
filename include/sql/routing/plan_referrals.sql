-- Bring the outbox in line with the current calls. Set-based and idempotent: a rerun with
-- unchanged calls changes nothing. Parameters: inner_key, outer_key (referral id HMAC pads).

-- 1. every eligible case has a referral (stable id: keyed hash of agency + incident)
INSERT INTO routing.referral (referral_id, agency_code, incident_id, status)
SELECT 'r_' || left(core.hmac_sha256_hex(%(inner_key)s, %(outer_key)s,
                    'referral:' || e.agency_code || ':' || e.incident_id), 32),
       e.agency_code, e.incident_id, 'pending'
FROM core.eligible_case e
ON CONFLICT (agency_code, incident_id) DO NOTHING;

-- 2. not delivered yet and no longer eligible: cancelled, never sent
UPDATE routing.referral r
SET status = 'cancelled', next_attempt_at = now(),
    status_reason = CASE WHEN c.clearance_status = 'cleared_by_charge'
                         THEN 'charged before delivery'
                         ELSE 'consent no longer given before delivery' END
FROM core.call c
WHERE r.status IN ('pending', 'parked')
  AND c.agency_code = r.agency_code AND c.incident_id = r.incident_id
  AND NOT EXISTS (SELECT 1 FROM core.eligible_case e
                  WHERE e.agency_code = r.agency_code AND e.incident_id = r.incident_id);

-- 3. cancelled but eligible again (e.g. a correction undid the charge): pending again
UPDATE routing.referral r
SET status = 'pending', status_reason = NULL, attempts = 0, next_attempt_at = now()
WHERE r.status = 'cancelled'
  AND EXISTS (SELECT 1 FROM core.eligible_case e
              WHERE e.agency_code = r.agency_code AND e.incident_id = r.incident_id);

-- 4. delivered, then consent withdrawn: the outreach side must delete and stop contact
UPDATE routing.referral r
SET withdrawal_requested_at = now()
FROM core.call c
WHERE r.status = 'delivered' AND r.withdrawal_requested_at IS NULL
  AND c.agency_code = r.agency_code AND c.incident_id = r.incident_id
  AND c.consent_status IN ('withdrawn', 'declined');

-- 5. delivered, then charged: the referral stands (the person consented); mark it
UPDATE routing.referral r
SET charged_after_delivery = true
FROM core.call c
WHERE r.status IN ('delivered', 'withdrawn') AND NOT r.charged_after_delivery
  AND c.agency_code = r.agency_code AND c.incident_id = r.incident_id
  AND c.clearance_status = 'cleared_by_charge';
